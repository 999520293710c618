"""Exporting a model for deployment, each export checked against the model it came from.

Formats:
  onnx              torch.onnx.export (the dynamo exporter), run back through onnxruntime
  torchscript       torch.jit.trace, reloaded with torch.jit.load
  exported-program  torch.export.export + torch.export.save (.pt2), reloaded with torch.export.load
                    ("exported" for short)
  int8 ONNX         the fp32 ONNX file quantized by ONNX Runtime: cnnzoo.deploy.quantize

An ONNX file is deployable on its own: its metadata_props key "cnnzoo.record" holds the JSON of
{"model", "num_classes", "in_chans", "preprocess", "classes"} (preprocess: the dict of
Preprocess.to_record: input size, resize, pad, mean, std, grayscale), which `predict` reads.

All three keep the batch dimension dynamic. After writing, the file is loaded again and run on
the same random inputs as the eager model, at two batch sizes (the one traced and another, to
prove the batch is dynamic); the maximum absolute difference is reported and must be within
`atol` (1e-4 in float32) or the export fails with ExportCheckError.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..bounds import check as check_bound
from ..contract import logits_of
from ..errors import CnnzooError, InvalidArgumentError, JobFailedError
from ..files import atomic_path, atomic_write_bytes, temporary_path, write_failure
from ..outputs import check_output
from ..registry import get_entry
from .predict import ONNX_RECORD_KEY, class_names, default_preprocess, get_preprocess

FORMATS = ("onnx", "torchscript", "exported-program", "executorch")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2", "executorch": ".pte"}
ALIASES = {"exported": "exported-program"}


class ExportCheckError(JobFailedError):
    """The exported model disagrees with the original beyond the tolerance."""


def export_model(model: nn.Module, out: str | os.PathLike, fmt: str = "onnx",
                 input_size: tuple[int, int, int] | None = None, batch_size: int = 2,
                 atol: float = 1e-4, check: bool = True, opset: int = 18,
                 metadata: dict[str, Any] | None = None, *, overwrite: bool = False) -> dict[str, Any]:
    """Export `model` (eval mode, float32) to `out`; returns a report with max_abs_diff.
    `model` itself is left as it was (device, dtype, training mode): a copy is exported.
    `metadata` (ONNX only): the "cnnzoo.record" to store, see `deploy_record`. `out` obeys the
    output guard (cnnzoo.outputs): never a run folder's own file, an existing file only with
    `overwrite`; checked before any work."""
    check_output(out, overwrite=overwrite)
    fmt = ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    check_bound("tolerance", atol, "atol")  # NaN or a negative tolerance would pass or fail every export
    if fmt == "executorch":  # a phone's batch-1 program with a sidecar: cnnzoo.deploy.executorch
        from .executorch import export_pte, sidecar_path
        check_output(sidecar_path(out), overwrite=overwrite)
        return export_pte(model, out, input_size or native_size(model), metadata or deploy_record(model), atol)
    if batch_size < 2:
        # a batch of 1 would let exporters specialise the batch dimension to 1
        raise InvalidArgumentError("export batch_size must be >= 2 to keep the batch dynamic")
    model = copy.deepcopy(model).eval().float().cpu()
    if input_size is None:
        input_size = native_size(model)
    out = Path(out)
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(batch_size, *input_size, generator=gen)
    # Checked under a temporary name and renamed only when the check passes: a failed export
    # leaves no file that looks good, and an earlier good file at `out` stays.
    # (a temporary of cnnzoo.files: one left by kill -9 is removed by a later write there)
    dest, out = out, (temporary_path(out) if check else out)
    try:  # a failed write (full disk) or check removes the unchecked file too
        with torch.no_grad():
            if fmt == "onnx":
                _export_onnx(model, example, out, opset)
                if metadata is not None:
                    set_metadata(out, metadata)
            elif fmt == "torchscript":
                _export_torchscript(model, example, out)
            else:
                _export_program(model, example, out)
        report = _check(model, out, fmt, input_size, batch_size, atol, gen) if check else {}
    except BaseException as err:
        if out != dest:
            with contextlib.suppress(OSError):  # a read-only folder holds none
                out.unlink(missing_ok=True)
            if getattr(err, "errno", None) and isinstance(err, CnnzooError):  # a failed write: name `dest`
                raise write_failure(dest, OSError(err.errno, "")) from None
        raise
    if out != dest:
        try:
            os.replace(out, dest)
        except OSError as err:  # `dest` a folder...
            with contextlib.suppress(OSError):
                out.unlink(missing_ok=True)
            raise write_failure(dest, err) or err from None
    report.update({"format": fmt, "out": str(dest), "input_size": list(input_size),
                   "dynamic_batch": True, "bytes": dest.stat().st_size})
    return report


def _check(model: nn.Module, out: Path, fmt: str, input_size: tuple[int, ...], batch_size: int,
           atol: float, gen: torch.Generator) -> dict[str, Any]:
    """Run the exported file and the model on the same inputs at two batch sizes."""
    report: dict[str, Any] = {}
    diffs, scale = {}, 0.0
    for n in (batch_size, batch_size + 1):
        x = torch.randn(n, *input_size, generator=gen)
        with torch.no_grad():
            ref = logits_of(model(x))
        got = run_exported(out, fmt, x)
        if got.shape != ref.shape:
            raise ExportCheckError(f"{out}: output shape {tuple(got.shape)} != {tuple(ref.shape)} "
                                   f"at batch {n}")
        diffs[n] = float((got - ref).abs().max())
        scale = max(scale, float(ref.abs().max()))
    worst = max(diffs.values())
    report.update(max_abs_diff=worst, checked_batches=sorted(diffs), atol=atol,
                  max_abs_output=scale)
    if not worst <= atol:  # also catches NaN
        raise ExportCheckError(
            f"{fmt} export of {getattr(model, 'model_name', type(model).__name__)} differs "
            f"from the model by {worst:.3g} (> {atol:g}) on the same inputs; its outputs "
            f"reach {scale:.3g}" + ("  (outputs this large usually mean untrained batch-norm "
                                    "statistics: rounding differences blow up)" if scale > 1e4 else "")
            + "; the export was not kept")
    return report


def native_size(model: nn.Module) -> tuple[int, int, int]:
    """The model's channels at its registered H x W; 224 x 224 for a model not registered."""
    h, w = 224, 224
    name = getattr(model, "model_name", None)
    if name:
        try:
            _, h, w = get_entry(name).input_size
        except CnnzooError:
            pass
    return int(getattr(model, "in_chans", 3)), h, w


class _Plain(nn.Module):
    """Wraps a model so every exporter sees a plain tensor -> tensor function."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return logits_of(self.model(x))


def _export_onnx(model: nn.Module, example: torch.Tensor, out: Path, opset: int) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(_Plain(model), (example,), dynamo=True, opset_version=opset,
                                 input_names=["input"], output_names=["logits"],
                                 dynamic_shapes=({0: batch},), external_data=False,
                                 verbose=False)
    with atomic_path(out) as tmp:
        prog.save(str(tmp), external_data=False)


def _export_torchscript(model: nn.Module, example: torch.Tensor, out: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings from the input checks
        traced = torch.jit.trace(_Plain(model), example, check_trace=False)
    buf = io.BytesIO()  # in memory first: torch.jit.save aborts the process on a full disk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # jit is deprecated, still supported
        torch.jit.save(traced, buf)
    atomic_write_bytes(out, buf.getvalue())


def _export_program(model: nn.Module, example: torch.Tensor, out: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=4096)
    prog = torch.export.export(_Plain(model), (example,), dynamic_shapes=({0: batch},))
    buf = io.BytesIO()  # torch.export.save insists on a .pt2 name or a buffer
    torch.export.save(prog, buf)
    atomic_write_bytes(out, buf.getvalue())


def deploy_record(model: nn.Module, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a deployment needs besides the weights: the model file's preprocessing and class
    names, else the model's `pretrained_cfg` (published weights), else the defaults."""
    from ..data.preprocess import Preprocess

    record = record or {}
    cfg = getattr(model, "pretrained_cfg", None)
    cfg = cfg if isinstance(cfg, dict) else {}
    pp = get_preprocess(record, model)
    if not record.get("preprocess") and cfg:
        stored = cfg.get("preprocess") if isinstance(cfg.get("preprocess"), dict) else cfg
        try:
            pp = Preprocess.from_record(stored, default_preprocess(model))
        except CnnzooError:
            pass  # a cfg without preprocessing keeps the default
    n = int(getattr(model, "num_classes", 0) or 0)
    classes = record.get("classes") or cfg.get("classes")
    classes = [str(c) for c in classes] if classes and len(classes) == n else class_names(None, n)
    return {"model": record.get("model") or getattr(model, "model_name", type(model).__name__),
            "num_classes": n, "in_chans": pp.in_chans, "preprocess": pp.to_record(),
            "classes": classes}


def set_metadata(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Store `record` as the ONNX file's "cnnzoo.record" metadata (replacing an older one)."""
    import onnx

    proto = onnx.load(str(path))
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key != ONNX_RECORD_KEY]
    del proto.metadata_props[:]
    for k, v in keep + [(ONNX_RECORD_KEY, json.dumps(record))]:
        proto.metadata_props.add(key=k, value=v)
    with atomic_path(Path(path)) as tmp:
        onnx.save(proto, str(tmp))


def run_exported(path: str | os.PathLike, fmt: str, x: torch.Tensor) -> torch.Tensor:
    """Run an exported file on `x` (CPU, float32); returns the logits."""
    path, fmt = str(path), ALIASES.get(fmt, fmt)
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return torch.from_numpy(sess.run(None, {name: x.numpy()})[0])
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(path, map_location="cpu")(x)
    if fmt == "executorch":
        from .executorch import run_program
        return run_program(path, x)
    if fmt == "exported-program":
        with open(path, "rb") as f:
            prog = torch.export.load(io.BytesIO(f.read()))
        with torch.no_grad():
            return prog.module()(x)
    raise InvalidArgumentError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
