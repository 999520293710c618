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
        raise InvalidArgumentError(f"cannot write plot {str(p)!r}: permission denied or not a file")
    return p


def _save(fig: Any, path: Path) -> Path:
    try:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    except OSError as err:
        raise InvalidArgumentError(f"cannot write plot {str(path)!r}: {err.strerror or err}") from err
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
    """Bubble chart: x = G multiply-adds, y = top-1 accuracy (%), bubble area ~ parameters.

    items: dicts with name, macs, params, top1_acc (None where nothing is published: such a
    model is listed under the chart instead of placed on it).
    """
    path = check_plot_path(path)
    placed = [i for i in items if i.get("top1_acc") is not None]
    missing = [i["name"] for i in items if i.get("top1_acc") is None]
    if not placed:
        raise InvalidArgumentError(
            "none of " + ", ".join(i["name"] for i in items) + " has a published top-1 error in "
            "the registry, so the accuracy-vs-operations chart has nothing to place")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6.5))
    biggest = max(i["params"] for i in placed) or 1
    scale = 4000.0 / biggest  # points^2 per parameter: the largest bubble is ~4000 pt^2
    cmap = plt.get_cmap("tab10")
    xs = [i["macs"] / 1e9 for i in placed]
    ys = [i["top1_acc"] for i in placed]
    xmax, ymin, ymax = max(xs) * 1.2 + 0.1, min(ys) - 4, max(ys) + 4
    ax.set_xlim(0, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_xlabel("Operations (G multiply-adds, one image)")
    datasets = sorted({i.get("dataset") or "?" for i in placed})
    ax.set_ylabel(f"Top-1 accuracy (%, {', '.join(datasets)})")
    ax.set_title("Comparing complexity: accuracy vs operations (bubble area ~ parameters)")
    ax.grid(alpha=0.3)
    for n in _legend_sizes(biggest):  # reference bubbles
        ax.scatter([], [], s=n * scale, color="grey", alpha=0.35, edgecolors="black",
                   label=f"{n / 1e6:g}M params")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), labelspacing=3.4, borderpad=1.8,
              handlelength=4.5, handletextpad=2.2, fontsize=8, frameon=True, title="bubble area")
    if missing:
        fig.text(0.01, 0.01, "not shown (no published accuracy): " + ", ".join(missing), fontsize=8)
    fig.tight_layout()
    # Labels are placed in points: beside the bubble, inside the axes, clear of earlier labels.
    to_pt = 72.0 / fig.dpi
    (ax0, ay0), (ax1, ay1) = ax.bbox.get_points() * to_pt
    boxes: list[tuple[float, float, float, float]] = []
    for k, it in enumerate(placed):
        gx, acc = it["macs"] / 1e9, it["top1_acc"]
        s = max(it["params"] * scale, 12)
        ax.scatter(gx, acc, s=s, alpha=0.45, color=cmap(k % 10), edgecolors="black", linewidths=0.6)
        ax.plot(gx, acc, "k.", markersize=3)
        label = f"{it['name']}\n{it['params'] / 1e6:.1f}M params"
        r = (s / 3.1416) ** 0.5 * 0.75 + 4  # points from the centre to just outside the bubble
        cx, cy = ax.transData.transform((gx, acc)) * to_pt
        w, h = max(len(t) for t in label.split("\n")) * 5.8 + 4, 26.0
        best = None
        for reach in (1.0, 1.8, 2.8):
            for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (0.3, 1.6), (0.3, -1.6)):
                ox, oy = dx * r * reach, dy * r * reach
                x0 = cx + ox if dx > 0 else cx + ox - w
                y0 = cy + oy if dy > 0 else cy + oy - h
                box = (x0, y0, x0 + w, y0 + h)
                inside = x0 >= ax0 and box[2] <= ax1 and y0 >= ay0 and box[3] <= ay1
                free = all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3]
                           for b in boxes)
                if best is None and inside:
                    best = (box, ox, oy, dx, dy)
                if inside and free:
                    best = (box, ox, oy, dx, dy)
                    break
            else:
                continue
            break
        if best is None:  # nowhere inside: above right
            best = ((cx + r, cy + r, cx + r + w, cy + r + h), r, r, 1, 1)
        box, ox, oy, dx, dy = best
        boxes.append(box)
        ax.annotate(label, (gx, acc), xytext=(ox, oy), textcoords="offset points", fontsize=9,
                    ha="left" if dx > 0 else "right", va="bottom" if dy > 0 else "top",
                    arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.6})
    return _save(fig, path)


def _legend_sizes(biggest: int) -> list[int]:
    """Up to three reference bubbles: the largest round size the chart reaches and two smaller."""
    sizes = [int(c) for c in (1e5, 5e5, 1e6, 5e6, 25e6, 50e6, 100e6, 500e6, 1e9) if c <= biggest * 1.2]
    if not sizes:
        return [int(biggest)]
    top = sizes[-1]
    return [c for c in sizes if c <= top / 4][-2:] + [top]
