"""`cnnzoo bench mobile`: the mobile models at batch 1 on eager, ONNX Runtime and ExecuTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._common import Format
from ._options import FormatOpt, JsonOpt


def mobile_cmd(
    models: Annotated[Optional[str], typer.Option(
        help="comma-separated models (default: mobilenet_v1, mobilenet_v2, shufflenet_v2_x1_0, "
             "squeezenet1_1)")] = None,
    reps: Annotated[int, typer.Option(help="timed calls per runtime (ABBA order)")] = 20,
    threads: Annotated[int, typer.Option(help="CPU threads for torch and ONNX Runtime")] = 2,
    out: Annotated[Optional[Path], typer.Option(help="also write the JSON result to this file")] = None,
    fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Time one image (batch 1) through eager PyTorch, ONNX Runtime and ExecuTorch with XNNPACK
    (pip install 'cnnzoo[mobile]'), interleaved; each runtime's logits are checked against eager
    first. Without ExecuTorch its column says so and the other two are timed."""
    from ..bench.mobile_bench import MOBILE_MODELS, bench_mobile
    from ..errors import InvalidArgumentError
    from .bench import _emit, _passive_openmp, _say, _split

    _passive_openmp()
    if reps < 1 or threads < 1:
        raise InvalidArgumentError("--reps and --threads must be >= 1")
    res = bench_mobile(_split(models) or MOBILE_MODELS, reps, threads, progress=_say)
    _emit(res, out, fmt, format_mobile)


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
