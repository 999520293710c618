"""Which device a command runs on: one parser for every `--device`, with errors that say what
exists on this machine."""

from __future__ import annotations

import torch

from .errors import InvalidArgumentError


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """'auto' or None: the first GPU if PyTorch sees one, else the CPU; 'cpu'; 'cuda' / 'cuda:N'."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    if spec is None or spec == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError):
        raise InvalidArgumentError(f"unknown device {spec!r}; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise InvalidArgumentError(f"device {spec!r} is not supported; use cpu, cuda, cuda:N or auto")
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
