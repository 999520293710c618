"""`cnnzoo convert`: a torchvision/timm weights file -> a cnnzoo model file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import Format, console, print_json
from ._lazy import verb
from ._options import FormatOpt, JsonOpt, OverwriteOpt, bounded, check_out


def register(app: typer.Typer) -> None:
    verb(app, "convert", convert_cmd)


def convert_cmd(
    src: Annotated[Path, typer.Argument(help="weights file: torchvision/timm .pth or .safetensors")],
    out: Annotated[Path, typer.Argument(help="model file to write (.safetensors with a record)")],
    model: Annotated[str, typer.Option("--model", "-m", help="zoo model name, e.g. resnet18")],
    num_classes: Annotated[Optional[int], typer.Option(callback=bounded("classes"), help=(
        "classes of the file's classifier (default: read from the file)"))] = None,
    in_chans: Annotated[int, typer.Option(help="input channels of the model to build",
                                            callback=bounded("channels"))] = 3,
    allow_partial: Annotated[bool, typer.Option("--allow-partial", help="load what fits instead of failing "
                                                "on differences")] = False,
    overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Convert a weights file into a self-describing cnnzoo model file.

    Keys are mapped by name, or by position where the file uses other names (timm); missing or
    unexpected keys and shape mismatches are reported, and fail the conversion unless --allow-partial.
    """
    import torch

    from ..deploy.predict import default_preprocess
    from ..modelfile import save_model
    from ..registry import create_model
    from ..weights import infer_num_classes, load_weights

    check_out(out, inputs=[src], overwrite=overwrite, label="OUT")
    if num_classes is None:
        with torch.device("meta"):
            probe = create_model(model, in_chans=in_chans)
        num_classes = infer_num_classes(probe, src) or 1000
    net = create_model(model, num_classes=num_classes, in_chans=in_chans)
    report = load_weights(net, src, strict=not allow_partial)
    record = save_model(out, net, preprocess=default_preprocess(net).to_record(),
                        source={"file": str(src), "load": report.as_dict()})
    if fmt is Format.json:
        print_json({"out": str(out), "model": model, "num_classes": num_classes,
                    "report": report.as_dict(), "record": record})
        return
    console.print(report.summary(), highlight=False)
    console.print(f"wrote {out} ({model}, {num_classes} classes)", highlight=False)
