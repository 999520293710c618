"""A catalogue of stop signals (SIGTERM, SIGHUP, Ctrl-C) and `--overwrite` failures, through the
command line: each case asserts the exit code (128 + the signal's number; 1 a failed job; 2 bad
input), the message, that no traceback is printed, and which files are left (the state at the
step, the old run of an --overwrite, nothing half-written).

In-process cases deliver real signals (signal.raise_signal) at a chosen point of the work, so
the handlers the CLI and the training loop install are the ones that answer; the cases in a
subprocess send them from outside, as a scheduler does.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn and friends)
from _train_models import SGD, _one_thread, _weights  # noqa: F401  (_one_thread: autouse fixture)
from cnnzoo.runfolder import LOCK_FILE, REPLACED_DIR
from cnnzoo.train import state as ckpt
from cnnzoo.train.feed import Feed
from cnnzoo.train.run import fit

HELPER = Path(__file__).parent / "_train_models.py"
# 10 steps an epoch on the built-in digits, no validation but at the end
O = {**SGD, "batch_size": 64, "limit_train": 640, "eval_every": 9}
ARGS = ["tiny_cnn", "--recipe", "lenet", "--deterministic", "--no-progress",
        *[x for k, v in O.items() for x in ("--set", f"{k}={v}")]]


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _no_leftovers(folder: Path) -> None:
    """No lock, no temporary file, no run set aside."""
    names = [p.name for p in folder.iterdir()]
    assert LOCK_FILE not in names and REPLACED_DIR not in names, names
    assert not [n for n in names if n.endswith(".tmp")], names


def _step(folder: Path) -> int:
    return ckpt.read_training_state(folder)[1]["step"]


@pytest.fixture
def at_batch(monkeypatch):
    """`at_batch(n, sig, times=1)`: deliver `sig` (`times` times) as training batch n (counted
    over the whole run, from 1) is taken."""
    real = Feed.train_batches

    def arm(n: int, sig: int, times: int = 1) -> None:
        seen = [0]

        def train_batches(self, epoch, offset):
            batches, loader = real(self, epoch, offset)

            def gen():
                for b in batches:
                    seen[0] += 1
                    if seen[0] == n:
                        for _ in range(times):
                            signal.raise_signal(sig)
                    yield b
            return gen(), loader

        monkeypatch.setattr(Feed, "train_batches", train_batches)

    return arm


@pytest.fixture
def default_sigint():
    """Ctrl-C at Python's default in this process (a pytest worker may hold it ignored)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The weights of the uninterrupted 2-epoch run every resumed case must reproduce."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ref") / "run"
    fit("tiny_cnn", recipe="lenet", epochs=2, out=out, overrides=O, deterministic=True)
    return _weights(out / "model.safetensors")


def _same_as(reference: dict, folder: Path) -> None:
    got = _weights(folder / "model.safetensors")
    assert all(torch.equal(reference[k], got[k]) for k in reference)


# -- during training -----------------------------------------------------------------------------
@pytest.mark.parametrize("sig,code,said", [(signal.SIGTERM, 143, "stopped by SIGTERM"),
                                           (signal.SIGHUP, 129, "stopped by SIGHUP"),
                                           (signal.SIGINT, 130, "interrupted")])
def test_a_stop_signal_mid_epoch_saves_that_step_and_resumes_exactly(sig, code, said, tmp_path, cli, at_batch,
                                                                      reference, default_sigint):
    at_batch(13, sig)
    r = cli("train", *ARGS, "--epochs", "2", "--out", tmp_path)
    assert r.code == code, r.err[-2000:]
    text = " ".join((r.out + r.err).split())
    assert f"{said} at step 13; the state is saved: resume with --resume {tmp_path}" in text
    assert _step(tmp_path) == 13
    _no_leftovers(tmp_path)
    r = cli("train", "--resume", tmp_path, "--no-progress")
    assert r.code == 0, r.err[-2000:]
    _same_as(reference, tmp_path)


@pytest.mark.parametrize("batch,code", [(10, 143), (20, 0)], ids=["epoch-1-last-step", "run-last-step"])
def test_sigterm_on_an_epochs_last_step_is_taken_after_its_end(batch, code, tmp_path, cli, at_batch, reference):
    at_batch(batch, signal.SIGTERM)
    r = cli("train", *ARGS, "--epochs", "2", "--out", tmp_path)
    assert r.code == code, r.err[-2000:]
    text = " ".join(r.out.split())
    assert f"epoch   {batch // 10}/2" in r.out  # that epoch ended whole: its row, checkpoint and line
    if code:
        assert "stopped by SIGTERM at step 10; the state is saved" in text
        assert cli("train", "--resume", tmp_path, "--no-progress").code == 0
    else:
        assert "SIGTERM came after the last training step: the run finished first" in text
    assert [r["epoch"] for r in ckpt.read_training_state(tmp_path)[1]["history"]] == [1, 2]
    _same_as(reference, tmp_path)
    _no_leftovers(tmp_path)


def test_sigterm_twice_in_a_row_still_saves_once_at_that_step(tmp_path, cli, at_batch):
    at_batch(4, signal.SIGTERM, times=2)  # a scheduler and torchrun may both send one
    r = cli("train", *ARGS, "--epochs", "2", "--out", tmp_path)
    assert r.code == 143 and "stopped by SIGTERM at step 4; the state is saved" in " ".join(r.out.split())
    assert _step(tmp_path) == 4
    _no_leftovers(tmp_path)


def test_sigterm_during_validation_stops_after_it_and_its_checkpoint(tmp_path, cli, monkeypatch, reference):
    from cnnzoo.train import loop

    real = loop._score

    def score(run, split):
        if split == "val" and run.trainer.history == []:
            signal.raise_signal(signal.SIGTERM)  # in epoch 1's validation
        return real(run, split)

    monkeypatch.setattr(loop, "_score", score)
    r = cli("train", *ARGS, "--epochs", "2", "--set", "eval_every=1", "--out", tmp_path)
    assert r.code == 143, r.err[-2000:]
    assert "stopped by SIGTERM at step 10; the state is saved" in " ".join(r.out.split())
    assert _step(tmp_path) == 10 and (tmp_path / "model.safetensors").is_file()
    assert "epoch   1/2" in r.out  # the epoch's end ran whole: validation, checkpoint, its line
    _no_leftovers(tmp_path)
    monkeypatch.setattr(loop, "_score", real)
    assert cli("train", "--resume", tmp_path, "--no-progress").code == 0


def test_sigterm_during_a_save_lets_it_finish_then_stops(tmp_path, cli, monkeypatch):
    real = ckpt.save_state

    def save(*a, **kw):
        if kw["step"] == 10:
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)
        return real(*a, **kw)

    monkeypatch.setattr(ckpt, "save_state", save)
    r = cli("train", *ARGS, "--epochs", "2", "--out", tmp_path)
    assert r.code == 143 and "stopped by SIGTERM at step 10; the state is saved" in " ".join(r.out.split())
    assert _step(tmp_path) == 10
    _no_leftovers(tmp_path)


def test_a_second_ctrl_c_during_a_save_stops_at_once_keeping_the_last_checkpoint(tmp_path, cli, monkeypatch,
                                                                              default_sigint):
    real = ckpt.save_state

    def save(*a, **kw):
        if kw["step"] == 20:  # the second epoch's save, interrupted half-way
            with ckpt.atomic_path(tmp_path / "checkpoint.safetensors") as tmp:
                tmp.write_bytes(b"half")
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)
        return real(*a, **kw)

    monkeypatch.setattr(ckpt, "save_state", save)
    r = cli("train", *ARGS, "--epochs", "3", "--out", tmp_path)
    assert r.code == 130, r.err[-2000:]
    text = " ".join((r.out + r.err).split())
    assert f"stopped at once; the last checkpoint (step 10) is kept: resume with --resume {tmp_path}" in text
    assert _step(tmp_path) == 10
    _no_leftovers(tmp_path)


def test_sigterm_before_the_first_checkpoint_saves_nothing_and_says_so(tmp_path, cli, monkeypatch):
    from cnnzoo.train import run

    def build(**kw):
        signal.raise_signal(signal.SIGTERM)  # while the model is built: before the loop

    monkeypatch.setattr(run, "build_trainer", build)
    r = cli("train", *ARGS, "--epochs", "2", "--out", tmp_path)
    assert r.code == 143 and "stopped by SIGTERM" in r.err
    assert "before this run's first checkpoint, so nothing of it is kept" in " ".join(r.out.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no lock, no state


def test_sigterm_after_the_last_step_lets_the_run_finish(tmp_path, cli, monkeypatch):
    from cnnzoo.train import loop

    real = loop._score

    def score(run, split):
        if split == "test":
            signal.raise_signal(signal.SIGTERM)
        return real(run, split)

    monkeypatch.setattr(loop, "_score", score)
    r = cli("train", *ARGS, "--epochs", "1", "--out", tmp_path)
    assert r.code == 0, r.err[-2000:]
    assert "SIGTERM came after the last training step: the run finished first" in " ".join(r.out.split())
    assert "test accuracy" in r.out and _step(tmp_path) == 10
    _no_leftovers(tmp_path)


def test_an_ignored_sighup_is_left_ignored(tmp_path, cli, at_batch):
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        at_batch(3, signal.SIGHUP)
        r = cli("train", *ARGS, "--epochs", "1", "--out", tmp_path)
    finally:
        signal.signal(signal.SIGHUP, old)
    assert r.code == 0 and "test accuracy" in r.out


def test_the_python_api_raises_training_interrupted_with_the_signal(tmp_path, at_batch):
    from cnnzoo.train.engine import TrainingInterrupted

    at_batch(5, signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as e:
        fit("tiny_cnn", recipe="lenet", epochs=2, out=tmp_path, overrides=O)
    assert (e.value.signum, e.value.step, e.value.exit_code) == (signal.SIGTERM, 5, 143)
    assert isinstance(e.value, KeyboardInterrupt) and _step(tmp_path) == 5
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back


# -- outside training ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("done") / "run"
    fit("tiny_cnn", recipe="lenet", epochs=1, out=out, overrides={**O, "limit_train": 128})
    return out


def test_sigterm_while_features_writes_leaves_no_file(tmp_path, cli, monkeypatch, finished):
    import safetensors.torch

    def save_file(tensors, path, metadata=None):
        Path(path).write_bytes(b"half a file")
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    r = cli("features", finished, "--out", tmp_path / "f.safetensors", "--limit", "20")
    assert r.code == 143 and r.err.strip().endswith("stopped by SIGTERM")
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_sighup_during_eval_exits_129_and_touches_nothing(cli, monkeypatch, finished):
    from cnnzoo.train import evaluation

    before = _hashes(finished)
    real = evaluation.evaluate

    def evaluate(*a, **kw):
        signal.raise_signal(signal.SIGHUP)
        return real(*a, **kw)

    monkeypatch.setattr(evaluation, "evaluate", evaluate)
    r = cli("eval", finished)
    assert r.code == 129 and "stopped by SIGHUP" in r.err
    assert _hashes(finished) == before
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # the CLI gave its handlers back


# -- --overwrite keeps the old run until the new one has a checkpoint -----------------------------
@pytest.fixture
def old_run(tmp_path) -> tuple[Path, dict[str, str]]:
    out = tmp_path / "run"
    fit("tiny_cnn", recipe="lenet", epochs=1, out=out, overrides={**O, "limit_train": 128})
    return out, _hashes(out)


def test_overwrite_then_nan_keeps_the_old_run_and_says_so(cli, old_run):
    out, before = old_run
    r = cli("train", *ARGS, "--epochs", "1", "--lr", "1e9", "--set", "log_every=1", "--out", out, "--overwrite")
    assert r.code == 1
    text = " ".join(r.err.split())
    assert "NaN or infinite" in text and "last good checkpoint is kept" not in text
    assert f"before this run's first checkpoint, and the run --overwrite was replacing is back in {out}" in text
    assert _hashes(out) == before
    _no_leftovers(out)


def test_a_fresh_run_that_fails_with_nan_does_not_claim_a_checkpoint(tmp_path, cli):
    r = cli("train", *ARGS, "--epochs", "1", "--lr", "1e9", "--set", "log_every=1", "--out", tmp_path / "new")
    assert r.code == 1
    text = " ".join(r.err.split())
    assert "before this run's first checkpoint, so nothing of it is kept" in text
    assert "last good checkpoint is kept" not in text


def test_overwrite_then_sigterm_before_the_first_checkpoint_keeps_the_old_run(cli, monkeypatch, old_run):
    from cnnzoo.train import run

    out, before = old_run
    monkeypatch.setattr(run, "build_trainer", lambda **kw: signal.raise_signal(signal.SIGTERM))
    r = cli("train", *ARGS, "--epochs", "1", "--out", out, "--overwrite")
    assert r.code == 143 and "stopped by SIGTERM" in r.err
    assert "the run --overwrite was replacing is back" in " ".join(r.out.split())
    assert _hashes(out) == before
    _no_leftovers(out)


def test_overwrite_then_sigterm_mid_epoch_keeps_the_new_runs_state(cli, at_batch, old_run):
    out, before = old_run
    at_batch(3, signal.SIGTERM)
    r = cli("train", *ARGS, "--epochs", "2", "--out", out, "--overwrite")
    assert r.code == 143
    assert _step(out) == 3 and not (out / "model.safetensors").exists()  # the new run, resumable
    _no_leftovers(out)


def test_an_overwrite_killed_before_its_first_checkpoint_is_put_back_next_time(cli, old_run):
    out, before = old_run
    (out / REPLACED_DIR).mkdir()  # what kill -9 leaves: the old run aside, a dead owner's lock
    for name in before:
        os.replace(out / name, out / REPLACED_DIR / name)
    (out / LOCK_FILE).write_text("999999999\n")
    r = cli("train", *ARGS, "--epochs", "1", "--out", out)
    assert r.code == 2 and "already holds a run" in r.err
    assert "put back the run" in " ".join(r.out.split())
    assert _hashes(out) == before
    _no_leftovers(out)


# -- from outside, as a scheduler sends it -------------------------------------------------------
def test_sigterm_from_outside_saves_and_resumes_exactly(tmp_path, reference):
    cmd = [sys.executable, str(HELPER), "train", *ARGS, "--epochs", "2", "--threads", "1",
           "--out", str(tmp_path), "--set", "ckpt_every=1"]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    state, deadline = tmp_path / "checkpoint.safetensors", time.time() + 240
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)  # the first step's checkpoint: training has begun
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, out[-2000:] + err[-2000:]
    assert "Traceback" not in out + err and err.strip().endswith("stopped by SIGTERM")
    step = _step(tmp_path)
    assert f"stopped by SIGTERM at step {step}; the state is saved: resume with --resume {tmp_path}" \
        in " ".join(out.split())
    _no_leftovers(tmp_path)
    if step < 20:
        assert fit(resume=tmp_path)["steps"] == 20
    _same_as(reference, tmp_path)


def test_sigterm_to_every_process_spares_the_loaders_workers_until_the_state_is_saved(tmp_path):
    """SLURM (and a terminal's Ctrl-C) signal every process of the job, image loader workers too:
    they leave it to the training process, which saves and stops them."""
    from PIL import Image

    for c in ("a", "b"):
        for split, n in (("train", 150), ("val", 4)):
            (tmp_path / "data" / split / c).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), (i, 80 if c == "a" else 160, 7)).save(tmp_path / "data" / split / c / f"{i}.png")
    cmd = [sys.executable, str(HELPER), "train", "tiny_rgb", "--data", f"folder:{tmp_path / 'data'}", "--epochs", "3",
           "--batch-size", "8", "--recipe", "lenet", "--threads", "1", "--no-progress", "--out", str(tmp_path / "run"),
           *[x for s in ("workers=2", "amp=off", "channels_last=off", "ckpt_every=2") for x in ("--set", s)]]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    state, deadline = tmp_path / "run" / "checkpoint.safetensors", time.time() + 240
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, out[-2000:] + err[-2000:]
    assert "Traceback" not in out + err and "DataLoader worker" not in err
    assert f"stopped by SIGTERM at step {_step(tmp_path / 'run')}; the state is saved" in " ".join(out.split())
    _no_leftovers(tmp_path / "run")


def _worker(ready) -> None:
    from cnnzoo.signals import leave_to_parent

    leave_to_parent()
    ready.set()
    time.sleep(120)


@pytest.mark.skipif(not hasattr(signal, "sigwaitinfo"), reason="needs sigwaitinfo (not on macOS)")
def test_a_loader_worker_ignores_others_stop_signals_but_not_its_parents_terminate():
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    ready = ctx.Event()
    p = ctx.Process(target=_worker, args=(ready,), daemon=True)
    p.start()
    assert ready.wait(60)
    for sig in ("TERM", "HUP", "INT"):  # from another process, as SLURM or a terminal sends them
        subprocess.run(["kill", f"-{sig}", str(p.pid)], check=True)
    time.sleep(0.5)
    assert p.is_alive()
    p.terminate()  # the loader's last resort for a stuck worker still works
    p.join(60)
    assert p.exitcode == 0
