"""Every number a user or a file can give, bounded in one table: its name, smallest and largest
value and why. A value outside its bound is refused (exit 2) before anything is allocated: an
input of 99999999999999999999999 pixels, a seed torch cannot hold, 100000 threads (a
segmentation fault), a classifier of 10^9 classes (18 GB) or an ONNX record declaring a
100000x100000 input would otherwise reach memory or C first.

    check("threads", n, "--threads")          # n, or BoundError naming the value, bound and reason
    check_size((3, 224, 224), "--input")      # each side and the element count

The CLI's options (commands/_options.py `bounded`), the recipe fields (train/recipes.py), the
config loader, the model and ONNX records and the library's entry points all read this table;
docs/training.md's "Bounds" table is tested against it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import InvalidArgumentError


@dataclass(frozen=True)
class Bound:
    """One number's range, both ends included; `integer`: whole numbers only (no booleans)."""

    name: str
    low: float
    high: float
    why: str
    integer: bool = True

    def describe(self) -> str:
        """'1 <= threads <= 64' as a person reads it."""
        if self.high == math.inf:
            return f"{self.name} >= {_num(self.low)}, finite"
        return f"{_num(self.low)} <= {self.name} <= {_num(self.high)}"


def _num(v: float) -> str:
    if v == math.inf:
        return "any finite number"
    return f"{int(v):,}".replace(",", "_") if float(v).is_integer() and abs(v) >= 10_000 else f"{v:g}"


_MEGA, _GIGA = 10**6, 10**9
BOUNDS: dict[str, Bound] = {b.name: b for b in [
    Bound("channels", 1, 1024, "input channels of one image (hyperspectral: a few hundred)"),
    Bound("side", 1, 16384, "an input's height or width in pixels; larger does not fit a device"),
    Bound("input_elements", 1, 2**28, "C*H*W of one input: 2^28 float32 values are 1 GiB per image"),
    Bound("batch_size", 1, 65536, "images per batch; one more doubling exceeds any device's memory"),
    Bound("seed", 0, 2**32 - 1, "what torch and numpy both take as a seed (derived seeds stay in int64)"),
    Bound("threads", 1, 1024, "CPU threads: more than the cores only slows, and 100000 exhausts the "
          "process's thread limit (a segmentation fault)"),
    Bound("workers", 0, 256, "data-loading processes, each a copy of the loader"),
    Bound("epochs", 1, 100_000, "passes over the data; more would never finish"),
    Bound("steps", 0, 10**12, "optimizer steps, milestones and step intervals (int64-safe)",
          integer=False),  # milestones scaled from iterations to epochs may fall between two
    Bound("patience", 0, 100_000, "epochs without improvement"),
    Bound("classes", 1, _MEGA, "classes of a classifier: ImageNet-21k has 21,841; 10^9 is 18 GB"),
    Bound("label", 0, _MEGA - 1, "a class index (features files, --classes): 0 <= label < classes"),
    Bound("top_k", 1, _MEGA, "classes shown per image (at most the model's classes are shown)"),
    Bound("tolerance", 0, math.inf, "an absolute difference: a finite number >= 0", integer=False),
    Bound("limit", 1, _GIGA, "the first N images"),
    Bound("per_class", 1, _MEGA, "images per class"),
    Bound("images", 0, _GIGA, "images to read, write or check"),
    Bound("repeats", 1, 10_000, "timed repetitions"),
    Bound("depth", 1, 64, "module nesting of a layer name"),
    Bound("yaml_depth", 0, 32, "nesting of a config file: recipe fields are flat (a list at most)"),
]}


class BoundError(InvalidArgumentError):
    """A number outside its bound (exit 2): names the value, the bound and the reason."""


def problem(name: str, value: Any, label: str | None = None) -> str | None:
    """What is wrong with `value` as bounded quantity `name` (None: nothing); `label` is how
    the user gave it (an option, a field, a file's key)."""
    b = BOUNDS[name]
    label = label or name
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a whole number" if b.integer else "a number"
        return f"{label} must be {kind}, got {value!r} ({b.describe()}: {b.why})"
    if b.integer and not (isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())):
        return f"{label} must be a whole number, got {value!r} ({b.describe()}: {b.why})"
    if not math.isfinite(value):
        return f"{label} must be a finite number, got {value} ({b.describe()}: {b.why})"
    if value < b.low and b.low in (0, 1):
        sign = "positive" if b.low == 1 else "zero or more"
        return f"{label} must be {sign}, got {_shown(value)} ({b.describe()}: {b.why})"
    if not b.low <= value <= b.high:
        return f"{label} is {_shown(value)}, outside {b.describe()}: {b.why}"
    return None


def _shown(v: float) -> str:
    """A value as the message shows it: 1e+26 rather than 27 digits."""
    return f"{v:g}" if isinstance(v, float) or abs(v) >= 10**15 else str(v)


def check(name: str, value: Any, label: str | None = None) -> Any:
    """`value` if it is within bound `name`, else BoundError; integers come back as int."""
    message = problem(name, value, label)
    if message:
        raise BoundError(message)
    b = BOUNDS[name]
    return int(value) if b.integer else value


def check_optional(name: str, value: Any, label: str | None = None) -> Any:
    return None if value is None else check(name, value, label)


def check_size(size: Iterable[Any], label: str = "input size") -> tuple[int, ...]:
    """(C, H, W) (or (C, L), (C, D, H, W)): channels, each side and their product bounded."""
    size = tuple(size)
    if not size:
        raise BoundError(f"{label} is empty: give C, H and W, e.g. 3x224x224")
    out = [check("channels", size[0], f"{label}'s channels")]
    out += [check("side", v, f"{label}'s side") for v in size[1:]]
    check("input_elements", math.prod(out), f"{label} ({'x'.join(map(str, out))})")
    return tuple(out)


def yaml_depth(data: Any, label: str) -> None:
    """Refuse a parsed config nested deeper than the table allows (10,000 levels would raise
    RecursionError in whatever walks it next); the walk itself stops at the bound."""
    limit = int(BOUNDS["yaml_depth"].high)
    level = [data]
    for depth in range(limit + 2):
        nxt = []
        for v in level:
            if isinstance(v, dict):
                nxt += list(v.values())
            elif isinstance(v, (list, tuple)):
                nxt += list(v)
        if not nxt:
            return
        if depth >= limit:
            raise too_deep(label)
        level = nxt


def too_deep(label: str) -> BoundError:
    b = BOUNDS["yaml_depth"]
    return BoundError(f"{label} is nested more than {int(b.high)} levels deep ({b.describe()}: {b.why})")


def table() -> list[dict[str, str]]:
    """One row per bound (docs/training.md's "Bounds" table is tested against it)."""
    return [{"name": b.name, "min": _num(b.low), "max": _num(b.high), "why": b.why} for b in BOUNDS.values()]
