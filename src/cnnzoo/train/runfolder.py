"""The run folder (--out): checked before any training, locked while a run trains, never
overwritten by accident, and a failed write reported with the way back.

- `open_run_folder` creates the folder and proves it writable (a file created, linked as the
  lock and removed), locks it (a lock file holding the owner's pid: a live owner is refused,
  a dead one's lock is taken over with a note), and refuses a folder that holds another run
  unless the run resumes it or `overwrite` is set (then the old run's files are removed).
- `writing(...)` turns an OSError of a writer (full disk, read-only file system) into an
  `OutputWriteError` that says what failed, that the last good checkpoint is kept, and how to
  resume. The writers are atomic, so that checkpoint is intact.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import CnnzooError, JobFailedError
from . import state as ckpt
from .logs import CURVES_FILE, METRICS_FILE
from .plan import Plan
from .reporter import Reporter

LOCK_FILE = ".cnnzoo-train.lock"
RUN_FILES = (ckpt.STATE_FILE, ckpt.MODEL_FILE, METRICS_FILE, CURVES_FILE)
RUN_DIRS = ("tensorboard",)


class RunFolderError(CnnzooError):
    """--out cannot take this run: not writable, in use by another training, or another run's."""


class OutputWriteError(JobFailedError):
    """A checkpoint, model file or log could not be written during training (exit 1)."""


def _reason(err: OSError) -> str:
    name = errno.errorcode.get(err.errno or 0, "")
    return f"{err.strerror or err}" + (f" ({name})" if name else "")


def _create(out_dir: Path) -> None:
    """mkdir -p, with an error that names the cause (a file in the way, no permission...)."""
    for parent in [out_dir, *out_dir.parents]:
        if parent.exists():
            if not parent.is_dir():
                what = "is a file" if parent == out_dir else f"is under {parent}, which is a file"
                raise RunFolderError(f"--out {out_dir} {what}, not a folder; choose another --out")
            break
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"cannot create --out {out_dir}: {_reason(err)}; choose another --out") from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _lock_owner(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _lock(out_dir: Path, reporter: Reporter) -> Path:
    """Take the folder's lock. The pid is written to a private file first, which is then linked
    as the lock (atomic, fails if a lock exists): creating and removing that file also proves
    the folder writable before any training."""
    path, mine = out_dir / LOCK_FILE, out_dir / f"{LOCK_FILE}.{os.getpid()}"
    try:
        mine.write_text(f"{os.getpid()}\n")
        for _ in range(3):
            try:
                os.link(mine, path)
                return path
            except FileExistsError:
                owner = _lock_owner(path)
                if owner is not None and _pid_alive(owner):
                    raise RunFolderError(
                        f"--out {out_dir} is in use by another training (pid {owner}, lock file {path}); "
                        "wait for it to finish or stop it, or choose another --out") from None
                why = f"pid {owner} is not running" if owner is not None else "it names no process"
                reporter.message(f"[yellow]note:[/] taking over the stale lock of {out_dir} ({why})")
                path.unlink(missing_ok=True)
        raise RunFolderError(f"could not lock --out {out_dir}: other processes keep taking it")
    except OSError as err:
        raise RunFolderError(f"--out {out_dir} is not writable: {_reason(err)}; choose another --out") from None
    finally:
        try:
            mine.unlink(missing_ok=True)
        except OSError:
            pass


def unlock(lock: Path) -> None:
    """Remove the lock if this process holds it."""
    if _lock_owner(lock) == os.getpid():
        lock.unlink(missing_ok=True)


def _is_resumed_folder(plan: Plan, out_dir: Path) -> bool:
    if plan.saved_state is None or plan.resume is None:
        return False
    rpath = Path(plan.resume)
    return (rpath if rpath.is_dir() else rpath.parent).resolve() == out_dir.resolve()


def _check_run_files(plan: Plan, out_dir: Path) -> None:
    found = [f for f in RUN_FILES if (out_dir / f).exists()]
    if not found or _is_resumed_folder(plan, out_dir):
        return
    if plan.overwrite:
        for name in RUN_FILES:
            (out_dir / name).unlink(missing_ok=True)
        for name in RUN_DIRS:
            shutil.rmtree(out_dir / name, ignore_errors=True)
        return
    raise RunFolderError(
        f"--out {out_dir} already holds a run ({', '.join(found)}); continue it with --resume {out_dir}, "
        "replace it with --overwrite, or choose another --out")


def open_run_folder(plan: Plan, out_dir: Path, reporter: Reporter) -> Path:
    """Create, probe and lock `out_dir` for `plan`; returns the lock (give it to `unlock`)."""
    _create(out_dir)
    lock = _lock(out_dir, reporter)
    try:
        _check_run_files(plan, out_dir)
    except BaseException:
        unlock(lock)
        raise
    return lock


@contextmanager
def writing(what: str, out_dir: Path, saved_step: int | None) -> Iterator[None]:
    """Report an OSError while writing `what` as an OutputWriteError naming the way back."""
    try:
        yield
    except OSError as err:
        if saved_step is None:
            kept = "no checkpoint was written yet: fix it and start the run again"
        else:
            kept = (f"the last good checkpoint (step {saved_step}) is kept in {out_dir}; fix it, then "
                    f"continue with `cnnzoo train --resume {out_dir}`")
        raise OutputWriteError(f"could not write the {what} in {out_dir}: {_reason(err)}; {kept}") from None
