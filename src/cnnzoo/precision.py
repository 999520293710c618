"""Numeric precision: when bf16 autocast pays, and the one autocast context everyone uses."""

from __future__ import annotations

import contextlib
import os

import torch


def _cpu_flag(name: str) -> bool:
    f = getattr(torch.cpu, name, None)
    try:
        return bool(f()) if f is not None else False
    except Exception:
        return False


def cpu_has_amx_bf16() -> bool:
    """CPUs with AMX-BF16 run bf16 convolutions several times faster than fp32 (measured: ResNet-20
    training 2.5x, LeNet-5 1.7x less CPU time)."""
    return _cpu_flag("_is_amx_tile_supported")


# On avx512_bf16 without AMX, bf16 pays only where a step is bound by arithmetic: speednet in
# channels_last gained 1.07x at batch 32 and 1.24-1.26x at 64-256; the LeNet-5 demo (batch 32)
# trained no faster (benchmarks/bf16_by_cpu.py)
AVX512_BF16_MIN_BATCH = 64


def cpu_fast_bf16() -> str | None:
    """Which fast-bf16 feature the CPU has: "amx", "avx512_bf16" or None.

    Both were measured to win (docs/speed.md, "bf16 by CPU feature"): on a 2-core AMD EPYC with
    avx512_bf16 and no AMX, one training step of 128 in bf16 autocast + channels_last against
    fp32 + contiguous took 2.9x less time for speednet, 1.9x ResNet-20, 2.4x speednet_cifar, 1.4x
    LeNet-5 and AlexNet, and 1.5x MobileNetV2 (whose depthwise convolutions are faster in fp32 +
    channels_last, 2.1x). CPUs with neither (AVX2, older AVX-512) convert bf16 in software."""
    if cpu_has_amx_bf16():
        return "amx"
    if _cpu_flag("_is_avx512_bf16_supported"):
        return "avx512_bf16"
    return None


def fast_low_precision(device: torch.device, batch: int | None = None) -> bool:
    """Whether bf16 and channels_last are the better default on `device` for steps of `batch`
    images: on CUDA and CPUs with AMX always, on CPUs with avx512_bf16 from a batch of
    AVX512_BF16_MIN_BATCH (None: a large one). CNNZOO_BF16=on|off decides it everywhere
    instead: the test suite runs both ways, so that a result that holds on one CPU holds on the
    other (`make test-fp32`, `make test-bf16`)."""
    forced = os.environ.get("CNNZOO_BF16", "").lower()
    if forced in ("on", "off"):
        return forced == "on"
    if device.type == "cuda":
        return True
    kind = cpu_fast_bf16() if device.type == "cpu" else None
    return kind == "amx" or (kind == "avx512_bf16" and (batch is None or batch >= AVX512_BF16_MIN_BATCH))


def autocast(device: torch.device | str, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` when `bf16`, else a no-op context."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def set_tf32(device: torch.device, allowed: bool) -> None:
    """TF32 tensor cores for the float32 matmuls and convolutions on CUDA. A run with amp=off
    asks for float32 numerics and gets them (PyTorch would otherwise run its convolutions in
    TF32); with bf16 autocast the ops left in float32 may use TF32. No effect on the CPU."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = allowed
        torch.backends.cudnn.allow_tf32 = allowed
