"""`cnnzoo export`: ONNX / TorchScript / ExportedProgram / int8 ONNX, checked against the model."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..data.kinds import spec_list
from ._common import Format, console, print_json
from ._lazy import verb
from ._model_args import Pretrained, PretrainedTag, Weights, pretrained_choice
from ._options import JsonOpt, OverwriteOpt, bounded, check_out, choices, format_option


class Target(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"
    exported = "exported"
    executorch = "executorch"


_TARGETS = ("onnx", "torchscript", "exported", "exported-program", "executorch")


def register(app: typer.Typer) -> None:
    verb(app, "export", export_cmd)


Int8 = Annotated[bool, typer.Option("--int8", help="int8 ONNX via ONNX Runtime: static (QDQ, needs "
                                    "--calibrate) or --int8-mode dynamic")]
Int8Mode = Annotated[Optional[str], typer.Option("--int8-mode", metavar="static|dynamic", help="static (the "
                     "default: calibrated activation ranges) or dynamic (weights only); implies --int8")]
Calibrate = Annotated[Optional[str], typer.Option("--calibrate", help="calibration images (train split): "
                      f"{spec_list()}")]
CalibImages = Annotated[int, typer.Option(help="how many calibration images", callback=bounded("limit"))]
CheckData = Annotated[Optional[str], typer.Option("--check-data", help="labelled images (test split) for the "
                      "accuracy change; default: --calibrate's data")]
CheckImages = Annotated[int, typer.Option(help="how many images the accuracy check uses",
                                           callback=bounded("limit"))]


def export_cmd(
    model_file: Path = typer.Argument(..., help="model file (.safetensors with a record) "
                                      "or run folder"),
    to: Target = typer.Option(Target.onnx, "--to", "-t",
                              help=f"{choices(Target)} (exported: an ExportedProgram .pt2; "
                              "executorch: a .pte for phones, needs cnnzoo's mobile extra)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="file to write (default: beside MODEL_FILE)"),
    overwrite: OverwriteOpt = False,
    atol: float = typer.Option(1e-4, help="largest allowed difference from the model",
                               callback=bounded("tolerance")),
    int8: Int8 = False, int8_mode: Int8Mode = None, calibrate: Calibrate = None, calib_images: CalibImages = 256,
    check_data: CheckData = None, check_images: CheckImages = 2000,
    fmt: Annotated[str, format_option(f"{choices(Format)} (the report; the target is --to)")] = "table",
    json_flag: JsonOpt = False,
    pretrained: Pretrained = False, pretrained_tag: PretrainedTag = None, weights: Weights = None,
) -> None:
    """Export a model file for deployment with a dynamic batch size, then check it.

    The export is loaded back (ONNX through onnxruntime) and run on the same inputs as
    the model at two batch sizes; the max absolute difference is printed and must be
    within --atol (exit 1 otherwise). The input size is the recorded preprocessing's.
    ONNX files carry the preprocessing and class names (metadata "cnnzoo.record").

    With --int8 the ONNX file is quantized by ONNX Runtime; the report gives the accuracy
    change on labelled data and the int8 / fp32 speed, timed interleaved.
    """
    int8 = _check_options(fmt, int8 or int8_mode is not None, calibrate)
    as_json = fmt == "json"
    choice = pretrained_choice(pretrained, pretrained_tag, weights, model_file)
    from ..modelfile import model_path

    given, model_file = model_file, model_path(model_file)  # a run folder means its model file
    dest = check_out(out or _default_out(model_file, to, int8), inputs=[given, model_file], overwrite=overwrite)
    if int8:
        report = _int8(model_file, int8_mode or "static", to, dest, calibrate, calib_images,
                       check_data, check_images, choice, overwrite)
        _print_int8(report, as_json)
        return
    _plain(model_file, to, dest, atol, as_json, choice, overwrite)


def _default_out(model_file: Path, to: Target, int8: bool) -> Path:
    """Beside the model file: MODEL.onnx, MODEL.pt, MODEL.pt2, MODEL.pte, MODEL.int8.onnx."""
    from ..deploy.export import ALIASES, SUFFIX

    return Path(model_file).with_suffix(".int8.onnx" if int8 else SUFFIX[ALIASES.get(to.value, to.value)])


def _check_options(fmt: str, int8: bool, calibrate: str | None) -> bool:
    """Refuse options that contradict each other, before any work; returns whether int8 is on."""
    from ..errors import InvalidArgumentError

    if fmt in _TARGETS:
        raise InvalidArgumentError(
            f"--format is the report's format (table or json); the export target is "
            f"--to: use `--to {'exported' if fmt.startswith('exported') else fmt}`")
    if fmt not in ("table", "json"):
        raise InvalidArgumentError(f"--format {fmt!r}: choose table or json")
    if calibrate and not int8:
        raise InvalidArgumentError("--calibrate gives int8 calibration images: add --int8")
    return int8


def _plain(model_file: Path, to: Target, dest: Path, atol: float, as_json: bool,
           choice: bool | str, overwrite: bool) -> None:
    from ..deploy.export import ALIASES, deploy_record, export_model
    from ..deploy.predict import get_preprocess, load_for_inference

    fmt = ALIASES.get(to.value, to.value)
    model, record = load_for_inference(model_file, choice)
    size = get_preprocess(record, model).input_size
    meta = deploy_record(model, record) if fmt in ("onnx", "executorch") else None
    report = export_model(model, dest, fmt, input_size=size, atol=atol, metadata=meta,
                          overwrite=overwrite)  # exit 1 if the check fails
    if as_json:
        print_json(report)
        return
    console.print(
        f"wrote {report['out']} ({to.value}, {report['bytes']:,} bytes, input "
        f"{'N' if report['dynamic_batch'] else 1}x{'x'.join(map(str, size))}); "
        f"max |difference| vs the model at batch sizes "
        f"{report['checked_batches']}: {report['max_abs_diff']:.3g} (<= {atol:g})",
        highlight=False, soft_wrap=True)
    if report.get("sidecar"):  # executorch: the .pte has no metadata slot
        console.print(f"preprocessing and class names: {report['sidecar']}", highlight=False)


def _int8(model_file: Path, mode: str, to: Target, out: Path, calibrate: Optional[str],
          calib_images: int, check_data: Optional[str], check_images: int,
          choice: bool | str, overwrite: bool) -> dict[str, Any]:
    from ..deploy.quantize import quantize_model
    from ..errors import InvalidArgumentError

    if to is not Target.onnx:
        raise InvalidArgumentError(f"--int8 makes an ONNX file (ONNX Runtime quantization); "
                                   f"drop --to {to.value}")
    return quantize_model(model_file, mode, calibrate, calib_images, check_data, check_images,
                          out, pretrained=choice, overwrite=overwrite)


def _print_int8(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    console.print(f"wrote {report['out']} (int8 {report['mode']}, {report['bytes']:,} bytes; "
                  f"fp32 ONNX {report['fp32_bytes']:,} bytes; {report['quant_nodes']} "
                  f"quantization nodes)", highlight=False, soft_wrap=True)
    acc = report.get("accuracy")
    if acc:
        console.print(f"top-1 on {acc['images']} test images: fp32 {acc['fp32_acc_pct']:.2f}%, "
                      f"int8 {acc['int8_acc_pct']:.2f}% ({acc['acc_change_pts']:+.2f} points; "
                      f"predictions differ on {acc['disagree_pct']:.2f}%)", highlight=False, soft_wrap=True)
    else:
        console.print("accuracy not checked: " + report.get(
            "accuracy_skipped", "no labelled data (--check-data DATA)"), highlight=False, soft_wrap=True)
    for r in report["speed"]:
        console.print(f"batch {r['batch']}: fp32 ONNX Runtime {r['fp32_ms']:.2f} ms, int8 "
                      f"{r['int8_ms']:.2f} ms: int8 is {r['speedup']:.2f}x the fp32 speed "
                      "(timed interleaved)", highlight=False, soft_wrap=True)
