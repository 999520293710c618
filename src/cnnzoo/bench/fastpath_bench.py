"""The inference fast paths (cnnzoo.deploy.fastpath) against torchvision's eager float32 model.

Same weights, same batch, NCHW input: torchvision eager is what a user gets by default. The
fast paths and the eager reference are timed interleaved at each batch size. The int8 path
(onnxruntime/int8) is our fp32 ONNX file quantized by ONNX Runtime (static, QDQ) with a
random-normal calibration batch: fine for its speed, not for its accuracy (`cnnzoo export
--int8 --calibrate DATA` measures that on real images).
"""

from __future__ import annotations

import statistics
from typing import Any, Callable

import torch
from torch import nn

from ..deploy.fastpath import FastModel, FastPathError, optimize
from ..deploy.quantize import QuantizeError
from ..registry import create_model, list_models
from .cases import transfer_weights
from .settings import Settings
from .timing import time_interleaved


def _default_plan(cuda: bool, quick: bool) -> tuple[tuple[int, ...], tuple[tuple[str, str], ...]]:
    """Batches and (backend, precision) paths timed when the caller names none."""
    batches = ((256,) if quick else (1, 256)) if cuda else ((1,) if quick else (1, 32))
    if cuda:
        paths: tuple[tuple[str, str], ...] = (("compile", "bf16"),)
    elif quick:
        paths = (("onnxruntime", "fp32"),)
    else:
        paths = (("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("compile", "fp32"),
                 ("jit", "fp32"), ("compile", "bf16"))
    return batches, paths


def _models(model: str) -> tuple[nn.Module, nn.Module, str]:
    """torchvision's eager reference and our model with its weights, and our side's name."""
    import torchvision  # ~1 s to import; `import cnnzoo.bench` should not pay it

    torch.manual_seed(0)
    ref = getattr(torchvision.models, model)(weights=None).eval()
    if model in list_models():
        ours, ours_name = create_model(model, num_classes=1000, in_chans=3).eval(), model
        transfer_weights(ref, ours)
    else:
        ours = getattr(torchvision.models, model)(weights=None).eval()
        ours.load_state_dict(ref.state_dict())
        ours_name = f"torchvision {model} (ours not registered)"
    return ref, ours, ours_name


def _time_batch(ref: nn.Module, ours: nn.Module, ours_name: str, x: torch.Tensor, s: Settings,
                paths: tuple[tuple[str, str], ...], skipped: list[str],
                progress: Callable[[str], None] | None) -> list[dict[str, Any]]:
    """Build every path for input `x`, time them against eager; one row per path built."""
    batch = x.shape[0]
    fasts: dict[str, FastModel] = {}
    for backend, precision in paths:
        key = f"{backend}/{precision}"
        if progress:
            progress(f"fast path: building {key} for {ours_name}, batch {batch}")
        try:
            fasts[key] = (_int8(ours, x, s.threads) if precision == "int8"
                          else optimize(ours, x, backend, precision=precision))
        except (FastPathError, QuantizeError) as err:
            skipped.append(f"{key} at batch {batch}: {err}")

    def eager() -> Any:
        with torch.inference_mode():
            return ref(x)

    steps: dict[str, Callable[[], Any]] = {"eager": eager}
    steps.update({k: (lambda f=f: f(x)) for k, f in fasts.items()})
    say = (lambda m: progress(f"fast path batch {batch} {m}")) if progress else None
    t = time_interleaved(steps, reps=max(s.reps, 2), iters=1, warmup=max(s.warmup, 1),
                         device=s.device, progress=say)
    eager_ips = batch / statistics.median(t["eager"])
    rows = []
    for key, f in fasts.items():
        ips = batch / statistics.median(t[key])
        rows.append({"model": ours_name, "batch": batch, "backend": f.backend,
                     "precision": f.precision, "eager_images_per_s": eager_ips,
                     "fast_images_per_s": ips, "speedup": ips / eager_ips,
                     "max_abs_diff": f.max_abs_diff,
                     "eager_ms": [1e3 * v for v in t["eager"]],
                     "fast_ms": [1e3 * v for v in t[key]]})
    return rows


def _int8(model: nn.Module, x: torch.Tensor, threads: int | None) -> FastModel:
    """ONNX Runtime static int8 (QDQ) of `model`; max_abs_diff is against eager fp32 (int8
    rounding, so larger than the fp32 paths' and not checked against their tolerance)."""
    import tempfile
    from pathlib import Path

    from ..deploy.export import export_model
    from ..deploy.quantize import quantize_onnx, session

    if x.device.type != "cpu":
        raise FastPathError("the int8 path runs on the CPU (ONNX Runtime)")
    gen = torch.Generator().manual_seed(1)
    with tempfile.TemporaryDirectory() as tmp:
        fp32, q = Path(tmp) / "m.onnx", Path(tmp) / "m.int8.onnx"
        export_model(model, fp32, "onnx", input_size=tuple(x.shape[1:]), check=False)
        quantize_onnx(fp32, q, "static", torch.randn(16, *x.shape[1:], generator=gen))
        sess = session(q, threads)
    name = sess.get_inputs()[0].name

    def run(inp: torch.Tensor) -> torch.Tensor:
        arr = inp.detach().cpu().float().contiguous().numpy()
        return torch.from_numpy(sess.run(None, {name: arr})[0])

    fast = FastModel(run, "onnxruntime", "int8", torch.device("cpu"), False)
    with torch.inference_mode():
        fast.max_abs_diff = float((run(x) - model.eval()(x)).abs().max())
    return fast


def bench_fastpath(s: Settings, quick: bool = False, model: str = "resnet50",
                   batches: tuple[int, ...] | None = None,
                   paths: tuple[tuple[str, str], ...] | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Our model's fast paths against torchvision's eager float32 model (same weights, same
    batch, NCHW: what a user gets by default), interleaved. `paths`: (backend, precision)
    pairs. Falls back to torchvision's model on our side where ours is not registered."""
    device = torch.device(s.device)
    default_batches, default_paths = _default_plan(device.type == "cuda", quick)
    batches = default_batches if batches is None else batches
    paths = default_paths if paths is None else paths
    ref, ours, ours_name = _models(model)
    ref, ours = ref.to(device), ours.to(device)
    gen = torch.Generator().manual_seed(0)
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for batch in batches:
        x = torch.randn(batch, 3, 224, 224, generator=gen).to(device)
        rows += _time_batch(ref, ours, ours_name, x, s, paths, skipped, progress)
    out: dict[str, Any] = {"reference": f"torchvision.models.{model}, eager fp32, NCHW",
                           "rows": rows}
    if skipped:
        out["skipped"] = skipped
    return out
