"""Timing shared by every benchmark: steps interleaved A B / B A, medians, one sync per rep.

ABBA order means drift from other processes on a shared machine hits both sides alike.
Throughput needs no host sync inside a timed repetition: each repetition is `iters` calls
closed by one device synchronise.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

from .. import devices


def sync(device: str) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    devices.synchronize(device)


def time_interleaved(steps: dict[str, Callable[[], Any]], *, reps: int, iters: int = 1,
                     warmup: int = 1, device: str = "cpu",
                     progress: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each step: `reps` repetitions per step, in ABBA order, each
    repetition `iters` calls closed by one device sync."""
    names = list(steps)
    for _ in range(warmup):
        for n in names:
            steps[n]()
    sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        for n in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            for _ in range(iters):
                steps[n]()
            sync(device)
            times[n].append((time.perf_counter() - t0) / iters)
        if progress:
            progress(f"rep {r + 1}/{reps}")
    return times


def summarize(times: list[float], batch: int) -> dict[str, Any]:
    """Median / min / max milliseconds of one side and its images/s at the median."""
    med = statistics.median(times)
    return {"median_ms": med * 1e3, "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3,
            "images_per_s": batch / med}
