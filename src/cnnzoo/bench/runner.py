"""A whole benchmark run: every case side by side, then the fast paths and the training loop."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable, Sequence

import torch

from ..errors import InvalidArgumentError
from .cases import QUICK_MODELS, BenchError, Case, main_cases
from .fastpath_bench import bench_fastpath
from .loop import bench_loop
from .machine import machine_info
from .names import MODES
from .settings import Settings, full_settings, quick_settings
from .side_by_side import bench_case

# Issue 8's floors on an H100 (synthetic data), images/s of ResNet-50 with the GPU fast path.
GPU_FLOORS = {("resnet50", "train"): 3000.0, ("resnet50", "infer"): 10000.0}


def run(cases: Sequence[Case] | None = None, settings: Settings | None = None, *,
        models: Iterable[str] | None = None, quick: bool = False,
        modes: Sequence[str] = MODES, fastpath: bool = True, loop: bool = True,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns a JSON-ready dict (machine, settings, per-model results, ...)."""
    s = settings or (quick_settings() if quick else full_settings())
    s.check()
    if not modes or any(m not in MODES for m in modes):
        raise InvalidArgumentError(f"--modes takes {' and/or '.join(MODES)}, got {','.join(modes)!r}")
    threads_before = torch.get_num_threads()
    cudnn_before = torch.backends.cudnn.benchmark
    if s.threads and s.device == "cpu":
        torch.set_num_threads(s.threads)
    if s.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    try:
        return _run(cases, s, models, quick, modes, fastpath, loop, progress)
    finally:  # a library call leaves the process as it was
        torch.set_num_threads(threads_before)
        torch.backends.cudnn.benchmark = cudnn_before


def _run(cases: Sequence[Case] | None, s: Settings, models: Iterable[str] | None, quick: bool,
         modes: Sequence[str], fastpath: bool, loop: bool,
         progress: Callable[[str], None] | None) -> dict[str, Any]:
    skipped: list[dict[str, str]] = []
    if cases is None:
        cases, skipped = main_cases(models if models is not None else (QUICK_MODELS if quick else None))
    started, cpu_started = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {"machine": machine_info(s.device), "settings": vars(s).copy(),
                              "quick": quick, "models": [], "skipped": skipped}
    for case in cases:
        if progress:
            progress(f"{case.name}: building and checking against {case.reference}")
        try:
            result["models"].append(bench_case(case, s, modes, progress))
        except BenchError as err:
            result["skipped"].append({"model": case.name, "reason": str(err)})
    if s.device.startswith("cuda"):
        result["floors"] = _floors(result["models"])
    if fastpath:
        result["fastpath"] = bench_fastpath(s, quick=quick, progress=progress)
    if loop:
        result["loop"] = bench_loop(s, quick=quick, progress=progress)
    result["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    result["wall_s"] = time.perf_counter() - started
    result["cpu_s"] = time.process_time() - cpu_started  # this process's CPU time: load-independent
    return result


def _floors(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each GPU floor that this run measured, with whether ours met it."""
    return [{"model": r["model"], "mode": mode, "floor_images_per_s": floor,
             "images_per_s": r[mode]["ours"]["images_per_s"],
             "met": r[mode]["ours"]["images_per_s"] >= floor, "mfu": r[mode]["ours"].get("mfu")}
            for r in results for (name, mode), floor in GPU_FLOORS.items()
            if r["model"] == name and mode in r]
