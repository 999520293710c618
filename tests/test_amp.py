"""Devices and precision: fp16 autocast with a gradient scaler (run on the CPU, where PyTorch
has both), its state in the checkpoint (exact resume after kill -9), skipped steps counted,
amp=auto for each kind of device, and `--device mps` (faked: no Apple GPU here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # registers tiny_cnn, tiny_bn
from _train_models import SGD, Messages, _one_thread, _step_ctx, _weights  # noqa: F401
from cnnzoo import devices
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.precision import LossScaler, auto_amp, fast_low_precision
from cnnzoo.train import state as ckpt
from cnnzoo.train.engine import train_one_epoch
from cnnzoo.train.recipes import Recipe
from cnnzoo.train.run import fit

FP16 = {**SGD, "amp": "fp16", "batch_size": 64, "eval_every": 9}


def test_fp16_on_the_cpu_trains_learns_and_checkpoints_its_scaler(tmp_path):
    res = fit("tiny_cnn", recipe="lenet", epochs=2, out=tmp_path, overrides={**FP16, "limit_train": 640})
    assert res["precision"] == "fp16" and res["steps"] == 20
    assert res["test_acc_pct"] > 40  # chance is 10%
    assert isinstance(res["amp_skipped_steps"], int)
    _, st = ckpt.read_training_state(tmp_path)
    saved = st["amp_scaler"]
    assert saved["skipped_steps"] == res["amp_skipped_steps"]
    assert saved["scaler"]["scale"] == 65536.0 / 2 ** res["amp_skipped_steps"]
    assert st["run"]["precision"]["amp"] == "fp16"
    back = LossScaler(torch.device("cpu"), True)
    back.load_state_dict(saved)
    assert back.state_dict() == saved  # round trip: scale, growth tracker, factors, count


# a CLI whose scaler starts at 2**24: its first steps overflow (skipped, the scale halved each
# time), so a resume that lost the scaler's state would skip them again and end elsewhere
HIGH_SCALE_CLI = ("import sys; sys.path.insert(0, {tests!r}); import _train_models; "
                  "from cnnzoo.precision import LossScaler; LossScaler.INIT_SCALE = 2.0 ** 24; "
                  "from cnnzoo.cli import main; main(sys.argv[1:])")


def test_kill_9_then_resume_in_fp16_gives_the_same_weights(tmp_path, monkeypatch):
    """The CLI in a subprocess, SIGKILLed once its first checkpoint exists, then resumed: the
    scaler's scale and skip count come back with the rest."""
    monkeypatch.setattr(LossScaler, "INIT_SCALE", 2.0 ** 24)
    o = {**FP16, "limit_train": 1280}
    said = Messages()
    ref = fit("tiny_bn", recipe="lenet", epochs=3, out=tmp_path / "ref", overrides=o, deterministic=True,
              reporter=said)
    n = ref["amp_skipped_steps"]
    assert n >= 1
    assert any(f"fp16: {n} step(s) skipped by the gradient scaler so far" in m for m in said.lines)  # epoch line
    assert f"fp16: {n} step(s) skipped by the gradient scaler in all" in said.lines[-1]  # the final message
    sets = [x for k, v in o.items() for x in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-c", HIGH_SCALE_CLI.format(tests=str(Path(__file__).parent)), "train", "tiny_bn",
           "--recipe", "lenet", "--epochs", "3", "--deterministic", "--threads", "1", "--no-progress",
           "--out", str(tmp_path / "run"), *sets]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    state = tmp_path / "run" / "checkpoint.safetensors"
    deadline = time.time() + 240
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    _, st = ckpt.read_training_state(tmp_path / "run")
    assert 20 <= st["step"] < 60  # killed after epoch 1's checkpoint, before the end
    assert st["amp_scaler"]["skipped_steps"] == ref["amp_skipped_steps"]  # all in the first steps
    res = fit(resume=tmp_path / "run")
    assert res["steps"] == 60 and res["precision"] == "fp16"
    assert res["amp_skipped_steps"] == ref["amp_skipped_steps"]
    a, b = _weights(tmp_path / "ref/model.safetensors"), _weights(tmp_path / "run/model.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_cli_trains_with_set_amp_fp16_and_evaluates_with_amp_fp16(tmp_path, cli):
    r = cli("train", "tiny_cnn", "--epochs", "1", "--out", tmp_path, "--set", "amp=fp16", "--set",
            "limit_train=256", "--batch-size", "64", "--no-progress", "--json")
    assert r.code == 0, r.err
    res = r.json()
    assert res["precision"] == "fp16" and isinstance(res["amp_skipped_steps"], int) and res["steps"] == 4
    r = cli("eval", tmp_path / "model.safetensors", "--amp", "fp16", "--json")
    assert r.code == 0, r.err
    assert r.json()["precision"] == "fp16"
    r = cli("eval", tmp_path / "model.safetensors", "--amp", "fp8")
    assert r.code == 2 and "fp16" in r.err  # the choices are named


class _Blows(nn.Module):
    """A linear classifier whose gradients become infinite on the step `bad` (its loss stays finite)."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.calls, self.bad = 0, bad
        self.fc.weight.register_hook(lambda g: g * float("inf") if self.calls == self.bad else g)

    def forward(self, x):
        self.calls += 1
        return self.fc(x)


def test_a_step_with_infinite_gradients_is_skipped_and_counted_not_a_nan_failure():
    torch.manual_seed(0)
    model = _Blows(bad=3)
    ctx = _step_ctx(model)
    ctx.recipe = Recipe(**{**SGD, "amp": "fp16", "batch_size": 4, "log_every": 1, "grad_clip": 1.0})
    seen = []
    ctx.optimizer.step = _spy(ctx.optimizer.step, seen, model)
    batches = [(torch.randn(4, 4), torch.randint(0, 3, (4,))) for _ in range(5)]
    m = train_one_epoch(model, batches, ctx, 0, 0)  # no NonFiniteLossError: the loss was finite
    assert m["step"] == 5
    assert ctx.scaler.enabled and ctx.scaler.skipped_steps() == 1
    assert ctx.scaler.scaler.get_scale() == 65536.0 / 2
    assert seen == [1, 2, 4, 5]  # the optimizer did not step on call 3
    assert all(torch.isfinite(p).all() for p in model.parameters())


def _spy(step, seen, model):
    def wrapped(*a, **kw):
        seen.append(model.calls)
        return step(*a, **kw)
    return wrapped


# -- amp=auto and the device choice, with the device faked --------------------------------------
@pytest.fixture
def fake(monkeypatch):
    """fake(kind, cc): every device-type decision sees `kind` (and that compute capability)."""
    monkeypatch.delenv("CNNZOO_BF16", raising=False)

    def set_kind(kind: str, cc: tuple[int, int] | None = None) -> None:
        monkeypatch.setattr(devices, "kind", lambda d: kind)
        monkeypatch.setattr(devices, "cuda_capability", lambda d: cc if kind == "cuda" else None)
    return set_kind


@pytest.mark.parametrize("kind, cc, want", [("cuda", (7, 5), "fp16"), ("cuda", (7, 0), "fp16"),
                                            ("cuda", (8, 0), "bf16"), ("cuda", (9, 0), "bf16"),
                                            ("mps", None, "fp16")])
def test_amp_auto_picks_fp16_where_bf16_is_slow(fake, kind, cc, want):
    fake(kind, cc)
    assert auto_amp(torch.device("cpu"), 128) == want


def test_amp_auto_on_the_cpu_keeps_its_rule(monkeypatch):
    monkeypatch.delenv("CNNZOO_BF16", raising=False)
    cpu = torch.device("cpu")
    assert auto_amp(cpu, 128) == ("bf16" if fast_low_precision(cpu, 128) else "off")
    monkeypatch.setenv("CNNZOO_BF16", "off")
    assert auto_amp(cpu, 128) == "off"


def test_auto_device_is_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("mps") == devices.resolve_device("mps")
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    assert devices.resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("cuda")


def test_device_mps_without_an_apple_gpu_exits_2(monkeypatch, cli, tmp_path):
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    with pytest.raises(InvalidArgumentError, match="Apple GPU"):
        devices.resolve_device("mps")
    r = cli("train", "tiny_cnn", "--epochs", "1", "--device", "mps", "--out", tmp_path / "r", "--no-progress")
    assert r.code == 2
    assert "'mps'" in r.err and "PyTorch sees none here" in r.err and "--device cpu" in r.err


# what PyTorch itself calls on every device, harmlessly (seeding is queued until CUDA starts)
TORCH_OWN = {"manual_seed", "manual_seed_all", "seed", "seed_all", "is_initialized", "device_count"}


def _no_cuda(monkeypatch) -> None:
    """Every other torch.cuda function raises, and there is no CUDA: a run that reaches one fails."""
    def refuse(name):
        def f(*a, **kw):
            raise AssertionError(f"torch.cuda.{name} reached on a non-CUDA run")
        return f
    for name in dir(torch.cuda):
        obj = getattr(torch.cuda, name)
        if callable(obj) and not isinstance(obj, type) and not name.startswith("_") and name not in TORCH_OWN:
            monkeypatch.setattr(torch.cuda, name, refuse(name))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)


def test_a_run_decided_as_on_mps_reaches_no_cuda_api(fake, monkeypatch, tmp_path):
    """The device-type decisions made as for an Apple GPU, the tensors on the CPU (no mps here):
    amp=auto is fp16 with its scaler, no channels_last, no fused kernels, no CUDA call, no cuDNN flag."""
    fake("mps")
    _no_cuda(monkeypatch)
    o = {**FP16, "amp": "auto", "channels_last": "auto", "fused": "auto", "limit_train": 256}
    res = fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=o, device="cpu")
    assert res["precision"] == "fp16" and res["steps"] == 4
    assert torch.backends.cudnn.benchmark is False
    _, st = ckpt.read_training_state(tmp_path)
    assert st["run"]["precision"] == {"amp": "fp16", "channels_last": "off"}
    assert all(not g.get("fused") for g in st["optimizer"]["param_groups"])


DEVICE = "cuda"


# -- on a CUDA GPU (skips here: `make gpu-check` / benchmarks/gpu_check.sh run the cuda marker) --
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_fp16_on_cuda_learns_resumes_exactly_and_auto_follows_the_capability(tmp_path, monkeypatch):
    from _train_models import _fit_until

    monkeypatch.delenv("CNNZOO_BF16", raising=False)
    cc = torch.cuda.get_device_capability()
    assert auto_amp(torch.device("cuda"), 128) == ("bf16" if cc >= (8, 0) else "fp16")
    monkeypatch.setattr(LossScaler, "INIT_SCALE", 2.0 ** 24)  # overflowing first steps
    o = {**FP16, "limit_train": 1280, "ckpt_every": 13}
    full = fit("tiny_bn", recipe="lenet", epochs=2, out=tmp_path / "full", overrides=o, deterministic=True,
               device=DEVICE)
    assert full["precision"] == "fp16" and full["amp_skipped_steps"] >= 1 and full["test_acc_pct"] > 40
    with pytest.raises(_train_models._Stop):
        _fit_until(tmp_path / "cut", o, stop_at=13, device=DEVICE)
    res = fit(resume=tmp_path / "cut", device=DEVICE)
    assert res["steps"] == 40 and res["amp_skipped_steps"] == full["amp_skipped_steps"]
    a, b = _weights(tmp_path / "full/model.safetensors"), _weights(tmp_path / "cut/model.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k
