"""The Runs page: training runs under --runs, read from what `cnnzoo train` writes (metrics.csv,
the model file's record, the PNG figures), nothing kept in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CnnzooError
from ..modelfile import read_record
from ..runfolder import METRICS_FILE, MODEL_FILE, is_run_folder, read_metrics
from .state import NotFoundError, safe_run_path

FIGURE_SUFFIXES = (".png", ".svg")


def list_runs(runs: Path) -> list[dict[str, Any]]:
    """Run folders directly under `runs` (or one level deeper), newest first."""
    if not runs.is_dir():
        return []
    root = runs.resolve()
    found = []
    for p in sorted(runs.iterdir()):
        cands = [p] + (sorted(q for q in p.iterdir() if q.is_dir()) if p.is_dir() and not is_run_folder(p) else [])
        for c in cands:
            real = c.resolve()
            if is_run_folder(c) and (real == root or root in real.parents):  # no symlinks out
                found.append(c)
    out = []
    for c in found:
        rel = c.relative_to(runs).as_posix()
        metrics = read_metrics(c)
        rec = _record(c)
        out.append({"name": rel, "model": (rec or {}).get("model"), "epochs": len(metrics),
                    "last": metrics[-1] if metrics else None, "has_model": (c / MODEL_FILE).is_file(),
                    "mtime": max((f.stat().st_mtime for f in c.iterdir()), default=0)})
    out.sort(key=lambda r: -r["mtime"])
    return out


def _record(folder: Path) -> dict[str, Any] | None:
    try:
        return read_record(folder / MODEL_FILE) if (folder / MODEL_FILE).is_file() else None
    except CnnzooError:
        return None


def run_detail(runs: Path, name: str) -> dict[str, Any]:
    folder = safe_run_path(runs, name)
    if not is_run_folder(folder):
        raise NotFoundError(f"{name!r} is not a run folder (no {METRICS_FILE} or {MODEL_FILE})")
    rec = _record(folder)
    figures = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                     if p.suffix in FIGURE_SUFFIXES and p.is_file() and not p.is_symlink())
    metrics = (rec or {}).get("metrics")
    confusion = (rec or {}).get("confusion") or (metrics.get("confusion") if isinstance(metrics, dict) else None)
    return {"name": name, "metrics": read_metrics(folder), "record": rec, "figures": figures,
            "confusion": confusion}


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
