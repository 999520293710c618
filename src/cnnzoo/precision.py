"""Numeric precision: which autocast dtype pays where (bf16, fp16 or none), the one autocast
context everyone uses, and fp16's gradient scaler with its count of skipped steps."""

from __future__ import annotations

import contextlib
import os

import torch

from . import devices


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
    where = devices.kind(device)
    if where == "cuda":
        return True
    kind = cpu_fast_bf16() if where == "cpu" else None
    return kind == "amx" or (kind == "avx512_bf16" and (batch is None or batch >= AVX512_BF16_MIN_BATCH))


AMP_CHOICES = ("auto", "bf16", "fp16", "off")


def auto_amp(device: torch.device, batch: int | None = None) -> str:
    """What amp=auto means on `device`: "bf16", "fp16" or "off".

    CUDA: bf16 from compute capability 8.0 (A100, H100, RTX 30xx on), where it is as fast as
    fp16 and needs no loss scaling; below (T4 7.5, V100 7.0) bf16 has no tensor cores, so fp16
    with a gradient scaler. Apple GPUs (mps): fp16, their fast half type on every generation.
    The CPU: bf16 where `fast_low_precision` says it pays, else off (fp16 is slow there).
    CNNZOO_BF16=on|off decides it everywhere instead (the test suite's two ways)."""
    forced = os.environ.get("CNNZOO_BF16", "").lower()
    if forced in ("on", "off"):
        return "bf16" if forced == "on" else "off"
    where = devices.kind(device)
    if where == "cuda":
        cc = devices.cuda_capability(device)
        return "bf16" if cc is None or cc >= (8, 0) else "fp16"
    if where == "mps":
        return "fp16"
    return "bf16" if fast_low_precision(device, batch) else "off"


def amp_mode(amp: str, device: torch.device, batch: int | None = None) -> str:
    """A recipe's amp setting ("auto", "bf16", "fp16", "off") resolved on `device`."""
    return auto_amp(device, batch) if amp == "auto" else amp


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device | str, mode: bool | str) -> contextlib.AbstractContextManager:
    """Autocast on `device` in `mode` ("bf16", "fp16"; True means bf16), else a no-op context.
    The autocast device is where the tensors are (the real device type, not a faked kind)."""
    dtype = _DTYPES.get("bf16" if mode is True else str(mode))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


class LossScaler:
    """fp16's gradient scaler (torch.amp.GradScaler on the tensors' device: CUDA, mps or the
    CPU), or a plain backward/step for bf16 and fp32. Steps the scaler skips (inf/NaN
    gradients: it lowers its scale and retries on the next batch) are counted on the device,
    without a host sync; the count and the scaler's state go into the checkpoint."""

    INIT_SCALE = 2.0 ** 16  # PyTorch's default; the tests raise it to force overflowing steps

    def __init__(self, device: torch.device, enabled: bool) -> None:
        self.enabled = enabled
        self.scaler = torch.amp.GradScaler(torch.device(device).type, init_scale=self.INIT_SCALE, enabled=enabled)
        self.skipped = torch.zeros((), dtype=torch.int64, device=device)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.enabled else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Gradients back to their true size (before clipping them)."""
        if self.enabled:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer step (skipped by the scaler on inf/NaN gradients), then the scale update."""
        if not self.enabled:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        before = self.scaler._scale.clone()  # a device tensor once scale() ran: no host sync
        self.scaler.update()
        self.skipped += (self.scaler._scale < before).to(torch.int64)  # lowered only on a skip

    def skipped_steps(self) -> int:
        return int(self.skipped.item())

    def state_dict(self) -> dict:
        return {"scaler": self.scaler.state_dict(), "skipped_steps": self.skipped_steps()}

    def load_state_dict(self, state: dict | None) -> None:
        if not state:
            return
        if self.enabled and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.skipped.fill_(int(state.get("skipped_steps", 0)))


def set_tf32(device: torch.device, allowed: bool) -> None:
    """TF32 tensor cores for the float32 matmuls and convolutions on CUDA. A run with amp=off
    asks for float32 numerics and gets them (PyTorch would otherwise run its convolutions in
    TF32); with bf16 autocast the ops left in float32 may use TF32. No effect on the CPU."""
    if devices.is_cuda(device):
        torch.backends.cuda.matmul.allow_tf32 = allowed
        torch.backends.cudnn.allow_tf32 = allowed
