"""int8 on the CPU: ONNX Runtime quantization of an exported fp32 ONNX file, and its check.

  static   QDQ format (QuantizeLinear/DequantizeLinear pairs around each Conv/MatMul/Gemm),
           int8 weights per output channel, uint8 activations whose ranges are calibrated
           (min/max) on images of the task: ONNX Runtime's CPU provider fuses the pairs into
           integer kernels.
  dynamic  int8 weights; activation ranges found per batch at run time (no calibration).

The check runs the fp32 and the int8 file on the same labelled images (the accuracy change,
in points) and times them interleaved, batch by batch (the speed ratio, >1: int8 is faster).
`quantize_model` does all of it for a model file and data specs (`cnnzoo export --int8`).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..data.kinds import spec_list
from ..errors import InvalidArgumentError, JobFailedError
from ..files import atomic_path
from ..outputs import check_output

MODES = ("static", "dynamic")
_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "ConvInteger", "MatMulInteger",
              "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul"}


class QuantizeError(JobFailedError):
    """ONNX Runtime could not quantize this model; the message says why."""


class _Batches:
    """ONNX Runtime's CalibrationDataReader over a tensor of images."""

    def __init__(self, name: str, x: torch.Tensor, batch: int = 16) -> None:
        self.items = [{name: x[i:i + batch].numpy()} for i in range(0, len(x), batch)]

    def get_next(self) -> dict[str, np.ndarray] | None:
        return self.items.pop(0) if self.items else None


def check_mode(mode: str, calibrated: bool) -> None:
    """The one rule for an int8 mode: static or dynamic, and static needs calibration images."""
    if mode not in MODES:
        raise InvalidArgumentError(f"--int8-mode {mode!r}: choose static (the default, with "
                                   "--calibrate DATA) or dynamic")
    if mode == "static" and not calibrated:
        raise InvalidArgumentError("static int8 needs calibration images: --calibrate DATA "
                                   f"(e.g. {spec_list()}), or use --int8-mode dynamic")


def quantize_onnx(fp32: str | os.PathLike, out: str | os.PathLike, mode: str = "static",
                  calibration: torch.Tensor | None = None, *, overwrite: bool = False) -> dict[str, Any]:
    """Write the int8 version of ONNX file `fp32` to `out`; `calibration`: preprocessed
    images (N, C, H, W) for static mode. Returns what was quantized. `out` obeys the output
    guard (cnnzoo.outputs): never `fp32` itself, an existing file only with `overwrite`."""
    check_mode(mode, calibration is not None and len(calibration) > 0)
    check_output(out, inputs=[fp32], overwrite=overwrite)
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:  # shape inference and graph fusions (Conv+BN) that quantization relies on
            quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        except Exception as err:
            raise QuantizeError(f"ONNX Runtime's pre-processing failed on {fp32}: "
                                f"{type(err).__name__}: {_first_line(err)}") from None
        name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
        with atomic_path(Path(out)) as dest:
            try:
                if mode == "static":
                    quantize_static(str(pre), str(dest), _Batches(name, calibration),
                                    quant_format=QuantFormat.QDQ, per_channel=True,
                                    activation_type=QuantType.QUInt8,
                                    weight_type=QuantType.QInt8,
                                    calibrate_method=CalibrationMethod.MinMax)
                else:
                    quantize_dynamic(str(pre), str(dest), weight_type=QuantType.QInt8)
            except Exception as err:
                raise QuantizeError(f"ONNX Runtime could not quantize {fp32} ({mode}): "
                                    f"{type(err).__name__}: {_first_line(err)}") from None
            ops = [n.op_type for n in onnx.load(str(dest)).graph.node]
            quantized = sum(op in _QUANT_OPS for op in ops)
            if not quantized:
                raise QuantizeError(
                    f"nothing in {fp32} was quantized: ONNX Runtime quantizes Conv, MatMul and "
                    f"Gemm, and this graph's operators are {', '.join(sorted(set(ops)))}")
    return {"mode": mode, "format": "QDQ" if mode == "static" else "dynamic",
            "quant_nodes": quantized,
            "calibration_images": int(len(calibration)) if mode == "static" else 0}


def quantize_model(model_file: str | os.PathLike, mode: str = "static",
                   calibrate: str | None = None, calib_images: int = 256,
                   check_data: str | None = None, check_images: int = 2000,
                   out: str | os.PathLike | None = None,
                   pretrained: bool | str = False, *, overwrite: bool = False) -> dict[str, Any]:
    """int8 ONNX of a model file (or of a model name: `pretrained` as in create_model), written
    to `out` (default: beside the file, .int8.onnx). Static mode calibrates on `calib_images`
    train-split images of data spec `calibrate`; the accuracy change is measured on
    `check_images` test-split images of `check_data` (default: `calibrate`'s data) when their
    classes are the model's (else `accuracy_skipped` says why). Returns export_int8's report.
    `out` obeys the output guard (cnnzoo.outputs): an existing file only with `overwrite`."""
    from ..transfer.core import load_image_set
    from .export import deploy_record
    from .predict import get_preprocess, load_for_inference

    check_mode(mode, bool(calibrate))  # before the model and the data load
    dest = check_output(out or Path(model_file).with_suffix(".int8.onnx"), inputs=[model_file],
                        overwrite=overwrite)
    model, record = load_for_inference(model_file, pretrained)
    pp = get_preprocess(record, model)
    if mode == "static":
        check_calibration_channels(str(calibrate), pp.in_chans)
    calib = load_image_set(calibrate, "train", pp, limit=calib_images).x if mode == "static" \
        else None
    spec = check_data or calibrate
    labelled, skipped = None, None
    if spec:
        data = load_image_set(spec, "test", pp, limit=check_images)
        labelled = (data.x, data.y)
        if len(data.classes) != model.num_classes:
            labelled, skipped = None, (f"{spec} has {len(data.classes)} classes and the model "
                                       f"{model.num_classes}: no accuracy to compare")
            if check_data:
                raise InvalidArgumentError(f"--check-data {skipped}")
    report = export_int8(model, dest, mode, calib, labelled, pp.input_size,
                         deploy_record(model, record), overwrite=overwrite)
    if skipped:
        report["accuracy_skipped"] = skipped
    return report


def check_calibration_channels(spec: str, in_chans: int) -> None:
    """Static int8 fixes the activation ranges from the calibration images: images of another
    channel count (RGB photos for a 1-channel model) would be averaged or repeated to fit and
    calibrate on inputs the model never sees, so they are refused."""
    from ..data.datasets import load_split, parse_spec
    from ..data.images import load_image

    split = load_split(parse_spec(spec), "train")
    if split.in_memory:
        chans = int(split.shape[0])
    elif len(split):
        chans = 1 if load_image(split.samples[0][0]).mode in ("1", "L", "LA", "I", "I;16", "F") else 3
    else:
        return  # an empty split: load_image_set says so
    if chans != in_chans:
        raise InvalidArgumentError(
            f"--calibrate {spec} holds {chans}-channel images and the model takes {in_chans}-channel "
            "inputs: static int8 calibrates on images like the model's own training data (or use "
            "--int8-mode dynamic, which needs no calibration)")


def export_int8(model: nn.Module, out: str | os.PathLike, mode: str = "static",
                calibration: torch.Tensor | None = None,
                labelled: tuple[torch.Tensor, torch.Tensor] | None = None,
                input_size: tuple[int, int, int] | None = None,
                metadata: dict[str, Any] | None = None,
                speed_batches: tuple[int, ...] = (1, 32), *, overwrite: bool = False) -> dict[str, Any]:
    """Export fp32 ONNX (checked against the model), quantize it to `out`, then compare the
    two files side by side: accuracy on `labelled` (x, y) and interleaved speed. `out` obeys
    the output guard (cnnzoo.outputs): an existing file only with `overwrite`."""
    from .export import export_model, native_size, set_metadata

    check_output(out, overwrite=overwrite)
    input_size = input_size or native_size(model)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        base = export_model(model, fp32, "onnx", input_size=input_size)
        report: dict[str, Any] = {"format": "onnx-int8", "out": str(out),
                                  "input_size": list(input_size),
                                  "fp32_max_abs_diff": base["max_abs_diff"]}
        report.update(quantize_onnx(fp32, out, mode, calibration, overwrite=overwrite))
        if metadata is not None:
            set_metadata(out, metadata)
        s32, s8 = session(fp32), session(out)
        if labelled is not None:
            report["accuracy"] = accuracy_change(s32, s8, *labelled)
        report["speed"] = speed_ratio(s32, s8, input_size, speed_batches)
        report["fp32_bytes"] = fp32.stat().st_size
    report["bytes"] = Path(out).stat().st_size
    return report


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "(no message)"


def session(path: str | os.PathLike, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session with every graph optimisation."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run(sess: Any, x: torch.Tensor) -> np.ndarray:
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


def accuracy_change(fp32: Any, int8: Any, x: torch.Tensor, y: torch.Tensor,
                    batch: int = 64) -> dict[str, Any]:
    """Top-1 accuracy of both sessions on labelled images, in percent, and how often the two
    disagree."""
    hits = {"fp32": 0, "int8": 0}
    disagree = 0
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch].numpy()
        p32, p8 = _run(fp32, xb).argmax(1), _run(int8, xb).argmax(1)
        hits["fp32"] += int((p32 == yb).sum())
        hits["int8"] += int((p8 == yb).sum())
        disagree += int((p32 != p8).sum())
    n = len(x)
    a32, a8 = 100.0 * hits["fp32"] / n, 100.0 * hits["int8"] / n
    return {"images": n, "fp32_acc_pct": a32, "int8_acc_pct": a8,
            "acc_change_pts": a8 - a32, "disagree_pct": 100.0 * disagree / n}


def speed_ratio(fp32: Any, int8: Any, input_size: Sequence[int],
                batches: Sequence[int] = (1, 32), reps: int = 7) -> list[dict[str, Any]]:
    """Median ms per batch of each session, timed interleaved (ABBA), and fp32/int8."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    for b in batches:
        x = torch.randn(b, *input_size, generator=gen)
        sides = {"fp32": fp32, "int8": int8}
        for s in sides.values():  # warm-up: first runs allocate
            _run(s, x)
        times: dict[str, list[float]] = {k: [] for k in sides}
        for r in range(reps):
            for k in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                t0 = time.perf_counter()
                _run(sides[k], x)
                times[k].append(time.perf_counter() - t0)
        m32, m8 = statistics.median(times["fp32"]), statistics.median(times["int8"])
        rows.append({"batch": b, "fp32_ms": 1e3 * m32, "int8_ms": 1e3 * m8,
                     "speedup": m32 / m8})
    return rows
