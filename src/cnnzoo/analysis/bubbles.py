"""The lectures' "comparing complexity" bubble chart, drawn so it cannot mislead: one panel per
dataset (accuracies from different datasets never share an axis), bubbles inside the axes, and
labels placed by a search that keeps every label off every bubble and every other label, with
leader lines that do not cross. The footnote names what is missing (no top-1, or top-5 only).
The placement rule (`place_boxes`) is also the web app's (serve.chart lays out the Zoo page's
charts with it)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..errors import InvalidArgumentError

PAD = 3.0  # pixels kept free around bubbles and labels


def missing_note(items: Sequence[dict]) -> str:
    """'not shown (no published top-1 accuracy): googlenet (top-5 only), x (none)'."""
    gone = [i for i in items if i.get("top1_acc_pct") is None]
    if not gone:
        return ""
    parts = [f"{i['name']} ({'top-5 error only' if i.get('top5_err_pct') is not None else 'no published error'})"
             for i in gone]
    return "not shown (no published top-1 accuracy): " + ", ".join(parts)


def draw_compare(items: Sequence[dict], plt: Any = None) -> Any:
    """The figure (matplotlib), one panel per dataset; `plots.plot_compare` saves it. `plt`:
    matplotlib.pyplot on the backend the caller chose (default: Agg)."""
    if plt is None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    placed = [i for i in items if i.get("top1_acc_pct") is not None]
    if not placed:
        raise InvalidArgumentError(
            "none of " + ", ".join(i["name"] for i in items) + " has a published top-1 error in "
            "the registry, so the accuracy-vs-operations chart has nothing to place")
    groups: dict[str, list[dict]] = {}
    for i in placed:
        groups.setdefault(i.get("dataset") or "unknown dataset", []).append(i)
    fig, axes = plt.subplots(1, len(groups), figsize=(8.5 * len(groups) + 1.8, 6.5), squeeze=False)
    biggest = max(i["params"] for i in placed) or 1
    scale = 3000.0 / biggest  # points^2 per parameter: the largest bubble is ~3000 pt^2
    fig.subplots_adjust(left=0.08 / len(groups), right=1 - 0.17 / len(groups), bottom=0.13, top=0.9, wspace=0.25)
    for ax, (dataset, group) in zip(axes[0], sorted(groups.items())):
        _panel(fig, ax, group, scale, dataset)
    for n in legend_sizes(biggest):  # reference bubbles, beside the last panel
        axes[0][-1].scatter([], [], s=n * scale, color="grey", alpha=0.35, edgecolors="black",
                            label=f"{n / 1e6:g}M params")
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), labelspacing=3.0, borderpad=1.6,
                       handlelength=4.0, handletextpad=2.0, fontsize=8, frameon=True, title="bubble area")
    fig.suptitle("Comparing complexity: accuracy vs operations (bubble area ~ parameters)")
    note = missing_note(items)
    if note:
        fig.text(0.01, 0.015, note, fontsize=8)
    return fig


def _limits(fig: Any, ax: Any, xs: list[float], ys: list[float], radii_pt: list[float]) -> None:
    """Axis limits that keep every bubble whole, with room for labels (a few passes: the margin
    in data units depends on the limits themselves)."""
    ax.set_xlim(0, max(xs) * 1.15 + 0.1)
    ax.set_ylim(min(ys) - 3, max(ys) + 3)
    for _ in range(4):
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        bb = ax.get_window_extent()
        px = [r * fig.dpi / 72 for r in radii_pt]
        ux, uy = (x1 - x0) / bb.width, (y1 - y0) / bb.height  # data units per pixel
        room = 60  # pixels of label room beyond the outermost bubbles
        lo_x = min(x - (p + room * 0.5) * ux for x, p in zip(xs, px))
        hi_x = max(x + (p + room * 2) * ux for x, p in zip(xs, px))
        lo_y = min(y - (p + room * 0.6) * uy for y, p in zip(ys, px))
        hi_y = max(y + (p + room * 0.6) * uy for y, p in zip(ys, px))
        ax.set_xlim(min(0.0, lo_x), hi_x)
        ax.set_ylim(lo_y, hi_y)
    ax.xaxis.set_major_formatter(_nonnegative())


def _nonnegative() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: "" if v < -1e-9 else f"{v:g}")


def _panel(fig: Any, ax: Any, group: list[dict], scale: float, dataset: str) -> None:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    xs = [i["macs"] / 1e9 for i in group]
    ys = [i["top1_acc_pct"] for i in group]
    sizes = [max(i["params"] * scale, 12) for i in group]
    radii_pt = [math.sqrt(s / math.pi) for s in sizes]
    _limits(fig, ax, xs, ys, radii_pt)
    ax.set_xlabel("Operations (G multiply-adds, one image)")
    ax.set_ylabel(f"Top-1 accuracy (%, {dataset})")
    ax.set_title(dataset, fontsize=10)
    ax.grid(alpha=0.3)
    for k, (x, y, s) in enumerate(zip(xs, ys, sizes)):
        ax.scatter(x, y, s=s, alpha=0.45, color=cmap(k % 10), edgecolors="black", linewidths=0.6, zorder=2)
        ax.plot(x, y, "k.", markersize=3, zorder=3)
    centres = [tuple(ax.transData.transform((x, y))) for x, y in zip(xs, ys)]
    circles = [(cx, cy, r * fig.dpi / 72) for (cx, cy), r in zip(centres, radii_pt)]
    labels = [f"{i['name']}\n{i['params'] / 1e6:.1f}M params" for i in group]
    place_labels(fig, ax, circles, labels)


def _rect_circle(box: tuple[float, float, float, float], c: tuple[float, float, float]) -> bool:
    x0, y0, x1, y1 = box
    dx = max(x0 - c[0], 0.0, c[0] - x1)
    dy = max(y0 - c[1], 0.0, c[1] - y1)
    return dx * dx + dy * dy < (c[2] + PAD) ** 2


def _rects(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return not (a[2] + PAD <= b[0] or b[2] + PAD <= a[0] or a[3] + PAD <= b[1] or b[3] + PAD <= a[1])


def _cross(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float], s: tuple[float, float]) -> bool:
    """Whether segments pq and rs properly intersect."""
    def orient(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2, d3, d4 = orient(r, s, p), orient(r, s, q), orient(p, q, r), orient(p, q, s)
    return d1 * d2 < 0 and d3 * d4 < 0


def _segment_hits_circle(p: tuple[float, float], q: tuple[float, float], c: tuple[float, float, float]) -> bool:
    (px, py), (qx, qy) = p, q
    vx, vy = qx - px, qy - py
    t = max(0.0, min(1.0, ((c[0] - px) * vx + (c[1] - py) * vy) / (vx * vx + vy * vy or 1.0)))
    return math.hypot(px + t * vx - c[0], py + t * vy - c[1]) < c[2]


Box = tuple[float, float, float, float]
Point = tuple[float, float]
# Distances from the bubble's edge tried in turn (pixels); the far ones only when the near ones
# are all taken, as in a dense corner of the zoo.
GAPS = (4, 14, 28, 48, 75, 110, 160, 220, 300, 400)


def place_boxes(circles: Sequence[tuple[float, float, float]], sizes: Sequence[tuple[float, float]],
                frame: Box) -> list[tuple[Box, Point, Point]]:
    """The placement rule of every bubble chart (the CLI's and the web page's): for label k of
    size (w, h), a box (x0, y0, x1, y1) in pixels with y up that touches no bubble, no other
    label and stays in `frame`, and a leader line (edge of bubble k, nearest point of the box)
    that crosses no other leader or bubble. Greedy, biggest bubble first, nearest free position
    first (upper right preferred); returned in the labels' order."""
    out: dict[int, tuple[Box, Point, Point]] = {}
    boxes: list[Box] = []
    leaders: list[tuple[Point, Point]] = []
    for k in sorted(range(len(sizes)), key=lambda k: -circles[k][2]):
        cx, cy, r = circles[k]
        w, h = sizes[k]
        best: tuple[Box, Point, Point] = ((cx, cy, cx, cy), (cx, cy), (cx, cy))  # replaced at once
        best_cost = math.inf
        for gap in GAPS:
            for deg in range(0, 360, 15):
                a = math.radians(deg)
                ux, uy = math.cos(a), math.sin(a)
                bx = cx + ux * (r + gap + w / 2 * abs(ux))
                by = cy + uy * (r + gap + h / 2 * abs(uy))
                box = (bx - w / 2, by - h / 2, bx + w / 2, by + h / 2)
                edge = (cx + ux * r, cy + uy * r)
                near = (min(max(edge[0], box[0]), box[2]), min(max(edge[1], box[1]), box[3]))
                cost = gap + 0.02 * ((deg - 45) % 360)  # prefer upper right, then around
                cost += 1e4 * (box[0] < frame[0] or box[2] > frame[2] or box[1] < frame[1] or box[3] > frame[3])
                cost += 1e4 * sum(_rect_circle(box, c) for c in circles)
                cost += 1e4 * sum(_rects(box, b) for b in boxes)
                cost += 1e3 * sum(_cross(edge, near, p, q) for p, q in leaders)
                cost += 1e3 * sum(_segment_hits_circle(edge, near, c) for j, c in enumerate(circles) if j != k)
                if cost < best_cost:
                    best, best_cost = (box, edge, near), cost
            if best_cost < 1e3:
                break
        box, edge, near = best
        boxes.append(box)
        if math.dist(edge, near) > 3:
            leaders.append((edge, near))
        out[k] = best
    return [out[k] for k in range(len(sizes))]


def place_labels(fig: Any, ax: Any, circles: list[tuple[float, float, float]], labels: list[str]) -> list[Any]:
    """Matplotlib's side of `place_boxes`: the labels' measured extents in, text artists and
    grey leader lines (where the label is more than 3 pixels from its bubble) out."""
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent()
    texts = [ax.text(0, 0, label, fontsize=8.5, ha="center", va="center", zorder=4) for label in labels]
    sizes = [(bb.width, bb.height) for bb in (t.get_window_extent(renderer) for t in texts)]
    inv = ax.transData.inverted()
    for t, (box, edge, near) in zip(texts, place_boxes(circles, sizes, (frame.x0, frame.y0, frame.x1, frame.y1))):
        t.set_position(inv.transform(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)))
        if math.dist(edge, near) > 3:
            (x0, y0), (x1, y1) = inv.transform(edge), inv.transform(near)
            ax.plot([x0, x1], [y0, y1], color="grey", lw=0.6, zorder=1)
    return texts


def legend_sizes(biggest: int) -> list[int]:
    """Up to three reference bubbles: the largest round size the chart reaches and two smaller."""
    sizes = [int(c) for c in (1e5, 5e5, 1e6, 5e6, 25e6, 50e6, 100e6, 500e6, 1e9) if c <= biggest * 1.2]
    if not sizes:
        return [int(biggest)]
    top = sizes[-1]
    return [c for c in sizes if c <= top / 4][-2:] + [top]
