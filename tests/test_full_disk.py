"""A real full disk, a read-only file system and a folder you may not write to, for every verb
that writes: one clear error (exit 1) naming the file and the free space left, nothing
half-written, no temporary left behind, and in training the last good checkpoint kept. On a
real small tmpfs (the tests run as root on Linux; elsewhere they skip, saying why). Also: the
temporaries of a process killed during a save are removed by the next write into the folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn)
from _train_models import TINY_ARGS
from cnnzoo.errors import OutputWriteError
from cnnzoo.files import STALE_AFTER_S, atomic_path, atomic_write_text
from cnnzoo.modelfile import save_model
from cnnzoo.registry import create_model
from cnnzoo.train import state as ckpt
from cnnzoo.train.run import fit

SRC = Path(__file__).resolve().parents[1] / "src"


def _can_mount() -> str | None:
    if not sys.platform.startswith("linux"):
        return "a real tmpfs needs Linux"
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (the project's test machines run as root)"
    if shutil.which("mount") is None:
        return "no mount command"
    return None


@pytest.fixture
def small_fs(tmp_path):
    """`small_fs(size, name)` mounts a tmpfs of `size` at tmp_path/name; unmounted after the test."""
    why = _can_mount()
    if why:
        pytest.skip(why)
    mounted: list[Path] = []

    def mount(size: str = "1m", name: str = "fs") -> Path:
        path = tmp_path / name
        path.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(path)
        return path

    try:
        yield mount
    finally:
        for path in mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(fs: Path, free: int = 0) -> Path:
    """Fill `fs` with one file, then give back `free` bytes (to the page)."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                os.write(fd, b"\0" * 65536)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                try:  # the last pages
                    while os.write(fd, b"\0" * 4096):
                        pass
                except OSError:
                    break
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - free))
    return filler


def remount_read_only(fs: Path) -> None:
    r = subprocess.run(["mount", "-o", "remount,ro", str(fs)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot remount read-only: {r.stderr.strip()}")


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp") or ".unchecked" in p.name]


def said_full(err: str, path: Path) -> bool:
    text = " ".join(err.split())  # rich wraps long lines
    return str(path) in text and "No space left on device" in text and "free on its file system" in text


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "lenet5.safetensors"
    save_model(path, create_model("lenet5"))
    return path


# -- training -------------------------------------------------------------------------------
def test_train_on_a_full_disk_keeps_the_last_good_checkpoint(tmp_path, small_fs, cli):
    code, _, _ = cli("train", "tiny_cnn", "--recipe", "lenet", "--epochs", "1", "--out", tmp_path / "ref",
                     *TINY_ARGS)
    assert code == 0
    ckpt_size = (tmp_path / "ref/checkpoint.safetensors").stat().st_size
    model_size = (tmp_path / "ref/model.safetensors").stat().st_size
    fs = small_fs("1m")
    # room for epoch 1 (checkpoint, model file, metrics, lock) but not for epoch 2's new checkpoint
    # beside the old one: a disk that fills up while the run trains
    filler = fill(fs, free=ckpt_size + model_size + 6 * 4096 + ckpt_size // 2)
    run = fs / "run"
    code, out, err = cli("train", "tiny_cnn", "--recipe", "lenet", "--epochs", "2", "--out", run, *TINY_ARGS)
    assert code == 1, out + err
    assert said_full(err, run / "checkpoint.safetensors"), err
    text = " ".join(err.split())
    assert "the last good checkpoint (step 2) is kept" in text and f"--resume {run}" in text
    assert no_temporaries(run)
    assert ckpt.read_training_state(run, resume=True)[1]["step"] == 2  # intact: its checksum verifies
    filler.unlink()
    assert fit(resume=run)["steps"] == 4  # the way back works


def test_train_where_not_even_the_first_checkpoint_fits(small_fs, cli):
    fs = small_fs("256k")
    fill(fs, free=8192)
    run = fs / "run"
    code, out, err = cli("train", "tiny_cnn", "--recipe", "lenet", "--epochs", "1", "--out", run, *TINY_ARGS)
    assert code == 1, out + err
    assert said_full(err, run / "checkpoint.safetensors") and "no checkpoint was written yet" in err
    assert no_temporaries(run) and not (run / "checkpoint.safetensors").exists()


# -- the other verbs that write -------------------------------------------------------------
def test_features_onto_a_full_disk(model_file, small_fs, cli):
    fs = small_fs("256k")
    fill(fs, free=4096)
    out = fs / "f.safetensors"
    code, text, err = cli("features", model_file, "--limit", "64", "--out", out)
    assert code == 1, text + err
    assert said_full(err, out) and not out.exists() and no_temporaries(fs)


def test_linear_probe_onto_a_full_disk(model_file, tmp_path, small_fs, cli):
    feats = tmp_path / "f.safetensors"
    assert cli("features", model_file, "--limit", "64", "--out", feats).code == 0
    fs = small_fs("256k")
    fill(fs)
    out = fs / "probe.safetensors"
    code, text, err = cli("linear-probe", feats, "--epochs", "2", "--out", out)
    assert code == 1, text + err
    assert said_full(err, out) and not out.exists() and no_temporaries(fs)


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_export_onto_a_full_disk(model_file, small_fs, cli, fmt, suffix):
    # torchscript serialises in C++, which aborted the whole process on a full disk
    fs = small_fs("256k")
    fill(fs, free=8192)
    out = fs / f"m{suffix}"
    code, text, err = cli("export", model_file, "--to", fmt, "--out", out)
    assert code == 1, text + err
    assert said_full(err, out) and not out.exists() and no_temporaries(fs)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_summary_plot_onto_a_full_disk(small_fs, cli, suffix):
    fs = small_fs("256k")
    fill(fs, free=4096)
    out = fs / f"layers{suffix}"
    code, text, err = cli("summary", "lenet5", "--plot", out)
    assert code == 1, text + err
    assert said_full(err, out) and f"wrote {out}" not in err
    assert not out.exists() and no_temporaries(fs)  # an SVG used to be left half-written


def test_the_api_raises_one_clear_error(small_fs):
    fs = small_fs("64k")
    fill(fs)
    with pytest.raises(OutputWriteError, match="No space left on device.*free on its file system"):
        save_model(fs / "m.safetensors", create_model("lenet5"))
    assert OutputWriteError.exit_code == 1 and no_temporaries(fs) and not (fs / "m.safetensors").exists()


def test_a_failed_write_keeps_the_old_file(small_fs):
    fs = small_fs("64k")
    target = fs / "notes.txt"
    atomic_write_text(target, "old")
    fill(fs)
    with pytest.raises(OutputWriteError, match="notes.txt"):
        atomic_write_text(target, "new" * 100_000)
    assert target.read_text() == "old" and no_temporaries(fs)


# -- read-only and unwritable destinations --------------------------------------------------
def test_read_only_file_system(model_file, small_fs, cli):
    fs = small_fs("1m")
    remount_read_only(fs)
    for argv, out in ((["export", model_file, "--to", "torchscript", "--out"], fs / "m.pt"),
                      (["features", model_file, "--limit", "16", "--out"], fs / "f.safetensors")):
        code, text, err = cli(*argv, out)
        assert code == 1, (argv, text + err)
        assert "Read-only file system" in " ".join(err.split()) and str(out) in " ".join(err.split()), err
        assert not out.exists()
    # summary --plot checks its destination before the work: refused (exit 2), saying why
    code, text, err = cli("summary", "lenet5", "--plot", fs / "p.png")
    assert code == 2 and "read-only file system" in err and not (fs / "p.png").exists()


def test_train_into_a_read_only_file_system(small_fs, cli):
    fs = small_fs("1m")
    (fs / "run").mkdir()
    remount_read_only(fs)
    code, text, err = cli("train", "tiny_cnn", "--epochs", "1", "--out", fs / "run", *TINY_ARGS)
    assert code == 2 and "Read-only file system" in err  # refused before training (the folder guard)


def _without_root_privileges(*argv: object) -> subprocess.CompletedProcess:
    """`cnnzoo ARGV` as root without the capabilities that bypass file permissions: file modes
    apply to it as to any user (a non-root user cannot run this checkout's Python here)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop the permission-bypassing capabilities")
    cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m", "cnnzoo",
           *map(str, argv)]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_an_unwritable_folder_as_a_user(model_file, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    r = _without_root_privileges("export", model_file, "--to", "torchscript", "--out", locked / "m.pt")
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Permission denied" in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert list(locked.iterdir()) == []


def test_a_model_file_you_may_not_read_says_permission_denied(model_file, tmp_path):
    secret = tmp_path / "secret.safetensors"
    shutil.copy(model_file, secret)
    secret.chmod(0)
    for argv in (["summary", secret], ["features", secret, "--limit", "4", "--out", tmp_path / "f.safetensors"]):
        r = _without_root_privileges(*argv)
        assert r.returncode == 2, r.stderr[-2000:]
        text = " ".join(r.stderr.split())
        assert "Permission denied" in text and "No such file" not in text, text


def test_a_training_state_you_may_not_read_says_permission_denied(tmp_path, cli):
    assert cli("train", "tiny_cnn", "--epochs", "1", "--out", tmp_path / "run", *TINY_ARGS).code == 0
    (tmp_path / "run/checkpoint.safetensors").chmod(0)
    r = _without_root_privileges("train", "--resume", tmp_path / "run", "--epochs", "2")
    # tiny_cnn is registered by the tests only: the refusal comes before the model is looked up
    assert r.returncode == 2 and "Permission denied" in r.stderr and "No such file" not in r.stderr, r.stderr


# -- temporaries of a process killed during a save ------------------------------------------
SAVER = """
import sys, time
from cnnzoo.files import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a checkpoint")
    print("saving", flush=True)
    time.sleep(120)
"""


def test_kill_9_during_a_save_leaves_a_temporary_the_next_write_removes(tmp_path):
    target = tmp_path / "checkpoint.safetensors"
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(target)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(SRC)})
    try:
        assert proc.stdout.readline().strip() == "saving"
        left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(left) == 1 and f"-{proc.pid}." in left[0].name  # the writer's pid is in its name
        atomic_write_text(tmp_path / "metrics.csv", "a\n")
        assert left[0].exists()  # its writer is alive: kept
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not target.exists() and left[0].exists()
    old = time.time() - STALE_AFTER_S - 5
    os.utime(left[0], (old, old))
    with atomic_path(tmp_path / "metrics.csv") as tmp:
        tmp.write_text("b\n")
    assert not left[0].exists() and no_temporaries(tmp_path)
    assert (tmp_path / "metrics.csv").read_text() == "b\n"
