"""The Zoo page's bubble charts (published top-1 accuracy against multiply-adds, area ~
parameters), laid out here so that the page and `cnnzoo compare --plot` follow one label rule
(`analysis.bubbles.place_boxes`): no label on a bubble or on another label, leader lines where
a label had to move away. The page only draws what this returns, in an SVG whose viewBox is
WIDTH x HEIGHT scaled to the page's width, so every position keeps its distance.

Label widths are estimated from Helvetica's advance widths, and the page draws each label with
exactly that width (SVG `textLength`), so the boxes placed here are the boxes drawn."""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..analysis.bubbles import legend_sizes, place_boxes

WIDTH, HEIGHT = 1200, 600
FRAME = (64.0, 16.0, 1010.0, 552.0)  # plot area (left, top, right, bottom) in SVG pixels (y down)
FONT_PX = 10.0
LABEL_H = 13.0
R_MAX = 26.0  # radius of the biggest bubble
R_MIN = 3.0
# Helvetica advance widths (1/1000 em); anything not listed counts as a wide 600
_NARROW = dict.fromkeys("fijlt.,:;!|' ", 278) | {"r": 333, "-": 333, "(": 333, ")": 333}
_WIDE = dict.fromkeys("mw", 800) | dict.fromkeys("MW", 900)
_MID = dict.fromkeys("ckszvxy", 500)


def label_width(text: str) -> float:
    """The width in pixels a label is drawn with (FONT_PX sans-serif, SVG textLength)."""
    per_mille = sum(_NARROW.get(c) or _WIDE.get(c) or _MID.get(c) or (556 if c.islower() or c.isdigit()
                                                                        or c == "_" else 667) for c in text)
    return round(per_mille * FONT_PX / 1000 + 2, 1)


def _ticks(lo: float, hi: float) -> list[float]:
    """1, 2, 5 x powers of ten inside [lo, hi] (fewer when they would crowd)."""
    out = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            if lo <= m * 10 ** e <= hi:
                out.append(m * 10.0 ** e)
    return out if len(out) <= 12 else [t for t in out if str(t).startswith("1")]


def layout(rows: Sequence[dict[str, Any]], dataset: str) -> dict[str, Any]:
    """One chart: bubbles, labels, leader lines, ticks and legends in SVG pixels (y down).
    `rows`: the zoo's rows of one dataset with a published top-1 error."""
    pts = [r for r in rows if r.get("top1_err_pct") is not None and r.get("macs")]
    left, top, right, bottom = FRAME
    fams = sorted({r["family"] for r in pts})
    biggest = max((r["params"] for r in pts), default=1) or 1
    radius = [max(R_MIN, R_MAX * math.sqrt(r["params"] / biggest)) for r in pts]
    lx = [math.log10(r["macs"]) for r in pts] or [0.0]
    ys = [100 - r["top1_err_pct"] for r in pts] or [50.0]
    # room for the biggest bubbles and for labels beyond the outermost ones (above 100% too:
    # no tick is drawn there)
    x0, x1 = min(lx) - 0.25, max(lx) + 0.45
    y0, y1 = math.floor(min(ys) - 3), math.ceil(max(ys) + 4)

    def sx(v: float) -> float:
        return left + (math.log10(v) - x0) / (x1 - x0) * (right - left)

    def sy(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * (bottom - top)

    circles = [(sx(r["macs"]), sy(100 - r["top1_err_pct"]), rad) for r, rad in zip(pts, radius)]
    sizes = [(label_width(r["name"]), LABEL_H) for r in pts]
    # place_boxes works with y up (its preferred corner is the upper right): flip and back
    placed = place_boxes([(x, HEIGHT - y, rad) for x, y, rad in circles], sizes,
                         (left, HEIGHT - bottom, right, HEIGHT - top))
    bubbles, labels = [], []
    for r, (x, y, rad), (box, edge, near) in zip(pts, circles, placed):
        bubbles.append({"name": r["name"], "x": round(x, 1), "y": round(y, 1), "r": round(rad, 1),
                        "family": fams.index(r["family"])})
        label = {"name": r["name"], "x0": round(box[0], 1), "y0": round(HEIGHT - box[3], 1),
                 "w": round(box[2] - box[0], 1), "h": LABEL_H}
        if math.dist(edge, near) > 3:
            label["leader"] = [round(edge[0], 1), round(HEIGHT - edge[1], 1), round(near[0], 1),
                               round(HEIGHT - near[1], 1)]
        labels.append(label)
    step = max(1, round((y1 - y0) / 8))
    first = math.ceil(y0 / step) * step
    return {"dataset": dataset, "width": WIDTH, "height": HEIGHT, "frame": list(FRAME),
            "x_ticks": [[round(sx(t), 1), t] for t in _ticks(10 ** x0, 10 ** x1)],
            "y_ticks": [[round(sy(v), 1), v] for v in range(first, int(min(y1, 100)) + 1, step)],
            "bubbles": sorted(bubbles, key=lambda b: -b["r"]),  # small ones drawn last, on top
            "labels": labels, "families": fams,
            "sizes": [[n, round(max(R_MIN, R_MAX * math.sqrt(n / biggest)), 1)] for n in legend_sizes(biggest)]}


def charts(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One chart per dataset (accuracies on MNIST and on ImageNet never share an axis),
    ImageNet first; models without a published top-1 error are left out."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("top1_err_pct") is not None:
            groups.setdefault(r.get("dataset") or "unknown", []).append(r)
    order = sorted(groups, key=lambda d: (d != "ImageNet", d))
    return [layout(groups[d], d) for d in order]
