"""Run safety (issue 12): a run folder is never overwritten by accident and is locked while
training; output errors come early and clear; no false success; every option value is checked;
Ctrl-C leaves a resumable checkpoint; the smaller messages (NaN data, mid-epoch resume, workers,
corrupt images)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: E402,F401  (registers tiny_cnn, tiny_bn, tiny_aux, tiny32, tiny_rgb)

from cnnzoo.errors import InvalidArgumentError  # noqa: E402
from cnnzoo.train import state as ckpt  # noqa: E402
from cnnzoo.train.engine import NonFiniteLossError, StepContext, train_one_epoch  # noqa: E402
from cnnzoo.train.recipes import Recipe  # noqa: E402
from cnnzoo.train.reporter import Reporter  # noqa: E402
from cnnzoo.train.run import fit  # noqa: E402
from cnnzoo.runfolder import LOCK_FILE, RunFolderError  # noqa: E402

from _train_models import SGD, _one_thread, _weights  # noqa: E402,F401

HELPER = Path(__file__).parent / "_train_models.py"
TINY = {**SGD, "batch_size": 64, "limit_train": 128, "eval_every": 9}  # 2 steps an epoch
TINY_ARGS = ["--set", "limit_train=128", "--batch-size", "64", "--set", "amp=off", "--set", "channels_last=off",
             "--no-progress"]


class Messages(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def cli(args, capsys):
    """(exit code, stdout, stderr) of `cnnzoo ARGS` run in this process."""
    from cnnzoo.cli import main

    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return e.value.code, out, err


# -- 1. no silent overwrite, a lock while training -------------------------------------------
def test_a_finished_run_is_refused_unless_resume_or_overwrite(tmp_path, capsys):
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=TINY)
    before = {f: (tmp_path / f).read_bytes() for f in ("model.safetensors", "checkpoint.safetensors")}
    with pytest.raises(RunFolderError, match="already holds a run"):
        fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=TINY)
    code, _, err = cli(["train", "tiny_cnn", "--epochs", "1", "--out", tmp_path, *TINY_ARGS], capsys)
    assert code == 2 and "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert {f: (tmp_path / f).read_bytes() for f in before} == before  # untouched
    code, _, _ = cli(["train", "tiny_cnn", "--epochs", "1", "--seed", "1", "--out", tmp_path, "--overwrite",
                      *TINY_ARGS], capsys)
    assert code == 0 and (tmp_path / "model.safetensors").read_bytes() != before["model.safetensors"]
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_live_lock_is_refused_and_a_stale_one_taken_over(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    owner = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / LOCK_FILE).write_text(f"{owner.pid}\n")
        with pytest.raises(RunFolderError, match=f"in use by another training \\(pid {owner.pid}"):
            fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=TINY)
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(owner.pid)  # not taken
    finally:
        owner.kill()
        owner.wait()
    rep = Messages()  # the owner is gone: its lock is stale
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=TINY, reporter=rep)
    assert any(f"stale lock" in m and str(owner.pid) in m for m in rep.lines)
    assert (tmp_path / "model.safetensors").is_file() and not (tmp_path / LOCK_FILE).exists()


# -- 2. output errors: early, clear, and the last good checkpoint kept ------------------------
def test_out_under_a_regular_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, out, err = cli(["train", "tiny_cnn", "--out", tmp_path / "file" / "run", *TINY_ARGS], capsys)
    assert code == 2 and "which is a file" in err and "epoch" not in out
    code, out, err = cli(["train", "tiny_cnn", "--out", tmp_path / "file", *TINY_ARGS], capsys)
    assert code == 2 and "is a file, not a folder" in err and "epoch" not in out


def test_a_full_disk_keeps_the_last_good_checkpoint_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    real = ckpt.save_state

    def full_after_epoch_1(*a, **kw):
        if kw["step"] > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*a, **kw)

    monkeypatch.setattr(ckpt, "save_state", full_after_epoch_1)
    code, _, err = cli(["train", "tiny_cnn", "--recipe", "lenet", "--epochs", "2", "--out", tmp_path,
                        *TINY_ARGS], capsys)
    assert code == 1
    assert "No space left on device" in err and "last good checkpoint (step 2) is kept" in err
    assert f"--resume {tmp_path}" in err
    monkeypatch.setattr(ckpt, "save_state", real)
    assert ckpt.read_training_state(tmp_path)[1]["step"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no half-written file
    assert fit(resume=tmp_path)["steps"] == 4  # the way back works


# -- 3. no false success -----------------------------------------------------------------------
def test_nothing_to_do_is_an_error_not_a_saved_model(tmp_path, capsys):
    code, out, err = cli(["train", "tiny_cnn", "--epochs", "0", "--out", tmp_path / "zero", *TINY_ARGS], capsys)
    assert code == 2 and "epochs must be >= 1" in err and "model saved" not in out
    assert not (tmp_path / "zero").exists()
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path / "done", overrides=TINY)
    stamp = (tmp_path / "done/model.safetensors").stat().st_mtime_ns
    code, out, err = cli(["train", "--resume", tmp_path / "done", "--no-progress"], capsys)
    assert code == 2 and "already complete at epoch 1" in err and "--epochs M, M > 1" in err
    assert "model saved" not in out and (tmp_path / "done/model.safetensors").stat().st_mtime_ns == stamp
    assert fit(resume=tmp_path / "done", epochs=2)["steps"] == 4  # extending works


def test_resume_applies_what_may_change_and_refuses_the_rest(tmp_path, capsys):
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides={**TINY, "schedule": "constant"})
    for args, word in ((["--batch-size", "32"], "batch_size (64 -> 32)"), (["--set", "augment=shift"], "augment"),
                       (["--data", "mnist:/"], "keeps its data"), (["--recipe", "fast"], "keeps its recipe")):
        code, _, err = cli(["train", "--resume", tmp_path, "--epochs", "2", *args], capsys)
        assert code == 2 and word in err, (args, err)
    code, out, _ = cli(["train", "--resume", tmp_path, "--epochs", "2", "--lr", "0.01", "--set", "log_every=7",
                        "--no-progress"], capsys)
    line = " ".join(out.split())
    assert code == 0 and "applied epochs 1 -> 2, lr 0.05 -> 0.01, log_every 50 -> 7" in line
    _, state = ckpt.read_training_state(tmp_path)
    assert state["run"]["recipe"]["lr"] == 0.01 and state["optimizer"]["param_groups"][0]["lr"] == 0.01


# -- 4. option values ------------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["--lr", "nan"], "lr must be a finite number"), (["--lr", "inf"], "lr must be a finite number"),
    (["--lr", "-1"], "lr must be > 0"), (["--set", "betas=[2,3]"], "betas must be two numbers in [0, 1)"),
    (["--set", "betas=5"], "betas takes two numbers (beta1, beta2)"), (["--set", "momentum=-1"], "momentum must be in [0, 1)"),
    (["--set", "limit_train=-5"], "limit_train must be >= 1"), (["--set", "ckpt_every=-1"], "ckpt_every must be >= 0"),
    (["--set", "weight_decay=-1"], "weight_decay must be >= 0"), (["--set", "eval_every=0"], "eval_every must be >= 1"),
    (["--set", "lrr=1"], "did you mean lr"), (["--set", "lr=[1]"], "lr takes float"),
    (["--device", "banana"], "unknown device 'banana'"), (["--config", "."], "is a directory, not a YAML file"),
])
def test_bad_option_values_are_refused_clearly(tmp_path, capsys, args, words):
    code, out, err = cli(["train", "tiny_cnn", "--out", tmp_path / "o", *TINY_ARGS, *args], capsys)
    assert code == 2 and words in err and "epoch" not in out
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_for_train_and_eval(tmp_path, capsys):
    code, _, err = cli(["train", "tiny_cnn", "--device", "cuda", "--out", tmp_path / "o", *TINY_ARGS], capsys)
    assert code == 2 and "sees no CUDA GPU" in err
    code, _, err = cli(["eval", tmp_path / "none.safetensors", "--device", "cuda"], capsys)
    assert code == 2 and "sees no CUDA GPU" in err


def test_yaml_config_values_are_validated_too(tmp_path):
    cfg = tmp_path / "r.yaml"
    cfg.write_text("momentum: 1.5\n")
    with pytest.raises(InvalidArgumentError, match="momentum must be in"):
        fit("tiny_cnn", config=str(cfg), out=tmp_path / "o", overrides=TINY)
    with pytest.raises(InvalidArgumentError, match="weight_decay must be >= 0"):
        fit("tiny_cnn", recipe=Recipe(weight_decay=-1.0), out=tmp_path / "o")


@pytest.mark.parametrize("bs", ["0", "-5"])
def test_eval_batch_size_must_be_positive(tmp_path, capsys, bs):
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=TINY)
    code, _, err = cli(["eval", tmp_path, "--batch-size", bs], capsys)
    assert code == 2 and "batch size must be an integer >= 1" in err


# -- 5. Ctrl-C --------------------------------------------------------------------------------
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
    assert 40 < st["step"] < 160
    assert f"interrupted at step {st['step']}; the state is saved: resume with --resume {tmp_path / 'run'}" in said
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    assert fit(resume=tmp_path / "run")["steps"] == 160
    ref, run = _weights(tmp_path / "ref/model.safetensors"), _weights(tmp_path / "run/model.safetensors")
    for k in ref:
        assert torch.equal(ref[k], run[k]), k


# -- 6. smaller messages -----------------------------------------------------------------------
def _step_ctx(model):
    r = Recipe(**{**SGD, "batch_size": 4, "log_every": 1})
    return StepContext(recipe=r, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), scheduler=None,
                       device=torch.device("cpu"))


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


def test_corrupt_images_fail_with_file_and_reason_or_are_named_and_counted(tmp_path, capsys):
    data = _folder(tmp_path / "f", broken=7)
    args = ["train", "tiny_rgb", "--data", f"folder:{data}", "--epochs", "1", "--batch-size", "19",
            "--set", "workers=1", "--set", "amp=off", "--set", "channels_last=off", "--no-progress"]
    code, _, err = cli([*args, "--out", tmp_path / "fail", "--set", "on_corrupt=fail"], capsys)
    assert code == 2 and "cannot read image" in err and "broken" in err and "on_corrupt=skip" in err
    assert "worker process" not in err and "worker.py" not in err and "suggested max" not in err
    code, out, err = cli([*args, "--out", tmp_path / "skip"], capsys)
    assert code == 0, err
    named = [ln for ln in out.splitlines() if ln.startswith("skipped unreadable image")]
    assert len(named) == 5 and "skipped 7 unreadable image(s) this epoch, 7 in all" in " ".join(out.split())
    code, _, err = cli(["eval", tmp_path / "skip", "--format", "json"], capsys)  # eval reads folders too
    assert code == 0, err


def test_slow_steps_still_report_progress_on_time(monkeypatch):
    """log_every counts steps; when they are slow, a report still comes every PROGRESS_SECONDS
    (here 0: every step) so a run without a terminal never goes quiet."""
    import cnnzoo.train.engine as engine
    from torch import nn

    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    ctx = _step_ctx(m)
    ctx.recipe = Recipe(**{**SGD, "batch_size": 8, "log_every": 10_000})
    seen: list[int] = []
    ctx.on_progress = lambda done, metrics: seen.append(done)
    batches = [(torch.randn(8, 1, 2, 2), torch.randint(0, 2, (8,))) for _ in range(3)]
    train_one_epoch(m, batches, ctx, 0, 0)
    assert seen == []  # 3 fast steps, log_every 10,000: nothing before the epoch ends
    monkeypatch.setattr(engine, "PROGRESS_SECONDS", 0.0)
    train_one_epoch(m, batches, ctx, 0, 3)
    assert seen == [1, 2, 3]
