"""torchrun / DDP on the CPU (gloo): two processes with the same global batch give the same
weights as one process; a distributed run resumes like a single one, also after a SIGTERM;
SyncBN is an option."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401
from _train_models import _weights
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.registry import create_model
from cnnzoo.runfolder import LOCK_FILE
from cnnzoo.train import state as ckpt
from cnnzoo.train.distributed import DistInfo, wrap_model
from cnnzoo.train.run import fit

HELPER = Path(__file__).parent / "_train_models.py"
SETS = ["--set", "amp=off", "--set", "channels_last=off", "--set", "optimizer=sgd", "--lr", "0.05", "--set", "limit_train=640", "--batch-size", "64", "--set", "schedule=constant",
        "--set", "eval_every=9", "--recipe", "lenet", "--deterministic", "--no-progress"]


def _torchrun(*args, nproc=2):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(HELPER), "train", *args]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def test_two_gloo_processes_match_one_process_and_resume(tmp_path):
    torch.set_num_threads(1)
    # one process, 2 epochs, global batch 64
    fit("tiny_cnn", recipe="lenet", epochs=2, out=tmp_path / "single", deterministic=True,
        overrides={"amp": "off", "channels_last": "off", "optimizer": "sgd", "lr": 0.05, "limit_train": 640, "batch_size": 64, "schedule": "constant", "eval_every": 9})
    # two processes x 32 images, 1 epoch, then resumed (still 2 processes) to 2 epochs
    p = _torchrun("tiny_cnn", "--epochs", "1", "--out", str(tmp_path / "ddp"), *SETS)
    assert "x 2 processes" in p.stdout
    assert p.stdout.count("training tiny_cnn") == 1 and p.stdout.count("test accuracy") == 1  # rank 0 only
    _torchrun("tiny_cnn", "--epochs", "2", "--resume", str(tmp_path / "ddp"), "--no-progress")
    single, ddp = _weights(tmp_path / "single/model.safetensors"), _weights(tmp_path / "ddp/model.safetensors")
    assert single.keys() == ddp.keys()
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], atol=1e-5, rtol=1e-4)
    # rank 0 alone wrote the run folder: no stray temporary files from a second writer
    assert sorted(f.name for f in (tmp_path / "ddp").iterdir()) == \
        ["checkpoint.safetensors", "metrics.csv", "model.safetensors", "training_curves.png"]


def test_sync_bn_option_converts_batch_norm():
    m = create_model("tiny_bn", num_classes=10, in_chans=1)
    assert wrap_model(m, DistInfo(), torch.device("cpu"), sync_bn=True) is m  # one process: unchanged
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(m)
    assert sum(isinstance(x, torch.nn.SyncBatchNorm) for x in converted.modules()) == 2


def test_sync_bn_on_cpu_processes_is_refused_clearly(monkeypatch):
    from cnnzoo.train import run

    monkeypatch.setattr(run, "init_distributed", lambda device: (DistInfo(0, 2, 0), torch.device("cpu")))
    with pytest.raises(InvalidArgumentError, match="SyncBatchNorm needs CUDA"):
        fit("tiny_bn", overrides={"sync_bn": True}, out="/nonexistent/never-written")


def test_batch_must_split_over_ranks_and_accumulation(monkeypatch):
    from cnnzoo.train import run

    monkeypatch.setattr(run, "init_distributed", lambda device: (DistInfo(0, 2, 0), torch.device("cpu")))
    with pytest.raises(InvalidArgumentError, match="divisible by world size x accum_steps = 2 x 3"):
        fit("tiny_cnn", overrides={"batch_size": 64, "accum_steps": 3}, out="/nonexistent/never-written")


@pytest.mark.skipif(not shutil.which("script"), reason="needs util-linux `script` for a pseudo-terminal")
def test_torchrun_with_a_terminal_on_rank_0_finishes(tmp_path):
    """Rank 0 draws a progress bar when its stdout is a terminal; the metrics all-reduce behind
    it must run on every rank, or rank 0 waits forever for the others (the run used to hang)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
           "COLUMNS": "120"}
    sets = [a for a in SETS if a != "--no-progress"] + ["--set", "log_every=2"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HELPER), "train", "tiny_cnn", "--epochs", "1", "--out", str(tmp_path / "run"), *sets]
    p = subprocess.run(["script", "-qec", shlex.join(cmd), "/dev/null"], env=env,
                       capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "test accuracy" in p.stdout and (tmp_path / "run/model.safetensors").is_file()


def test_sigterm_to_torchrun_saves_on_both_ranks_and_resumes_exactly(tmp_path):
    """As SLURM or Kubernetes stops a job: SIGTERM to torchrun, which forwards it to every rank.
    The ranks agree on one step, gather their random states into rank 0's checkpoint and exit
    143; resumed under torchrun, the run ends with the weights of an uninterrupted one."""
    _torchrun("tiny_cnn", "--epochs", "2", "--out", str(tmp_path / "ref"), *SETS)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(HELPER),
           "train", "tiny_cnn", "--epochs", "2", "--out", str(tmp_path / "run"), *SETS, "--set", "ckpt_every=1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    state, deadline = tmp_path / "run" / "checkpoint.safetensors", time.time() + 240
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)  # the first step's checkpoint: both ranks train
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=240)
    _, st = ckpt.read_training_state(tmp_path / "run")
    said = " ".join(out.split())
    assert f"stopped by SIGTERM at step {st['step']}; the state is saved" in said, out[-3000:] + err[-3000:]
    assert said.count("stopped by SIGTERM at step") == 1  # rank 0 talks
    assert len(st["rng"]["ranks"]) == 2  # both ranks' random states, saved at that step
    # both workers exited 143 of their own accord (torchrun reports a worker it had to kill as -9)
    assert "exitcode  : -9" not in err and "Traceback (most recent call last)" not in out
    assert err.count("stopped by SIGTERM") == 2, err[-3000:]
    if st["step"] < 20:
        _torchrun("tiny_cnn", "--epochs", "2", "--resume", str(tmp_path / "run"), "--no-progress")
    ref, run = _weights(tmp_path / "ref/model.safetensors"), _weights(tmp_path / "run/model.safetensors")
    for k in ref:
        assert torch.equal(ref[k], run[k]), k
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def _vote_worker(rank: int, store: str, side_group: bool, answers) -> None:
    import torch.distributed as dist

    from cnnzoo.train import distributed

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    if side_group:  # as under NCCL: the vote runs on a CPU group of its own
        distributed.dist.get_backend = lambda *a: "nccl"
    calls = [0]

    def asked() -> int:  # rank 1 gets SIGTERM before its 3rd step
        calls[0] += 1
        return signal.SIGTERM if rank == 1 and calls[0] >= 3 else 0

    vote = distributed.StopVote(DistInfo(rank, 2, rank), asked)
    answers.put((rank, [vote() for _ in range(5)], vote.group is not None))
    vote.close()
    dist.destroy_process_group()


@pytest.mark.parametrize("side_group", [False, True], ids=["gloo", "beside-nccl"])
def test_the_stop_vote_gives_every_rank_the_same_answer_at_the_same_step(tmp_path, side_group):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    answers = ctx.Queue()
    procs = [ctx.Process(target=_vote_worker, args=(r, str(tmp_path / "store"), side_group, answers))
             for r in range(2)]
    for p in procs:
        p.start()
    got = dict((r, (a, g)) for r, a, g in (answers.get(timeout=120) for _ in procs))
    for p in procs:
        p.join(60)
    # the 3rd call carries rank 1's signal; every rank reads it at the 4th and stops there
    assert got[0][0] == got[1][0] == [0, 0, 0, signal.SIGTERM, 0]
    assert got[0][1] == got[1][1] == side_group
