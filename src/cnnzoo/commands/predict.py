"""`cnnzoo predict`: top-5 classes of image files."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ._common import Format, console, print_json
from ._model_args import pretrained_choice, pretrained_option, pretrained_tag_option, weights_option


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict_cmd(
        model_file: Path = typer.Argument(..., help="model file (.safetensors with a record), .onnx export, run folder, or a model name with --pretrained"),
        images: List[Path] = typer.Argument(..., help="image files (any size/mode PIL reads); model "
                                            "files before them make an ensemble"),
        top: int = typer.Option(5, "--top", "-k", help="how many classes to show"),
        combine: str = typer.Option("mean", help="ensembles: mean (of the softmax), logits or vote"),
        json_out: bool = typer.Option(False, "--json", help="print JSON"),
        fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
        pretrained: bool = pretrained_option(), pretrained_tag: Optional[str] = pretrained_tag_option(),
        weights: Optional[Path] = weights_option(),
    ) -> None:
        """Classify images with the preprocessing the model was trained with (from its file).

        Corrupt images and images above the pixel cap (CNNZOO_MAX_PIXELS, decompression bombs)
        are refused with exit code 2. Several model files (`predict A B C IMAGE...`) make an
        ensemble: each member uses its own preprocessing; the members must agree on the classes.
        """
        from ..modelfile import model_path
        from ..deploy.predict import load_for_inference, predict

        files = [model_file, *images]
        n = 1
        while n < len(files) - 1 and _is_model_file(files[n]):
            n += 1
        members, images = [model_path(f) for f in files[:n]], files[n:]
        if len(members) > 1:
            from ..ensemble import members_from_files, predict_ensemble

            results = predict_ensemble(members_from_files(members), images, combine, topk=top)
            if json_out or fmt is Format.json:
                print_json(results)
                return
            _print_ensemble(results, members)
            return
        model, record = load_for_inference(members[0], pretrained_choice(pretrained, pretrained_tag, weights, members[0]),
                                           allow_onnx=True)
        results = predict(model, images, record, topk=top)
        if json_out or fmt is Format.json:
            print_json(results)
            return
        for r in results:
            console.print(r["image"], highlight=False)
            console.print(_top_table(r["top"], "prob", "probability"))


def _top_table(top: list[dict], key: str, header: str) -> Table:
    t = Table()
    t.add_column("#", justify="right")
    t.add_column("class")
    t.add_column(header, justify="right")
    for i, c in enumerate(top, 1):
        t.add_row(str(i), c["class"], f"{c[key]:.4f}")
    return t


def _is_model_file(p: Path) -> bool:
    from ..modelfile import model_path

    return model_path(p).suffix in (".safetensors", ".onnx")


def _print_ensemble(results: list[dict], members: list[Path]) -> None:
    for r in results:
        console.print(f"{r['image']}  (ensemble of {len(members)})", highlight=False)
        console.print(_top_table(r["top"], "score", "score"))
        for path, m in zip(members, r["members"]):
            console.print(f"  {path}: {m['class']} ({m['prob']:.4f})", highlight=False)
