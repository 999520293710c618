"""Side-by-side speed benchmarks: our models against the reference, interleaved, in one run.

For each family's main model the reference is torchvision's model of the same architecture
(LeNet-5: the plain nn.Sequential a user would write), loaded with the same weights, and the
outputs are compared before anything is timed. Both sides get identical settings (device,
precision, memory format, compile) so the ratio measures the model code, not the settings.

Timing: after warm-up, repetitions alternate A B / B A (so drift from other processes on a shared
machine hits both sides alike) and each side's median is reported. ratio = ours / reference
throughput (>1 means ours is faster). Throughput needs no host sync inside a timed repetition:
losses accumulate on the device and one synchronise closes each repetition.

Achieved multiply-add rate = MACs per image x images/s; a training step counts 3x the forward
MACs (forward, gradient w.r.t. activations, gradient w.r.t. weights). On CUDA, MFU = 2 x that rate
/ the chip's dense bf16 peak (machine.PEAK_BF16_FLOPS).

Modules, lowest first: names (the choices, without torch), timing (ABBA timing), settings,
machine (machine info, peaks), cases (models, references, weights, MACs), side_by_side (the timed
steps), loop (the training-loop benchmark), fastpath_bench (the inference fast paths), report
(text), runner (`run`). The package imports each on first use of one of its names.
"""
from importlib import import_module
from typing import Any

# The public names and the module each lives in, imported on first use: `cnnzoo bench` builds its help
# from bench.names without loading torch (the bench re-starts itself before torch loads).
_HOMES = {
    "BenchError": "cases",
    "Case": "cases",
    "CompileFallbackError": "side_by_side",
    "GPU_FLOORS": "runner",
    "MAIN_MODELS": "cases",
    "MODES": "names",
    "PEAK_BF16_FLOPS": "machine",
    "QUICK_MODELS": "cases",
    "Settings": "settings",
    "bench_case": "side_by_side",
    "bench_fastpath": "fastpath_bench",
    "bench_loop": "loop",
    "compare": "side_by_side",
    "flop_counter_macs": "cases",
    "format_report": "report",
    "full_settings": "settings",
    "loss_of": "side_by_side",
    "machine_info": "machine",
    "main_cases": "cases",
    "make_infer_step": "side_by_side",
    "make_train_step": "side_by_side",
    "model_macs": "cases",
    "peak_flops": "machine",
    "quick_settings": "settings",
    "run": "runner",
    "settings_from": "settings",
    "time_interleaved": "timing",
    "torchvision_builder": "cases",
    "transfer_weights": "cases",
    "zoo_case": "cases",
}

__all__ = [
    "GPU_FLOORS", "MAIN_MODELS", "MODES", "PEAK_BF16_FLOPS", "QUICK_MODELS", "BenchError", "Case",
    "CompileFallbackError",
    "Settings", "bench_case", "bench_fastpath", "bench_loop", "compare", "flop_counter_macs",
    "format_report", "full_settings", "loss_of", "machine_info", "main_cases", "make_infer_step",
    "make_train_step", "model_macs", "peak_flops", "quick_settings", "run", "settings_from",
    "time_interleaved", "torchvision_builder", "transfer_weights", "zoo_case",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
