"""Lecture-style figures: per-layer bars (seed 003's AlexNet memory / params / MFLOP charts) and
the "comparing complexity" bubble chart (accuracy against operations, area ~ parameters).

matplotlib is imported only when a figure is drawn: it costs more than the rest of the
analyzer, and `cnnzoo summary` without --plot never needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import InvalidArgumentError
from .report import Report

FORMATS = (".png", ".svg")
MAX_BARS = 80  # more bars than this get grouped (see plot_layers)
_COLORS = {"conv": "#1f77b4", "linear": "#2ca02c", "pool": "#ff7f0e", "norm": "#7f7f7f",
           "flatten": "#9467bd", "group": "#17becf", "other": "#8c564b"}


def check_plot_path(path: str | os.PathLike) -> Path:
    """A path we can write a PNG or SVG to; a clear error otherwise (before any work)."""
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise InvalidArgumentError(
            f"plot file {str(p)!r} must end in {' or '.join(FORMATS)} (the format follows the extension)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidArgumentError(f"cannot write plot {str(p)!r}: directory {str(parent)!r} does not exist")
    if p.is_dir() or not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        why = "a read-only file system" if _read_only(parent) else "permission denied or not a file"
        raise InvalidArgumentError(f"cannot write plot {str(p)!r}: {why}")
    return p


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _save(fig: Any, path: Path) -> Path:
    """Through the one writer: a full disk is an OutputWriteError (exit 1), nothing half-written."""
    from ..files import save_figure

    try:
        save_figure(fig, path, dpi=150, bbox_inches="tight")
    except InvalidArgumentError as err:  # a path that can never hold a file
        raise InvalidArgumentError(f"cannot write plot {str(path)!r}: {getattr(err, 'reason', err)}") from None
    finally:
        import matplotlib.pyplot as plt  # loaded already by _pyplot; no backend switch here

        plt.close(fig)
    return path


def _pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_layers(report: Report, path: str | os.PathLike, flops: bool = False,
                all_layers: bool = False) -> Path:
    """Three bar charts, one bar per layer: memory (KB), params (k), MFLOP (or MMAC)."""
    path = check_plot_path(path)
    plt = _pyplot()
    rows = report.visible_rows(all_layers)
    if not rows:
        raise InvalidArgumentError(f"{report.model_name} has no layers to plot")
    grouped = ""
    if len(rows) > MAX_BARS and report.depth is None:
        # hundreds of bars are unreadable: group by name prefix, as deep as still fits
        for depth in range(1, 9):
            agg = report.aggregate(depth)
            if len(agg.visible_rows(all_layers)) > MAX_BARS:
                break
            rows, grouped = agg.visible_rows(all_layers), f", layers grouped to depth {depth}"
    names = [r.name for r in rows]
    colors = [_COLORS.get(r.kind, "#8c564b") for r in rows]
    ops_label = "MFLOP (2 x multiply-adds)" if flops else "M multiply-adds"
    series = [("Memory (KB)", [r.memory / 1024 for r in rows], "output activations"),
              ("Params (k)", [r.params / 1000 for r in rows], "weights + biases"),
              (ops_label, [(r.flops if flops else r.macs) / 1e6 for r in rows], "operations")]
    width = min(40.0, max(8.0, 0.32 * len(rows) + 2))
    fig, axes = plt.subplots(3, 1, figsize=(width, 9.5), sharex=True)
    x = range(len(rows))
    for ax, (label, values, what) in zip(axes, series):
        ax.bar(x, values, color=colors)
        ax.set_ylabel(label)
        ax.set_title(f"{what} per layer", fontsize=10, loc="left")
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(list(x))
    axes[-1].set_xticklabels(names, rotation=60 if len(rows) > 12 else 30, ha="right",
                             fontsize=8 if len(rows) > 30 else 9)
    axes[-1].set_xlabel("layer (execution order)")
    size = "x".join(map(str, report.input_size))
    fig.suptitle(f"{report.model_name} at {size}: memory, parameters and operations per layer{grouped}")
    kinds = sorted({r.kind for r in rows})
    from matplotlib.patches import Patch  # pyplot above has loaded matplotlib by now

    axes[0].legend(handles=[Patch(color=_COLORS.get(k, "#8c564b"), label=k) for k in kinds],
                   fontsize=8, loc="upper right")
    fig.tight_layout()
    return _save(fig, path)


def plot_compare(items: Sequence[dict], path: str | os.PathLike) -> Path:
    """Bubble chart: x = G multiply-adds, y = top-1 accuracy (%), bubble area ~ parameters, one
    panel per dataset (see bubbles.py).

    items: dicts with name, macs, params, top1_acc_pct, top5_err_pct, dataset (top1_acc_pct None where no
    top-1 is published: such a model is named under the chart instead of placed on it).
    """
    from .bubbles import draw_compare

    path = check_plot_path(path)
    return _save(draw_compare(items, _pyplot()), path)


