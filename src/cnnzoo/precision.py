"""Numeric precision: when bf16 autocast pays, and the one autocast context everyone uses."""

from __future__ import annotations

import contextlib
import os

import torch


def cpu_has_amx_bf16() -> bool:
    """CPUs with AMX-BF16 run bf16 convolutions several times faster than fp32 (measured here:
    ResNet-20 training 2.5x, LeNet-5 1.7x less CPU time), so 'auto' turns bf16 on there."""
    f = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(f()) if f is not None else False
    except Exception:
        return False


def fast_low_precision(device: torch.device) -> bool:
    """Whether bf16 and channels_last are the better default on `device` (CUDA, AMX CPUs).
    CNNZOO_BF16=on|off decides it everywhere instead: the test suite runs both ways, so that
    a result that holds on one CPU holds on the other (`make test-fp32`, `make test-bf16`)."""
    forced = os.environ.get("CNNZOO_BF16", "").lower()
    if forced in ("on", "off"):
        return forced == "on"
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_amx_bf16())


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
