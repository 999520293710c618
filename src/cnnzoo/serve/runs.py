"""The Runs page: training runs under --runs, read from what `cnnzoo train` writes (metrics.csv,
the model file's record, the PNG figures), nothing kept in memory."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..errors import CnnzooError, ModelFileError
from ..modelfile import read_record
from ..runfolder import METRICS_FILE, MODEL_FILE, is_run_folder, read_metrics
from .state import ForbiddenPathError, NotFoundError, safe_run_path

FIGURE_SUFFIXES = (".png", ".svg")


def list_runs(runs: Path) -> list[dict[str, Any]]:
    """Run folders directly under `runs` (or one level deeper), newest first. A run that cannot
    be read (a broken metrics.csv or record, a dangling link, an unreadable file) is listed
    with an "error" saying why and no numbers; the others are listed as usual."""
    if not runs.is_dir():
        return []
    try:
        entries = sorted(runs.iterdir())
    except OSError as err:
        return [{"name": ".", "error": f"the runs folder cannot be read ({err.strerror or err})"}]
    root = runs.resolve()
    out = []
    for p in entries:
        try:
            cands = [p] + (sorted(q for q in p.iterdir() if q.is_dir()) if _is_dir(p) and not is_run_folder(p) else [])
        except OSError as err:
            out.append(_flag(runs, p, f"cannot be read ({err.strerror or err})"))
            continue
        for c in cands:
            try:
                real = c.resolve()
                if is_run_folder(c) and (real == root or root in real.parents):  # no symlinks out
                    out.append(_summary(runs, c))
            except (CnnzooError, OSError, RuntimeError) as err:  # RuntimeError: a symlink loop
                out.append(_flag(runs, c, _clean(err, c)))
    out.sort(key=lambda r: -r["mtime"])
    return out


def _is_dir(p: Path) -> bool:
    return p.is_dir()  # PermissionError propagates (Path.is_dir swallows only 'not there')


def _inside(runs: Path, folder: Path) -> None:
    """A run's metrics.csv or model file that is a symlink out of --runs is not read."""
    root = runs.resolve()
    for name in (METRICS_FILE, MODEL_FILE):
        real = (folder / name).resolve()
        if real != root and root not in real.parents:
            raise ForbiddenPathError(f"{name} is a symlink that leads out of the runs folder; not read")


def _summary(runs: Path, c: Path) -> dict[str, Any]:
    _inside(runs, c)
    metrics = read_metrics(c)
    rec = _record(c, strict=True)
    return {"name": c.relative_to(runs).as_posix(), "model": (rec or {}).get("model"),
            "epochs": len(metrics), "last": metrics[-1] if metrics else None,
            "has_model": (c / MODEL_FILE).is_file(), "mtime": _mtime(c)}


def _flag(runs: Path, c: Path, why: str) -> dict[str, Any]:
    """A run left out of the numbers, with why (the page shows the message)."""
    return {"name": c.relative_to(runs).as_posix(), "error": why, "model": None, "epochs": None,
            "last": None, "has_model": False, "mtime": _mtime(c)}


def _mtime(folder: Path) -> float:
    times = []
    try:
        for f in folder.iterdir():
            try:
                times.append(f.stat().st_mtime)
            except OSError:  # a dangling symlink: its own time
                times.append(f.lstat().st_mtime)
    except OSError:
        pass
    return max(times, default=0)


def _clean(err: Exception, folder: Path) -> str:
    """The message without the server's absolute path to the run."""
    return str(err).replace(f"{folder.resolve()}{os.sep}", "").replace(f"{folder}{os.sep}", "")


def _record(folder: Path, strict: bool = False) -> dict[str, Any] | None:
    """The model file's record (None if there is none yet). A record that cannot be read, or
    that holds a NaN or infinity (JSON has none): None, or with `strict` a ModelFileError."""
    path = folder / MODEL_FILE
    try:
        if not path.is_file():
            if strict and path.is_symlink():
                raise ModelFileError(f"{MODEL_FILE} is a symlink to nothing")
            return None
        rec = read_record(path)
        bad = _non_finite(rec)
        if bad:
            raise ModelFileError(f"{MODEL_FILE}: its record holds {bad}")
        return rec
    except (CnnzooError, OSError):
        if strict:
            raise
        return None


def _non_finite(value: Any, where: str = "") -> str | None:
    """Where `value` holds a NaN or infinite float ("metrics.val_loss = nan"), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'a number'} = {value}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        bad = _non_finite(v, f"{where}.{k}" if where else str(k))
        if bad:
            return bad
    return None


def run_detail(runs: Path, name: str) -> dict[str, Any]:
    """A run's metrics, record and figures. What cannot be read is left empty and named in
    "error" (200: the figures and the rest stay useful)."""
    folder = safe_run_path(runs, name)
    if not is_run_folder(folder):
        raise NotFoundError(f"{name!r} is not a run folder (no {METRICS_FILE} or {MODEL_FILE})")
    _inside(runs, folder)
    errors, metrics, rec = [], [], None
    try:
        metrics = read_metrics(folder)
    except CnnzooError as err:
        errors.append(str(err))
    try:
        rec = _record(folder, strict=True)
    except (CnnzooError, OSError) as err:
        errors.append(_clean(err, folder))
    try:
        figures = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                         if p.suffix in FIGURE_SUFFIXES and not p.is_symlink() and p.is_file())
    except OSError as err:
        figures = []
        errors.append(f"its figures cannot be listed ({err.strerror or err})")
    m = (rec or {}).get("metrics")
    confusion = (rec or {}).get("confusion") or (m.get("confusion") if isinstance(m, dict) else None)
    out = {"name": name, "metrics": metrics, "record": rec, "figures": figures, "confusion": confusion}
    if errors:
        out["error"] = "; ".join(errors)
    return out


def figure_path(runs: Path, name: str, figure: str) -> Path:
    """A PNG or SVG inside a run folder (same refusal rules as any other path)."""
    path = safe_run_path(runs, f"{name}/{figure}")
    if path.suffix not in FIGURE_SUFFIXES or not path.is_file():
        raise NotFoundError(f"{figure!r} is not a figure of run {name!r}")
    return path


def run_model_file(runs: Path, name: str) -> Path:
    folder = safe_run_path(runs, name)
    path = folder / MODEL_FILE if folder.is_dir() else folder
    if path.name != MODEL_FILE and path.suffix != ".safetensors":
        raise NotFoundError(f"{name!r}: no model file")
    if not path.is_file():
        raise NotFoundError(f"run {name!r} has no {MODEL_FILE} (still training, or no kept model yet)")
    return safe_run_path(runs, path.relative_to(runs.resolve()).as_posix())
