"""Training faults and safety: exact resume after kill -9, NaN losses, malicious pickles,
clear input errors, the training-state file."""

from __future__ import annotations

import os
import pickle
import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: E402,F401  (registers tiny_cnn, tiny_bn, tiny_aux, tiny32)

from cnnzoo.errors import InputShapeError, InvalidArgumentError, TrainingStateError  # noqa: E402
from cnnzoo.registry import create_model  # noqa: E402
from cnnzoo.train import state as ckpt  # noqa: E402
from cnnzoo.precision import fast_low_precision  # noqa: E402
from cnnzoo.train.engine import NonFiniteLossError  # noqa: E402
from cnnzoo.train.run import fit  # noqa: E402

from _hostile import Evil  # noqa: E402
from _train_models import SGD, _fit_until, _one_thread, _Stop, _weights  # noqa: E402,F401  (shared fixture and helpers)


# The CPU defaults, and the CUDA defaults (fused optimizer kernels, channels_last; bf16 where
# the CPU has fast bf16): optimizer state must come back in its parameter's memory layout.
LAYOUTS = [{}, {"fused": "on", "channels_last": "on"}]
if fast_low_precision(torch.device("cpu")):
    LAYOUTS.append({"fused": "on", "channels_last": "on", "amp": "bf16"})


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda d: "+".join(f"{k}={v}" for k, v in d.items()) or "defaults")
def test_same_seed_same_weights_and_resume_continues_exactly(tmp_path, layout):
    o = {**SGD, "batch_size": 64, "limit_train": 640, "eval_every": 9, **layout}
    fit("tiny_bn", recipe="lenet", epochs=2, out=tmp_path / "full", overrides=o, deterministic=True)
    fit("tiny_bn", recipe="lenet", epochs=2, out=tmp_path / "again", overrides=o, deterministic=True)
    fit("tiny_bn", recipe="lenet", epochs=2, out=tmp_path / "part", overrides={**o, "ckpt_every": 3},
        deterministic=True)
    full = _weights(tmp_path / "full/model.safetensors")
    assert all(torch.equal(full[k], v) for k, v in _weights(tmp_path / "again/model.safetensors").items())
    # resume from a mid-epoch checkpoint (step 3 of epoch 1): rewrite the run's state to it
    _, state = ckpt.read_training_state(tmp_path / "part")
    assert state["step"] == 20
    # train 1 epoch + 3 steps, then resume to 2 epochs
    o2 = {**o, "ckpt_every": 13}
    with pytest.raises(_Stop):
        _fit_until(tmp_path / "cut", o2, stop_at=13)
    _, st = ckpt.read_training_state(tmp_path / "cut")
    assert st["step"] == 13
    res = fit(resume=tmp_path / "cut")
    assert res["steps"] == 20
    cut = _weights(tmp_path / "cut/model.safetensors")
    for k in full:
        assert torch.equal(full[k], cut[k]), k




def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    # epoch 1 is fine; then the lr is multiplied by 1e12 and the loss blows up
    o = {**SGD, "batch_size": 64, "limit_train": 640, "schedule": "multistep", "milestones": [1.0],
         "gamma": 1e12, "log_every": 1}
    with pytest.raises(NonFiniteLossError, match=r"NaN or infinite at step (1[1-9]|20)"):
        fit("tiny_cnn", recipe="lenet", epochs=3, out=tmp_path, overrides=o)
    _, state = ckpt.read_training_state(tmp_path)
    assert state["step"] == 10  # the end of epoch 1
    assert all(torch.isfinite(v).all() for v in _weights(tmp_path / "model.safetensors").values())


def test_cli_nan_exits_1(tmp_path, cli):
    r = cli("train", "tiny_cnn", "--epochs", "1", "--lr", "1e9", "--out", str(tmp_path),
            "--set", "limit_train=256", "--batch-size", "64", "--set", "log_every=1", "--no-progress")
    assert r.code == 1
    assert re.search(r"NaN or infinite at step \d+", r.err)


# -- safety and input errors ----------------------------------------------------------------
def test_malicious_torch_checkpoint_is_refused(tmp_path, cli):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        torch.save({"model": {}, "epoch": Evil(marker)}, f, pickle_module=pickle)
    with pytest.raises(TrainingStateError, match="refusing to load .*evil.pth"):
        fit("tiny_cnn", resume=evil, out=tmp_path / "o")
    r = cli("eval", str(evil))
    assert r.code == 2 and "refusing to load" in r.err
    assert not marker.exists()


def test_resume_from_a_plain_torch_checkpoint(tmp_path):
    torch.manual_seed(1)
    m = create_model("tiny_cnn", num_classes=10, in_chans=1)
    torch.save({"model": m.state_dict(), "epoch": 0}, tmp_path / "ref.pth")
    res = fit("tiny_cnn", resume=tmp_path / "ref.pth", epochs=2, out=tmp_path / "o",
              overrides={"batch_size": 64, "limit_train": 640})
    assert res["steps"] == 20  # continued after its epoch 0


def test_clear_errors_before_training(tmp_path):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        fit("tiny_cnn", data=f"mnist:{tmp_path / 'missing'}", out=tmp_path / "o")
    (tmp_path / "m").mkdir()
    with pytest.raises(InvalidArgumentError, match="train-images-idx3-ubyte"):
        fit("tiny_cnn", data=f"mnist:{tmp_path / 'm'}", out=tmp_path / "o")
    (tmp_path / "m" / "train-images-idx3-ubyte.gz").write_text("this is not gzip")
    (tmp_path / "m" / "train-labels-idx1-ubyte.gz").write_text("nor this")
    with pytest.raises(InvalidArgumentError, match="cannot read IDX"):
        fit("tiny_cnn", data=f"mnist:{tmp_path / 'm'}", out=tmp_path / "o")
    with pytest.raises(InvalidArgumentError, match="larger than the training set"):
        fit("tiny_cnn", overrides={"batch_size": 128, "limit_train": 100}, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing written before the checks


def test_input_that_cannot_fit_the_model_is_refused_before_training():
    from cnnzoo.data.preprocess import Preprocess
    from cnnzoo.train.build import _check_fits

    m = create_model("tiny_cnn", num_classes=10, in_chans=1)
    with pytest.raises(InputShapeError, match="does not fit tiny_cnn"):
        _check_fits("tiny_cnn", m, Preprocess(1, (6, 6), (6, 6), 0, None, [0], [1]))


def test_training_state_roundtrip_keeps_types(tmp_path):
    m = create_model("tiny_bn", num_classes=10, in_chans=1)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    m(torch.randn(2, 1, 28, 28)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    ckpt.save_state(tmp_path, model=m, optimizer=opt, scheduler=sched, epoch=1, step=7, extra={"x": [1, 2]})
    sd, st = ckpt.read_training_state(tmp_path)
    assert st["step"] == 7 and st["x"] == [1, 2]
    opt2 = torch.optim.AdamW(m.parameters(), lr=1e-3)
    opt2.load_state_dict(st["optimizer"])
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999)
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(v, opt2.state_dict()["state"][0][k])
    assert st["scheduler"]["mode_worse"] == float("inf")
    assert all(torch.equal(sd[k], v) for k, v in m.state_dict().items())


def test_kill_9_then_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    """The CLI in a subprocess, SIGKILLed once its first checkpoint exists, then resumed."""
    import signal
    import subprocess
    import time

    o = {**SGD, "batch_size": 64, "limit_train": 2560, "eval_every": 9}
    fit("tiny_bn", recipe="lenet", epochs=4, out=tmp_path / "ref", overrides=o, deterministic=True)
    sets = [x for k, v in o.items() for x in ("--set", f"{k}={v}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(Path(__file__).parent / "_train_models.py"), "train", "tiny_bn", "--recipe",
           "lenet", "--epochs", "4", "--deterministic", "--threads", "1", "--no-progress",
           "--out", str(tmp_path / "run"), *sets]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = tmp_path / "run" / "checkpoint.safetensors"
    deadline = time.time() + 240
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    _, st = ckpt.read_training_state(tmp_path / "run")
    assert 40 <= st["step"] < 160  # killed after epoch 1's checkpoint, before the end
    res = fit(resume=tmp_path / "run")
    assert res["steps"] == 160
    ref, run = _weights(tmp_path / "ref/model.safetensors"), _weights(tmp_path / "run/model.safetensors")
    for k in ref:
        assert torch.equal(ref[k], run[k]), k
