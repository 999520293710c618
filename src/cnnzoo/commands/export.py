"""`cnnzoo export`: ONNX / TorchScript / ExportedProgram, checked against the model."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ._model_args import pretrained_choice, pretrained_option, pretrained_tag_option
from ._common import console, print_json


class ExportFormat(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"
    exported_program = "exported-program"


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        checkpoint: Path = typer.Argument(..., help="model file (.safetensors with a record)"),
        to: ExportFormat = typer.Option(ExportFormat.onnx, "--format", "-f",
                                        help="onnx, torchscript or exported-program"),
        out: Optional[Path] = typer.Option(None, "--out", "-o",
                                           help="file to write (default: beside CHECKPOINT)"),
        atol: float = typer.Option(1e-4, help="largest allowed difference from the model"),
        json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
        pretrained: bool = pretrained_option(), pretrained_tag: Optional[str] = pretrained_tag_option(),
    ) -> None:
        """Export a model file for deployment with a dynamic batch size, then check it.

        The export is loaded back (ONNX through onnxruntime) and run on the same inputs as
        the model at two batch sizes; the max absolute difference is printed and must be
        within --atol (exit 1 otherwise). The input size is the recorded preprocessing's.
        (--format names the export format here; --json prints the report as JSON.)
        """
        from ..export import SUFFIX, export_model
        from ..predict import get_preprocess, load_for_inference

        model, record = load_for_inference(checkpoint, pretrained_choice(pretrained, pretrained_tag))
        size = get_preprocess(record, model).input_size
        dest = out or Path(checkpoint).with_suffix(SUFFIX[to.value])
        report = export_model(model, dest, to.value, input_size=size, atol=atol)  # exit 1 if the check fails
        if json_out:
            print_json(report)
            return
        console.print(
            f"wrote {report['out']} ({to.value}, {report['bytes']:,} bytes, input "
            f"Nx{'x'.join(map(str, size))}); max |difference| vs the model at batch sizes "
            f"{report['checked_batches']}: {report['max_abs_diff']:.3g} (<= {atol:g})",
            highlight=False)
