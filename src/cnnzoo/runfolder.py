"""A run folder (`cnnzoo train --out`): the one home of its file names, of metrics.csv (written
and read here, with one set of types for every reader), and of the folder's guard while a run
trains.

Two kinds of file, never to be confused:
- the model file (`MODEL_FILE`): weights and record (cnnzoo.modelfile), what eval, predict,
  export and serve read; a run folder given to them means this file;
- the training state (`STATE_FILE`, "checkpoint"): weights, optimizer, scheduler, random states
  (cnnzoo.train.state), what `--resume` reads and nothing else.

The guard:
- `open_run_folder` creates the folder and proves it writable (a file created, linked as the
  lock and removed), locks it (a lock file holding the owner's pid: a live owner is refused,
  a dead one's lock is taken over with a note), and refuses a folder that holds another run
  unless the run resumes it or `overwrite` is set. The old run's files are then set aside
  (REPLACED_DIR) until the new run writes its first checkpoint, and put back if it ends
  before that (a NaN loss, an error, a stop signal, or, at the next open, a kill -9).
- `writing(...)` turns a failed write (full disk, read-only file system: an OSError, or the
  OutputWriteError of cnnzoo.files) into one `OutputWriteError` that names the file and the free
  space, says that the last good checkpoint is kept, and how to resume. The writers are atomic,
  so that checkpoint is intact.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import CnnzooError, OutputWriteError
from .files import atomic_write_text, describe_errno, free_space, write_failure

MODEL_FILE = "model.safetensors"  # the kept weights and record, for eval/predict/export/serve
STATE_FILE = "checkpoint.safetensors"  # the full training state, for --resume only
METRICS_FILE = "metrics.csv"  # one row per epoch
CURVES_FILE = "training_curves.png"
TENSORBOARD_DIR = "tensorboard"
LOCK_FILE = ".cnnzoo-train.lock"  # held while a run trains
REPLACED_DIR = ".cnnzoo-replaced"  # the run --overwrite replaces, kept until the new one has a checkpoint
RUN_FILES = (STATE_FILE, MODEL_FILE, METRICS_FILE, CURVES_FILE)  # any of them: the folder holds a run
RUN_DIRS = (TENSORBOARD_DIR,)

# val_*: the validation split, every `eval_every` epochs; test_*: the test split, scored once at the
# end on the kept weights, so only the kept epoch's row has them
METRICS_FIELDS = ("epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5",
                  "test_loss", "test_acc", "test_top5", "img_per_s", "epoch_time_s")
INT_FIELDS = ("epoch", "step")  # read back as int; every other column as float

def write_metrics(folder: Path, history: list[dict]) -> Path:
    """metrics.csv of `folder` rewritten whole (atomically) from the run's history."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRICS_FIELDS, extrasaction="ignore")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    path = Path(folder) / METRICS_FILE
    atomic_write_text(path, buf.getvalue())
    return path


MAX_METRICS_BYTES = 16 * 2**20  # ~100,000 epochs of rows: more is not a file train wrote


class MetricsFileError(CnnzooError):
    """A metrics.csv that cannot be trusted: unreadable, not UTF-8, too large, a row whose field
    count differs from the header's, or a cell that is not a finite number."""


def _value(field: str, text: str, where: str) -> int | float | None:
    if text == "":
        return None  # a column this epoch has no value for (test_* outside the kept epoch)
    try:
        number = float(text)
    except ValueError:
        raise MetricsFileError(f"{where}: {field} is {text[:40]!r}, not a number") from None
    if not math.isfinite(number):
        raise MetricsFileError(f"{where}: {field} is {text!r}, not a finite number")
    return int(number) if field in INT_FIELDS and number.is_integer() else number


def _metrics_text(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_METRICS_BYTES + 1)
    except OSError as err:
        raise MetricsFileError(f"{METRICS_FILE}: cannot be read ({_reason(err)})") from None
    if len(data) > MAX_METRICS_BYTES:
        raise MetricsFileError(f"{METRICS_FILE} is over {MAX_METRICS_BYTES // 2**20} MiB; not read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MetricsFileError(f"{METRICS_FILE}: not UTF-8 text (byte {err.start})") from None


def read_metrics(folder: Path) -> list[dict[str, int | float | None]]:
    """The rows of `folder`'s metrics.csv ([] if there is none yet): every column of the file in
    every row, epoch and step as int, the rest as float, an empty cell as None. A file train
    cannot have written raises MetricsFileError naming the line (see MAX_METRICS_BYTES)."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        return []
    rows = csv.reader(io.StringIO(_metrics_text(path), newline=""))
    try:
        header = next(rows, [])
        out = []
        for row in rows:
            if not row:
                continue  # a blank line, as csv.DictReader skips it
            where = f"{METRICS_FILE} line {rows.line_num}"
            if len(row) != len(header):
                raise MetricsFileError(f"{where}: {len(row)} fields, expected {len(header)}")
            out.append({k: _value(k, v, where) for k, v in zip(header, row)})
    except csv.Error as err:
        raise MetricsFileError(f"{METRICS_FILE} line {rows.line_num}: {err}") from None
    return out


def is_run_folder(path: Path) -> bool:
    """A folder a run has written to: it has metrics or a model file."""
    return path.is_dir() and ((path / METRICS_FILE).is_file() or (path / MODEL_FILE).is_file())


# -- the guard while a run trains -------------------------------------------------------------
class RunFolderError(CnnzooError):
    """--out cannot take this run: not writable, in use by another training, or another run's."""


def _reason(err: OSError) -> str:
    return describe_errno(err.errno) if err.errno else str(err)


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


def _lock(out_dir: Path, note: Callable[[str], None]) -> Path:
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
                note(f"[yellow]note:[/] taking over the stale lock of {out_dir} ({why})")
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


def _check_run_files(out_dir: Path, resumed: Path | None, overwrite: bool) -> None:
    found = [f for f in RUN_FILES if (out_dir / f).exists()]
    if not found:
        return
    if resumed is not None and (resumed if resumed.is_dir() else resumed.parent).resolve() == out_dir.resolve():
        return
    if overwrite:
        _move_run(out_dir, out_dir / REPLACED_DIR)
        return
    raise RunFolderError(
        f"--out {out_dir} already holds a run ({', '.join(found)}); continue it with --resume {out_dir}, "
        "replace it with --overwrite, or choose another --out")


def _move_run(src: Path, dest: Path) -> None:
    """The run files and folders of `src` renamed into `dest` (the same file system)."""
    dest.mkdir(exist_ok=True)
    for name in RUN_FILES + RUN_DIRS:
        if (src / name).exists():
            os.replace(src / name, dest / name)


def drop_replaced(out_dir: Path) -> None:
    """The new run has its first checkpoint: the run `--overwrite` replaced goes."""
    shutil.rmtree(out_dir / REPLACED_DIR, ignore_errors=True)


def restore_replaced(out_dir: Path) -> bool:
    """A run that ends before its first checkpoint puts back the run `--overwrite` was replacing
    (its own files, if any, go). True if there was one."""
    aside = out_dir / REPLACED_DIR
    if not aside.is_dir() or (out_dir / STATE_FILE).exists():
        drop_replaced(out_dir)
        return False
    for name in RUN_FILES:
        (out_dir / name).unlink(missing_ok=True)
    for name in RUN_DIRS:
        shutil.rmtree(out_dir / name, ignore_errors=True)
    _move_run(aside, out_dir)
    shutil.rmtree(aside, ignore_errors=True)
    return True


def open_run_folder(out_dir: Path, *, resumed: Path | None, overwrite: bool,
                    note: Callable[[str], None]) -> Path:
    """Create, probe and lock `out_dir`; returns the lock (give it to `unlock`). `resumed` is the
    run folder (or its training state) this run continues, if any: that folder may hold a run.
    `note` receives a message when a dead run's lock is taken over."""
    _create(out_dir)
    lock = _lock(out_dir, note)
    try:
        if restore_replaced(out_dir):  # its owner died (kill -9) before the new run's first checkpoint
            note(f"[yellow]note:[/] put back the run in {out_dir} that a killed --overwrite was replacing")
        _check_run_files(out_dir, resumed, overwrite)
    except BaseException:
        unlock(lock)
        raise
    return lock


@contextmanager
def writing(what: str, out_dir: Path, saved_step: int | None) -> Iterator[None]:
    """Report a failed write of `what` (a full disk, a read-only file system) as one
    OutputWriteError that names the file, the free space and the way back. The writers are atomic
    (cnnzoo.files), so the last good checkpoint is intact."""
    try:
        yield
    except (OSError, OutputWriteError) as err:
        if saved_step is None:
            kept = "no checkpoint was written yet: fix it and start the run again"
        else:
            kept = (f"the last good checkpoint (step {saved_step}) is kept in {out_dir}; fix it, then "
                    f"continue with `cnnzoo train --resume {out_dir}`")
        if isinstance(err, OSError):
            failure = write_failure(out_dir, err)
            if failure is None or not isinstance(failure, OutputWriteError):
                raise
            err = failure
        where = getattr(err, "path", out_dir)
        raise OutputWriteError(f"could not write the {what} ({where}): {getattr(err, 'reason', err)}, "
                               f"{free_space(where)} free on its file system; {kept}") from None
