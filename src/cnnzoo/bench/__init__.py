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

Modules, lowest first: timing (ABBA timing), settings, machine (machine info, peaks), cases
(models, references, weights, MACs), side_by_side (the timed steps), loop (the training-loop
benchmark), fastpath_bench (the inference fast paths), report (text), runner (`run`).
"""

from .cases import (
                    MAIN_MODELS,
                    QUICK_MODELS,
                    BenchError,
                    Case,
                    flop_counter_macs,
                    main_cases,
                    model_macs,
                    torchvision_builder,
                    transfer_weights,
                    zoo_case,
)
from .fastpath_bench import bench_fastpath
from .loop import bench_loop
from .machine import PEAK_BF16_FLOPS, machine_info, peak_flops
from .report import format_report
from .runner import GPU_FLOORS, MODES, run
from .settings import Settings, full_settings, quick_settings, settings_from
from .side_by_side import CompileFallbackError, bench_case, compare, loss_of, make_infer_step, make_train_step
from .timing import time_interleaved

__all__ = [
    "GPU_FLOORS", "MAIN_MODELS", "MODES", "PEAK_BF16_FLOPS", "QUICK_MODELS", "BenchError", "Case",
    "CompileFallbackError",
    "Settings", "bench_case", "bench_fastpath", "bench_loop", "compare", "flop_counter_macs",
    "format_report", "full_settings", "loss_of", "machine_info", "main_cases", "make_infer_step",
    "make_train_step", "model_macs", "peak_flops", "quick_settings", "run", "settings_from",
    "time_interleaved", "torchvision_builder", "transfer_weights", "zoo_case",
]
