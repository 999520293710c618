"""The machine a benchmark ran on, and the accelerator's peak for the MFU."""

from __future__ import annotations

import contextlib
import os
import platform
from typing import Any

import torch

# Dense (no sparsity) bf16 tensor-core peaks in FLOP/s, from the vendors' data sheets; matched
# against torch.cuda.get_device_name() in order, first hit wins.
PEAK_BF16_FLOPS: tuple[tuple[str, float, str], ...] = (
    ("H100 PCIe", 756e12, "H100 PCIe bf16 dense"),
    ("H100 NVL", 835e12, "H100 NVL bf16 dense"),
    ("H100", 989e12, "H100 SXM bf16 dense"),
    ("H200", 989e12, "H200 bf16 dense"),
    ("GH200", 989e12, "GH200 bf16 dense"),
    ("A100", 312e12, "A100 bf16 dense"),
    ("L40S", 362e12, "L40S bf16 dense"),
    ("L4", 121e12, "L4 bf16 dense"),
)


def peak_flops(device: str, precision: str = "bf16") -> tuple[float | None, str | None]:
    """Dense bf16 peak of the CUDA device in FLOP/s, or (None, None) where unknown, on the CPU,
    or for an fp32 run (its MFU against the bf16 peak would understate it several times)."""
    if not device.startswith("cuda") or precision != "bf16":
        return None, None
    gpu = torch.cuda.get_device_name(torch.device(device))
    for key, peak, label in PEAK_BF16_FLOPS:
        if key in gpu:
            return peak, label
    return None, None


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """Versions, CPU, threads, load and (on CUDA) the GPU and its peak: what a result depends on."""
    import torchvision  # ~1 s to import; `import cnnzoo.bench` should not pay it

    info: dict[str, Any] = {
        "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": torchvision.__version__, "platform": platform.platform(),
        "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": device, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
    }
    with contextlib.suppress(OSError, AttributeError):
        info["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    with contextlib.suppress(ImportError):
        import onnxruntime  # optional dependency

        info["onnxruntime"] = onnxruntime.__version__
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
        peak, label = peak_flops(device)
        info["peak_flops"], info["peak_source"] = peak, label
    return info


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
