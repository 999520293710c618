"""`cnnzoo predict`: top-5 classes of image files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List

import typer
from rich.table import Table

from ._common import Format, console, print_json
from ._lazy import verb
from ._model_args import Pretrained, PretrainedTag, Weights, pretrained_choice
from ._options import FormatOpt, JsonOpt, bounded, combine_option


def register(app: typer.Typer) -> None:
    verb(app, "predict", predict_cmd)


def predict_cmd(
    model_file: Annotated[Path, typer.Argument(help="model file (.safetensors with a record), .onnx or .pte export, "
                                               "run folder, or a model name with --pretrained")],
    images: Annotated[List[Path], typer.Argument(help="image files (any size/mode PIL reads); model files "
                                                 "before them make an ensemble")],
    top: Annotated[int, typer.Option("--top", "-k", help="how many classes to show",
                                                 callback=bounded("top_k"))] = 5,
    combine: Annotated[str, combine_option()] = "mean",
    fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
    pretrained: Pretrained = False, pretrained_tag: PretrainedTag = None, weights: Weights = None,
) -> None:
    """Classify images with the preprocessing the model was trained with (from its file).

    Corrupt images and images above the pixel cap (CNNZOO_MAX_PIXELS, decompression bombs)
    are refused with exit code 2. Several model files (`predict A B C IMAGE...`) make an
    ensemble: each member uses its own preprocessing; the members must agree on the classes.
    """
    from ..deploy.predict import load_for_inference, predict

    members, images = _split_members([model_file, *images])
    if len(members) > 1:
        from ..deploy.predict import predict_ensemble
        from ..ensemble import members_from_files

        results = predict_ensemble(members_from_files(members), images, combine, topk=top)
        print_json(results) if fmt is Format.json else _print_ensemble(results, members)
        return
    model, record = load_for_inference(members[0], pretrained_choice(pretrained, pretrained_tag, weights,
                                                                     members[0]), allow_onnx=True)
    results = predict(model, images, record, topk=top)
    if fmt is Format.json:
        print_json(results)
        return
    for r in results:
        console.print(r["image"], highlight=False)
        console.print(_top_table(r["top"], "prob", "probability"))


def _split_members(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """`A B C IMAGE...`: the leading model files (at least one) and the images after them."""
    from ..modelfile import model_path

    n = 1
    while n < len(files) - 1 and _is_model_file(files[n]):
        n += 1
    return [model_path(f) for f in files[:n]], files[n:]


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

    return model_path(p).suffix in (".safetensors", ".onnx", ".pte")


def _print_ensemble(results: list[dict], members: list[Path]) -> None:
    for r in results:
        console.print(f"{r['image']}  (ensemble of {len(members)})", highlight=False)
        console.print(_top_table(r["top"], "score", "score"))
        for path, m in zip(members, r["members"]):
            console.print(f"  {path}: {m['class']} ({m['prob']:.4f})", highlight=False)
