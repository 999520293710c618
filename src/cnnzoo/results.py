"""The result vocabulary. Every accuracy and error the library hands out (the Python API, every
`--format json`, serve's API, the experiments' files, a model record's metrics) is a percent
and its key says so: `test_acc_pct`, `top1_err_pct`, `val_top5_err_pct`; a difference of two
percents is in points (`_pts`). Losses, counts and seconds keep their own units (`test_loss`,
`images`, `train_time_s`). docs/results.md is the schema; `KEYS` is what it lists (a test
holds the two equal and checks that every result uses only these metric keys).

metrics.csv is a log, not a result: its columns keep the training engine's fractions."""

from __future__ import annotations

from typing import Any

PCT, PTS = "_pct", "_pts"

# Every metric key a result may carry: key -> its meaning (the unit is in the key).
KEYS: dict[str, str] = {
    "acc_pct": "top-1 accuracy",
    "top1_err_pct": "top-1 error (100 - top-1 accuracy)",
    "top5_err_pct": "top-5 error: the label is not among the 5 highest scores",
    "top1_acc_pct": "top-1 accuracy (published figures, compare's chart)",
    "top5_acc_pct": "top-5 accuracy (published weights)",
    "train_acc_pct": "top-1 accuracy on the training images",
    "val_acc_pct": "top-1 accuracy on the validation split",
    "val_top1_err_pct": "top-1 error on the validation split",
    "val_top5_err_pct": "top-5 error on the validation split",
    "test_acc_pct": "top-1 accuracy on the test split",
    "test_top1_err_pct": "top-1 error on the test split",
    "test_top5_err_pct": "top-5 error on the test split",
    "per_class_acc_pct": "per class: the share of its test images classified correctly",
    "members_mean_top1_err_pct": "an ensemble's members: their mean top-1 error",
    "best_member_top1_err_pct": "an ensemble's members: the lowest top-1 error",
    "fp32_acc_pct": "int8 check: top-1 accuracy of the float model",
    "int8_acc_pct": "int8 check: top-1 accuracy of the quantized model",
    "acc_change_pts": "int8 check: int8 minus fp32 top-1 accuracy, in points",
    "disagree_pct": "int8 check: images whose prediction changed",
    "target_acc_pct": "time to accuracy: the test accuracy both loops race to",
    "ours_acc_pct": "time to accuracy: our loop's test accuracy at the end of its race",
    "plain_acc_pct": "time to accuracy: the plain loop's test accuracy at the end of its race",
}


def pct(fraction: float | None) -> float | None:
    """A fraction as a percent, rounded to 4 decimals: 0.9712 -> 97.12 (None stays None)."""
    return None if fraction is None else round(100 * fraction, 4)


def err_pct(acc: float | None) -> float | None:
    """The error in percent of an accuracy given as a fraction: 0.9712 -> 2.88."""
    return None if acc is None else round(100 * (1 - acc), 4)


def scores(prefix: str, acc: float | None, top5: float | None) -> dict[str, float | None]:
    """A split's accuracy, top-1 and top-5 error from the engine's fractions (acc, top5):
    scores("test", 0.97, 0.999) -> test_acc_pct 97.0, test_top1_err_pct 3.0, test_top5_err_pct 0.1.
    An empty prefix gives acc_pct, top1_err_pct, top5_err_pct."""
    p = f"{prefix}_" if prefix else ""
    return {f"{p}acc_pct": pct(acc), f"{p}top1_err_pct": err_pct(acc), f"{p}top5_err_pct": err_pct(top5)}


def published(pub: Any) -> dict[str, Any]:
    """A published figure (registry.Published, whose errors are percents) in the vocabulary:
    source, params, macs, top1_err_pct, top5_err_pct, dataset."""
    return {"source": pub.source, "params": pub.params, "macs": pub.macs,
            "top1_err_pct": pub.top1_err, "top5_err_pct": pub.top5_err, "dataset": pub.dataset}


def to_json(obj: Any, indent: int | None = 2) -> str:
    """The one JSON writer of results (every `--format json`, bench's and the experiments'
    files): strict JSON, in which NaN and Infinity do not exist, so a non-finite number (a
    diverged loss, a damaged record's statistics) is written as null; other objects as str()."""
    import json

    return json.dumps(_finite(obj), indent=indent, default=str, allow_nan=False)


def _finite(obj: Any) -> Any:
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy / torch scalars
        return _finite(obj.item())
    return obj
