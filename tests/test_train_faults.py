"""Training faults and safety: exact resume after kill -9 and after Ctrl-C, a full disk, NaN
losses and NaN input, malicious pickles, clear input errors (constant or corrupt images), the
training-state file."""

from __future__ import annotations

import errno
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn, tiny_bn, tiny_aux, tiny32)
from _hostile import Evil
from _train_models import (  # noqa: F401
    SGD,
    TINY,
    TINY_ARGS,
    Messages,
    _fit_until,
    _one_thread,
    _step_ctx,
    _Stop,
    _weights,  # (shared fixture and helpers)
)
from cnnzoo.errors import InputShapeError, InvalidArgumentError, TrainingStateError
from cnnzoo.precision import fast_low_precision
from cnnzoo.registry import create_model
from cnnzoo.runfolder import LOCK_FILE
from cnnzoo.train import state as ckpt
from cnnzoo.train.engine import NonFiniteLossError, train_one_epoch
from cnnzoo.train.run import fit

HELPER = Path(__file__).parent / "_train_models.py"


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


# -- a full disk, Ctrl-C, a mid-epoch resume --------------------------------------------------
def test_a_full_disk_keeps_the_last_good_checkpoint_and_says_how_to_resume(tmp_path, monkeypatch, cli):
    real = ckpt.save_state

    def full_after_epoch_1(*a, **kw):
        if kw["step"] > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*a, **kw)

    monkeypatch.setattr(ckpt, "save_state", full_after_epoch_1)
    code, _, err = cli("train", "tiny_cnn", "--recipe", "lenet", "--epochs", "2", "--out", tmp_path,
                       *TINY_ARGS)
    assert code == 1
    assert "No space left on device" in err and "last good checkpoint (step 2) is kept" in err
    assert f"--resume {tmp_path}" in err
    monkeypatch.setattr(ckpt, "save_state", real)
    assert ckpt.read_training_state(tmp_path)[1]["step"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no half-written file
    assert fit(resume=tmp_path)["steps"] == 4  # the way back works


def test_ctrl_c_saves_a_checkpoint_that_resumes_to_the_same_weights(tmp_path):
    o = {**SGD, "batch_size": 64, "limit_train": 2560, "eval_every": 9}
    fit("tiny_bn", recipe="lenet", epochs=4, out=tmp_path / "ref", overrides=o, deterministic=True)
    sets = [x for k, v in o.items() for x in ("--set", f"{k}={v}")]
    cmd = [sys.executable, str(HELPER), "train", "tiny_bn", "--recipe", "lenet", "--epochs", "4", "--deterministic",
           "--threads", "1", "--no-progress", "--out", str(tmp_path / "run"), *sets]
    # as from a terminal: SIGINT at its default in the child, whatever this test process inherited
    # (a pytest worker can hold it ignored, and an ignored SIGINT passes across exec)
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    state, deadline = tmp_path / "run" / "checkpoint.safetensors", time.time() + 240
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert "Traceback" not in out + err
    said = " ".join(out.split())  # rich wraps long lines
    _, st = ckpt.read_training_state(tmp_path / "run")
    assert 40 <= st["step"] < 160  # at the epoch's end (the signal came during its save) or after
    assert f"interrupted at step {st['step']}; the state is saved: resume with --resume {tmp_path / 'run'}" in said
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    assert fit(resume=tmp_path / "run")["steps"] == 160
    ref, run = _weights(tmp_path / "ref/model.safetensors"), _weights(tmp_path / "run/model.safetensors")
    for k in ref:
        assert torch.equal(ref[k], run[k]), k


def test_a_mid_epoch_resume_says_its_train_metrics_are_partial(tmp_path):
    real = ckpt.save_state

    def die_after_step_3(*a, **kw):
        real(*a, **kw)
        if kw["step"] == 3:
            raise KeyboardInterrupt

    ckpt.save_state = die_after_step_3
    try:
        with pytest.raises(KeyboardInterrupt):
            fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides={**TINY, "limit_train": 640,
                                                                              "ckpt_every": 3})
    finally:
        ckpt.save_state = real
    rep = Messages()
    fit(resume=tmp_path, reporter=rep)
    line = next(m for m in rep.lines if m.startswith("epoch   1/1"))
    assert "train loss/acc over steps 4-10 only: resumed mid-epoch" in line


# -- bad data: NaN, constant and corrupt images -----------------------------------------------
def test_nan_input_and_a_first_step_nan_are_not_blamed_on_the_learning_rate():
    from cnnzoo.registry import create_model

    m = create_model("tiny_cnn", num_classes=10, in_chans=1)
    y = torch.tensor([0, 1, 2, 3])
    x = torch.zeros(4, 1, 28, 28)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="input batches themselves hold NaN") as e:
        train_one_epoch(m, [(x, y)], _step_ctx(m), 0, 0)
    assert "--lr" not in str(e.value)
    huge = torch.full((4, 1, 28, 28), 3e38)
    with pytest.raises(NonFiniteLossError, match="first step, before any weight update") as e:
        train_one_epoch(m, [(huge, y)], _step_ctx(m), 0, 0)
    assert "--lr" not in str(e.value)


def test_constant_images_are_refused_before_training(tmp_path):
    from cnnzoo.data.mnist import write_idx

    for split, n in (("train", 128), ("t10k", 16)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", np.full((n, 28, 28), 7, np.uint8))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    with pytest.raises(InvalidArgumentError, match="constant .*zero variance"):
        fit("tiny_cnn", data=f"mnist:{tmp_path}", out=tmp_path / "o", overrides=TINY)
    assert not (tmp_path / "o").exists()


def _folder(root: Path, broken: int) -> Path:
    """test_data's image folder (12 good training images), with `broken` unreadable ones."""
    from test_data import _folder as good_folder

    good_folder(root, corrupt=False)
    for i in range(broken):
        (root / "train" / "red" / f"broken{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def test_workers_are_capped_by_the_cores(monkeypatch):
    from cnnzoo.train import feed

    monkeypatch.setattr(feed.os, "sched_getaffinity", lambda pid: {0, 1})
    assert feed.worker_count(4) == 2 and feed.worker_count(1) == 1 and feed.worker_count(0) == 0


def test_corrupt_images_fail_with_file_and_reason_or_are_named_and_counted(tmp_path, cli):
    data = _folder(tmp_path / "f", broken=7)
    args = ["train", "tiny_rgb", "--data", f"folder:{data}", "--epochs", "1", "--batch-size", "19",
            "--set", "workers=1", "--set", "amp=off", "--set", "channels_last=off", "--no-progress"]
    code, _, err = cli(*args, "--out", tmp_path / "fail", "--set", "on_corrupt=fail")
    assert code == 2 and "cannot read image" in err and "broken" in err and "on_corrupt=skip" in err
    assert "worker process" not in err and "worker.py" not in err and "suggested max" not in err
    code, out, err = cli(*args, "--out", tmp_path / "skip")
    assert code == 0, err
    named = [ln for ln in out.splitlines() if ln.startswith("skipped unreadable image")]
    assert len(named) == 5 and "skipped 7 unreadable image(s) this epoch, 7 in all" in " ".join(out.split())
    code, _, err = cli("eval", tmp_path / "skip", "--format", "json")  # eval reads folders too
    assert code == 0, err
