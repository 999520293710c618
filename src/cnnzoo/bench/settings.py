"""What a benchmark run is asked to do: device, precision, batches, repetitions.

Both sides of every comparison get the same Settings, so a ratio measures the model code, not
the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..bounds import check_optional
from ..errors import InvalidArgumentError
from .names import PRECISIONS


@dataclass(frozen=True)
class Settings:
    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None  # None: "reduce-overhead" (CUDA graphs) on CUDA, else default
    compile_backend: str = "inductor"  # "eager"/"aot_eager" check dynamo's capture without codegen
    infer_batch: int = 32
    train_batch: int = 32
    warmup: int = 2
    reps: int = 6  # per side; ABBA-interleaved
    iters: int = 1  # calls per timed repetition
    threads: int | None = 2

    def check(self) -> None:
        if self.precision not in PRECISIONS:
            raise InvalidArgumentError(f"precision must be {' or '.join(PRECISIONS)}, got {self.precision!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidArgumentError("device cuda was asked for but torch sees no CUDA device")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise InvalidArgumentError(f"device must be cpu or cuda[:N], got {self.device!r}")
        for name in ("infer_batch", "train_batch", "reps", "iters"):
            if getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.compile_backend != "inductor" and self.compile_mode is not None:
            raise InvalidArgumentError(f"compile_mode {self.compile_mode!r} needs the inductor "
                                       f"backend, not {self.compile_backend!r}")
        if self.warmup < 0:
            raise InvalidArgumentError(f"warmup must be >= 0, got {self.warmup}")
        for name, bound in (("infer_batch", "batch_size"), ("train_batch", "batch_size"), ("reps", "repeats"),
                            ("threads", "threads")):
            check_optional(bound, getattr(self, name), name)  # the largest values (bounds.py)


def full_settings(device: str = "cpu") -> Settings:
    """A full run: the GPU floors' batch on CUDA; on a CPU batches that keep every model at its
    native size within minutes (Inception v3 trains at ~17 GMAC per image and step)."""
    if device.startswith("cuda"):
        return Settings(device=device, infer_batch=256, train_batch=256, warmup=3, reps=6, iters=10)
    return Settings(device=device, infer_batch=8, train_batch=4, warmup=1, reps=4, iters=1)


def quick_settings(device: str = "cpu") -> Settings:
    """A --quick run: small batches and few repetitions."""
    if device.startswith("cuda"):
        return Settings(device=device, infer_batch=64, train_batch=32, warmup=2, reps=4, iters=5)
    return Settings(device=device, infer_batch=1, train_batch=2, warmup=1, reps=4, iters=1)


def settings_from(*, quick: bool = False, device: str = "cpu", precision: str | None = None,
                  channels_last: bool | None = None, compile: bool | None = None,
                  batch: int | None = None, reps: int | None = None,
                  threads: int | None = 2, compile_backend: str = "inductor") -> Settings:
    """Settings from command-line options. Unset options take the device's default: on CUDA
    the fast path (bf16 autocast, channels_last, torch.compile with CUDA graphs), on the CPU
    plain float32 eager (what a user runs by default)."""
    base = quick_settings(device) if quick else full_settings(device)
    cuda = device.startswith("cuda")
    kw: dict[str, Any] = dict(vars(base))
    kw.update(precision=precision or ("bf16" if cuda else "fp32"),
              channels_last=cuda if channels_last is None else channels_last,
              compile=cuda if compile is None else compile, threads=threads,
              compile_backend=compile_backend)
    if batch is not None:
        kw.update(infer_batch=batch, train_batch=batch)
    if reps is not None:
        kw["reps"] = reps
    s = Settings(**kw)
    s.check()
    return s
