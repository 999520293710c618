"""The mobile models on the CPU at batch 1: eager PyTorch, ONNX Runtime and ExecuTorch (XNNPACK).

One model, one set of (random, seeded) weights, one batch-1 input at the model's native size;
the three runtimes are timed interleaved (ABBA, cnnzoo.bench.timing) so load from other
processes hits them alike. Each runtime's logits are compared with eager first (max abs
difference in the row): a speed is reported only for a program that computes the same function.
ExecuTorch is optional (cnnzoo[mobile]); without it the row says so and the other two are timed.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..registry import create_model
from .timing import time_interleaved

MOBILE_MODELS = ("mobilenet_v1", "mobilenet_v2", "shufflenet_v2_x1_0", "squeezenet1_1")
RUNTIMES = ("eager", "onnxruntime", "executorch")


def _onnx(model: torch.nn.Module, x: torch.Tensor, threads: int, tmp: Path) -> Callable[[torch.Tensor], Any]:
    from ..deploy.export import export_model
    from ..deploy.quantize import session

    path = tmp / "m.onnx"
    export_model(model, path, "onnx", input_size=tuple(x.shape[1:]), check=False)
    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    return lambda inp: torch.from_numpy(sess.run(None, {name: inp.numpy()})[0])


def _executorch(model: torch.nn.Module, x: torch.Tensor) -> Callable[[torch.Tensor], Any]:
    from ..deploy.executorch import LogitsOnly, PteModel, lower

    with torch.no_grad():
        program = lower(LogitsOnly(model), x)
    return PteModel(program, {}).forward


def trained_like(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Batch-norm statistics and affines drawn as a trained network has them. A fresh model's
    (mean 0, var 1, bias 0; MobileNetV2's logits ~1e-9) would make "same logits as eager" a
    comparison of near-zeros; the speed is the same either way."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine and m.track_running_stats:
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
    return model


def bench_model(name: str, reps: int = 20, threads: int = 2,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """One row: median ms per batch-1 call of each runtime, and its max |diff| from eager."""
    from ..deploy.export import native_size
    from ..errors import InvalidArgumentError

    torch.manual_seed(0)
    model = trained_like(create_model(name)).eval()
    x = torch.randn(1, *native_size(model), generator=torch.Generator().manual_seed(0))
    row: dict[str, Any] = {"model": name, "batch": 1, "input_size": list(x.shape[1:])}
    with torch.inference_mode():
        ref = model(x)
    row["eager_max_abs_logit"] = float(ref.abs().max())  # the scale the differences compare with
    runs: dict[str, Callable[[torch.Tensor], Any]] = {"eager": model}
    with tempfile.TemporaryDirectory() as tmp:
        if progress:
            progress(f"{name}: exporting to ONNX and lowering to ExecuTorch")
        runs["onnxruntime"] = _onnx(model, x, threads, Path(tmp))
        try:
            runs["executorch"] = _executorch(model, x)
        except InvalidArgumentError as err:  # not installed: say so, time the others
            row["executorch_skipped"] = str(err)
        for key, fn in runs.items():
            with torch.inference_mode():
                row[f"{key}_max_abs_diff"] = float((fn(x) - ref).abs().max())
        steps = {k: (lambda f=f: f(x)) for k, f in runs.items()}
        with torch.inference_mode():
            t = time_interleaved(steps, reps=reps, warmup=3, progress=progress)
    for key in runs:
        row[f"{key}_ms"] = 1e3 * statistics.median(t[key])
    for key in runs:
        row[f"{key}_vs_eager"] = row["eager_ms"] / row[f"{key}_ms"]
    return row


def bench_mobile(models: Sequence[str] = MOBILE_MODELS, reps: int = 20, threads: int = 2,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every model's row; torch's thread count is restored afterwards."""
    from .machine import machine_info

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    _executorch_threads(threads)
    try:
        rows = [bench_model(m, reps, threads, progress) for m in models]
    finally:
        torch.set_num_threads(before)
    return {"machine": machine_info("cpu"), "threads": threads, "reps": reps, "rows": rows,
            "executorch_threads": _executorch_threads(threads)}


def _executorch_threads(threads: int) -> int | None:
    """XNNPACK's thread pool size, set to `threads` like the other two (None: not installed)."""
    try:
        from executorch.extension.pybindings import portable_lib
    except ImportError:
        return None
    portable_lib._unsafe_reset_threadpool(threads)
    return int(portable_lib._threadpool_get_thread_count())


def format_mobile(res: dict[str, Any]) -> str:
    """The rows as a text table: median ms per image and the speed relative to eager."""
    lines = [f"batch 1, {res['threads']} threads, median of {res['reps']} calls (ms; x eager speed)",
             f"{'model':<22}{'eager':>10}{'onnxruntime':>22}{'executorch':>22}"]
    for r in res["rows"]:
        cells = [f"{r['eager_ms']:>10.2f}"]
        for k in ("onnxruntime", "executorch"):
            cells.append(f"{r[k + '_ms']:>13.2f} ({r[k + '_vs_eager']:.2f}x)" if k + "_ms" in r
                         else f"{'not installed':>22}")
        lines.append(f"{r['model']:<22}" + "".join(cells))
    return "\n".join(lines)
