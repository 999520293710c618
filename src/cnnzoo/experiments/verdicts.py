"""The one rule every trained experiment's verdict comes from (docs/experiments.md, "Verdicts").

Each arm of a comparison is trained with several seeds; an arm's result is the spread of its
seeds' values (mean, sample standard deviation, min, max). A claim compares two arms: "arm
HIGHER's value exceeds arm LOWER's by more than THRESHOLD points" (errors: HIGHER is the arm the
paper says is worse; THRESHOLD is 0 for "better", negative for "at most that much worse"). With
d = mean(HIGHER) - mean(LOWER) and the margin

    m = max(MIN_MARGIN_PTS, 2 * sqrt(s_low^2 / n_low + s_high^2 / n_high))

(two standard errors of the difference of the two means, from the seeds' own spread):

    d - m > THRESHOLD  ->  "reproduced"       (the paper's effect, beyond the seeds' spread)
    d + m < THRESHOLD  ->  "contradicted"     (the opposite, beyond the spread)
    otherwise          ->  "not reproduced"   (the spread cannot tell them apart at this size)

A claim with several parts is reproduced when every part is, contradicted when any part is,
and otherwise not reproduced. Nothing else decides a verdict."""

from __future__ import annotations

import math
from typing import Any, Sequence

MIN_MARGIN_PTS = 0.2  # 3 seeds can agree by chance: no margin below a fifth of a point
STATUSES = ("reproduced", "not reproduced", "contradicted")


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _var(xs: Sequence[float]) -> float:
    """Sample variance (n - 1); 0 for a single value."""
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """An arm's seeds: mean, std (sample), min, max, n and the values themselves."""
    xs = [float(v) for v in values]
    return {"mean": round(_mean(xs), 3), "std": round(math.sqrt(_var(xs)), 3), "min": round(min(xs), 3),
            "max": round(max(xs), 3), "n": len(xs), "values": [round(x, 3) for x in xs]}


def margin_pts(lower: Sequence[float], higher: Sequence[float], floor: float = MIN_MARGIN_PTS) -> float:
    """Two standard errors of the difference of the two arms' means (at least `floor`)."""
    se = math.sqrt(_var(lower) / len(lower) + _var(higher) / len(higher))
    return round(max(floor, 2 * se), 3)


def decide(lower: Sequence[float], higher: Sequence[float], *, threshold: float = 0.0,
           claim: str = "") -> dict[str, Any]:
    """The claim "mean(higher) - mean(lower) > threshold", judged against the seeds' spread."""
    if not lower or not higher:
        raise ValueError("decide() needs at least one value per arm")
    d = _mean(higher) - _mean(lower)
    m = margin_pts(lower, higher)
    status = "reproduced" if d - m > threshold else "contradicted" if d + m < threshold else "not reproduced"
    return {"claim": claim, "status": status, "difference_pts": round(d, 3), "margin_pts": m,
            "threshold_pts": threshold}


def combine(parts: Sequence[dict[str, Any]]) -> str:
    """Several parts: reproduced if all are, contradicted if any is, else not reproduced."""
    statuses = [p["status"] for p in parts]
    if "contradicted" in statuses:
        return "contradicted"
    return "reproduced" if all(s == "reproduced" for s in statuses) else "not reproduced"


def count_part(claim: str, holds: bool, measured: str) -> dict[str, Any]:
    """A part that is a count (the analyzer's, exact: no seeds): reproduced or contradicted."""
    return {"claim": claim, "status": "reproduced" if holds else "contradicted", "measured": measured}


def describe(part: dict[str, Any]) -> str:
    """One line: the claim, the difference against its margin, the outcome."""
    if "difference_pts" not in part:
        return f"{part['claim']}: {part['measured']} -> {part['status']}"
    return (f"{part['claim']}: {part['difference_pts']:+.2f} pts (margin {part['margin_pts']:.2f}, "
            f"threshold {part['threshold_pts']:+.2f}) -> {part['status']}")


RULE = ("verdict from the seeds' spread: d = difference of the two arms' means, m = max(0.2, 2 x "
        "standard error of that difference); reproduced if d - m > threshold, contradicted if "
        "d + m < threshold, else not reproduced (docs/experiments.md)")
