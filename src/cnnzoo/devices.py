"""Which device a command runs on: one parser for every `--device`, with errors that say what
exists on this machine; and the one place that asks what kind of device a run is on, so that
nothing CUDA-only (synchronize, pinned memory, cuDNN flags, fused kernels, CUDA graphs, device
names) is reached on the CPU or an Apple GPU (mps).

Every device-type decision goes through `kind(device)`: the tests fake "mps" there and train on
CPU tensors with every CUDA function made to raise (tests/test_amp.py)."""

from __future__ import annotations

import torch

from .errors import InvalidArgumentError

KNOWN = "cpu, cuda, cuda:N, mps or auto"


def mps_available() -> bool:
    """Whether this PyTorch build has the Apple GPU backend and the machine has one."""
    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except Exception:
        return False


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """'auto' or None: the first CUDA GPU, else the Apple GPU (mps), else the CPU; 'cpu';
    'cuda' / 'cuda:N'; 'mps'. A device that is not here is refused (exit 2), naming what is."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    if spec is None or spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available() else torch.device("cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError):
        raise InvalidArgumentError(f"unknown device {spec!r}; use {KNOWN}") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "mps":
        if not mps_available():
            raise InvalidArgumentError(
                f"device {spec!r} (an Apple GPU) was asked for, but PyTorch sees none here (torch "
                f"{torch.__version__}; mps needs macOS 12.3+ on Apple silicon or an AMD GPU); use "
                "--device cpu or auto")
        return dev
    if dev.type != "cuda":
        raise InvalidArgumentError(f"device {spec!r} is not supported; use {KNOWN}")
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA (a CPU-only build)"
        raise InvalidArgumentError(
            f"device {spec!r} was asked for, but PyTorch sees no CUDA GPU here (torch "
            f"{torch.__version__}, built with {build}); use --device cpu")
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise InvalidArgumentError(f"device {spec!r} does not exist: this machine has {count} GPU(s), "
                                   f"cuda:0..cuda:{count - 1}")
    return dev


# -- device-type decisions: the only callers of CUDA-only APIs ---------------------------------
def kind(device: torch.device | str) -> str:
    """"cuda", "mps" or "cpu": what every device-type decision asks."""
    return torch.device(device).type


def is_cuda(device: torch.device | str) -> bool:
    return kind(device) == "cuda"


def cuda_capability(device: torch.device | str) -> tuple[int, int] | None:
    """The CUDA GPU's compute capability, (7, 5) for a T4; None off CUDA."""
    if not is_cuda(device):
        return None
    return tuple(torch.cuda.get_device_capability(torch.device(device)))  # type: ignore[return-value]


def pin_memory(device: torch.device | str) -> bool:
    """Page-locked host batches: they speed copies to a CUDA GPU only."""
    return is_cuda(device)


def fused_optimizer(device: torch.device | str) -> bool:
    """Whether fused optimizer kernels are the default: on CUDA (measured there; left off on mps
    and the CPU)."""
    return is_cuda(device)


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (timing); a no-op on the CPU."""
    k = kind(device)
    if k == "cuda":
        torch.cuda.synchronize(torch.device(device))
    elif k == "mps":
        torch.mps.synchronize()


def set_cudnn_benchmark(device: torch.device | str, on: bool) -> None:
    """cuDNN's kernel autotuning (fixed shapes), on CUDA runs only."""
    if is_cuda(device):
        torch.backends.cudnn.benchmark = on


def device_name(device: torch.device | str) -> str | None:
    """The GPU's name ("NVIDIA H100 80GB HBM3"; "Apple GPU" for mps); None on the CPU."""
    k = kind(device)
    if k == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return "Apple GPU (mps)" if k == "mps" else None
