"""The output guard: where a verb may write its file, checked before any work is done.

One rule for every writer of a user-named file (each verb's --out, --plot, --plot-confusion,
convert's OUT, and the library functions behind them: export_model, quantize_model,
save_features, Finetuned.save, the visual save_* functions):

- never onto one of its own inputs: the same file by any spelling, link or hard link; a run
  folder given as an input brings its own files, an ONNX input its external data (`X.onnx.data`);
- never onto a run folder's own files (runfolder.RUN_FILES, its lock, its TensorBoard folder),
  whichever run's: a run folder is recognised by what only training writes there (its training
  state, metrics.csv, curves or lock), so a folder holding just a model file is not one;
- over an existing file only when told (`overwrite=True`, the CLI's `--overwrite`), and never
  over something that is not a regular file (a folder, a FIFO, a device);
- only where a file can be written: a name within the file system's NAME_MAX less the room the
  temporary name written first needs, a path within PATH_MAX, no folder in the way that is a
  file, and a writable folder (missing folders are created by the writer).

The library uses the same keyword with the same default as the CLI: `overwrite=False`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Iterable

from .errors import CnnzooError
from .runfolder import LOCK_FILE, METRICS_FILE, MODEL_FILE, REPLACED_DIR, RUN_DIRS, RUN_FILES, STATE_FILE

# A run folder's own names, and the ones that prove a folder is one (a lone model file does not:
# finetune and convert write model files too).
# REPLACED_DIR: the run an --overwrite set aside, kept until the new run's first checkpoint.
OWN_DIRS = (*RUN_DIRS, REPLACED_DIR)
RUN_NAMES = frozenset((*RUN_FILES, LOCK_FILE, *OWN_DIRS))
RUN_MARKERS = tuple(n for n in (*RUN_FILES, LOCK_FILE) if n != MODEL_FILE)
# Writers put a temporary beside the target first (files.atomic_path: ".NAME.XXXXXXXX.tmp";
# export: ".STEM.unchecked.SUFFIX" inside that): the target's name leaves room for them.
TEMP_NAME_ROOM = 32
_NAME_MAX, _PATH_MAX = 255, 4096  # where pathconf cannot say


class OutputError(CnnzooError):
    """An output file that may not or cannot be written there (exit 2): the message says why
    and what to do."""


def check_output(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                 overwrite: bool = False, label: str = "output", flag: str = "overwrite=True") -> Path:
    """`path` as a Path if a verb may write its output there, else an OutputError.

    `inputs`: the files and folders the verb reads (None and names that are no path are
    skipped). `label` names the path in messages (`--out`), `flag` the way to allow replacing
    an existing file (`--overwrite`)."""
    raw = os.fspath(path)
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    shown = raw if len(raw) <= 100 else f"{raw[:60]}...{raw[-30:]}"
    said = f"{label} {shown}" if label.startswith("-") else f"{label} {shown!r}"
    if not raw or "\x00" in raw:
        raise OutputError(f"{said}: not a file name" + (" (it holds a NUL character)" if raw else ""))
    p = Path(raw)
    if raw.endswith(os.sep) or raw.endswith("/."):
        raise OutputError(f"{said} names a folder: give a file name, e.g. {Path(raw) / 'out'}")
    _check_lengths(p, said)
    _check_not_input(p, inputs, said)
    _check_not_run_file(p, said)
    _check_target(p, said, overwrite, flag, label)
    _check_folder(p, said, label)
    return p


def _lexists(p: str | os.PathLike) -> bool:
    """os.path.lexists that also answers False for a name the system refuses (too long...)."""
    try:
        os.lstat(p)
    except (OSError, ValueError):
        return False
    return True


def _existing_ancestor(p: Path) -> Path:
    for parent in p.absolute().parents:
        if _lexists(parent) and parent.is_dir():
            return parent
    return Path(os.sep)


def _limit(folder: Path, name: str, fallback: int) -> int:
    try:
        value = os.pathconf(folder, name)
    except (OSError, ValueError):
        return fallback
    return value if value and value > 0 else fallback


def _check_lengths(p: Path, said: str) -> None:
    """On the text alone, before the path is handed to the system (which would raise)."""
    where = _existing_ancestor(p)
    name_max = _limit(where, "PC_NAME_MAX", _NAME_MAX)
    path_max = _limit(where, "PC_PATH_MAX", _PATH_MAX)
    size = len(os.fsencode(str(p.absolute())))
    if size + TEMP_NAME_ROOM >= path_max:
        raise OutputError(f"{said}: the path is {size} bytes, too long for this file system (PATH_MAX "
                          f"{path_max}, less {TEMP_NAME_ROOM} for the temporary file); choose a shorter path")
    for part in p.parts[:-1]:
        if len(os.fsencode(part)) > name_max:
            raise OutputError(f"{said}: the folder name {part[:24]}... is {len(os.fsencode(part))} bytes, over the "
                              f"file system's limit of {name_max}; choose a shorter name")
    room = name_max - TEMP_NAME_ROOM
    if len(os.fsencode(p.name)) > room:
        raise OutputError(f"{said}: the file name is {len(os.fsencode(p.name))} bytes; this file system allows "
                          f"{name_max} and the temporary file written first needs {TEMP_NAME_ROOM} of them: "
                          f"use a name of at most {room} bytes")


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return a.absolute() == b.absolute()


def _input_files(source: Path) -> list[Path]:
    """An input and what comes with it: a run folder's own files, an ONNX file's external data."""
    if source.is_dir():
        return [source / n for n in sorted(RUN_NAMES)]
    return [source, Path(f"{source}.data")] if source.suffix == ".onnx" else [source]


def _check_not_input(p: Path, inputs: Iterable[str | os.PathLike | None], said: str) -> None:
    if not _lexists(p):
        return  # a file that is not there is nobody's input
    for given in inputs:
        if given is None or not _lexists(os.fspath(given)):
            continue  # a model name, an unset option
        for f in _input_files(Path(os.fspath(given))):
            if _lexists(f) and _same(p, f):
                what = "" if f == Path(os.fspath(given)) else f" ({f.name}, part of {os.fspath(given)})"
                raise OutputError(f"{said} is this command's own input{what}: writing it would destroy what "
                                  "it reads; choose another output file")


def run_folder_of(p: str | os.PathLike) -> Path | None:
    """The run folder whose own file (or a file in whose TensorBoard folder) `p` is, if any;
    through links too."""
    p = Path(p)
    for c in {p.absolute(), p.resolve()}:
        if c.name in RUN_NAMES and _is_run(c.parent):
            return c.parent
        if c.parent.name in OWN_DIRS and _is_run(c.parent.parent):
            return c.parent.parent
    return None


def _is_run(folder: Path) -> bool:
    return any(_lexists(folder / m) for m in RUN_MARKERS)


def _check_not_run_file(p: Path, said: str) -> None:
    folder = run_folder_of(p)
    if folder is not None:
        raise OutputError(f"{said} is a file of the training run in {folder} (its {STATE_FILE}, {MODEL_FILE}, "
                          f"{METRICS_FILE}, ... belong to the run and are never replaced by another command, "
                          "--overwrite or not); choose another output file")


def _check_target(p: Path, said: str, overwrite: bool, flag: str, label: str) -> None:
    if not _lexists(p):
        return
    if p.is_dir():
        raise OutputError(f"{said} is a folder; give a file name, e.g. {p / 'out'}")
    if p.exists() and not p.is_file():
        raise OutputError(f"{said} exists and is not a regular file (a device, pipe or socket); "
                          f"choose another {label}")
    if not overwrite:
        raise OutputError(f"{said} exists; add {flag} to replace it, or choose another {label}")


def _check_folder(p: Path, said: str, label: str) -> None:
    parent = p.absolute().parent
    for folder in [parent, *parent.parents]:
        if _lexists(folder):
            break
    if not folder.exists():
        raise OutputError(f"{said} is under {folder}, a broken link; choose another {label}")
    if not folder.is_dir():
        raise OutputError(f"{said} is under {folder}, which is a file, not a folder; choose another {label}")
    # the effective user is the one that writes (a setuid program, or a test acting as another)
    effective = os.access in os.supports_effective_ids
    if not os.access(folder, os.W_OK | os.X_OK, effective_ids=effective):
        try:
            read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        why = "is on a read-only file system" if read_only else "is not writable by this user"
        raise OutputError(f"{said}: the folder {folder} {why}; choose another {label} "
                          f"({os.strerror(errno.EROFS if read_only else errno.EACCES)})")


def check_output_folder(folder: str | os.PathLike, files: Iterable[str], *, overwrite: bool = False,
                        label: str = "output folder", flag: str = "overwrite=True") -> Path:
    """`folder` as a Path if a command may write `files` (names) into it: not a file, not a
    training run's folder, and each file as check_output wants it."""
    p, files = Path(os.fspath(folder)), list(files)
    said = f"{label} {p}" if label.startswith("-") else f"{label} {str(p)!r}"
    if _lexists(p) and not p.is_dir():
        raise OutputError(f"{said} is a file; it must be a folder (it receives {', '.join(files)}): "
                          f"choose another {label}")
    if _is_run(p):
        raise OutputError(f"{said} is the folder of a training run; choose another {label}")
    for name in files:
        check_output(p / name, overwrite=overwrite, label=label, flag=flag)
    return p
