"""`cnnzoo predict`: top-5 classes of image files."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer
from rich.table import Table

from ._common import Format, console, print_json


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict_cmd(
        checkpoint: Path = typer.Argument(..., help="model file (.safetensors with a record)"),
        images: List[Path] = typer.Argument(..., help="image files (any size/mode PIL reads)"),
        top: int = typer.Option(5, "--top", "-k", help="how many classes to show"),
        json_out: bool = typer.Option(False, "--json", help="print JSON"),
        fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
    ) -> None:
        """Classify images with the preprocessing the model was trained with (from its file).

        Corrupt images and images above the pixel cap (CNNZOO_MAX_PIXELS, decompression bombs)
        are refused with exit code 2.
        """
        from ..predict import load_for_inference, predict

        model, record = load_for_inference(checkpoint)
        results = predict(model, images, record, topk=top)
        if json_out or fmt is Format.json:
            print_json(results)
            return
        for r in results:
            console.print(r["image"], highlight=False)
            t = Table()
            t.add_column("#", justify="right")
            t.add_column("class")
            t.add_column("probability", justify="right")
            for i, c in enumerate(r["top"], 1):
                t.add_row(str(i), c["class"], f"{c['prob']:.4f}")
            console.print(t)
