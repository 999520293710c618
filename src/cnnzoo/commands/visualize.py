"""`cnnzoo visualize ...`: PNG figures of what a network learned (ZFNet section, Grad-CAM)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from ..data.kinds import spec_help
from ._common import console, print_json
from ._model_args import pretrained_choice, pretrained_option, pretrained_tag_option, weights_option

if TYPE_CHECKING:  # the CLI imports its heavy modules only when a verb runs
    import numpy as np
    import torch
    from torch import nn

    from ..data.preprocess import Preprocess

vis = typer.Typer(help="PNG figures of what a network learned (ZFNet's visualisations, Grad-CAM).",
                  no_args_is_help=True)

MODEL_FILE_ARG = typer.Argument(..., help="model file (.safetensors), or a model name (random weights; "
                                           "published ones with `cnnzoo visualize --pretrained ...`)")
_PRETRAINED: dict[str, Any] = {}  # the group's options (pretrained, tag, weights), per invocation


@vis.callback()
def _group_options(pretrained: bool = pretrained_option(),
                   pretrained_tag: Optional[str] = pretrained_tag_option(),
                   weights: Optional[Path] = weights_option()) -> None:
    _PRETRAINED.update(pretrained=pretrained, tag=pretrained_tag, weights=weights)


def _load(model_file: str, allow_onnx: bool = False) -> tuple[nn.Module, dict[str, Any], Preprocess]:
    from ..deploy.predict import get_preprocess, load_for_inference

    choice = pretrained_choice(_PRETRAINED.get("pretrained", False), _PRETRAINED.get("tag"),
                               _PRETRAINED.get("weights"), model_file)
    model, record = load_for_inference(model_file, choice, allow_onnx=allow_onnx)
    return model, record, get_preprocess(record, model)


def _image(path: Path, pp: Preprocess) -> tuple[torch.Tensor, np.ndarray]:
    """One image file as a model input batch (1, C, H, W), and as the picture it shows."""
    from ..data.images import load_image
    from ..visual.visualize import to_display

    x = pp.prepare_image(load_image(path))[None]
    return x, to_display(x[0], pp.mean, pp.std)


def _done(out: Path, info: dict, json_out: bool) -> None:
    if json_out:
        print_json({"out": str(out), **info})
    else:
        console.print(f"wrote {out}", highlight=False)


@vis.command("filters")
def filters_cmd(model_file: str = MODEL_FILE_ARG,
                out: Path = typer.Option(..., "--out", "-o", help="PNG to write"),
                json_out: bool = typer.Option(False, "--json")) -> None:
    """The first convolution's kernels as an image grid (alexnet_original: 96 kernels, 8 x 12). A
    model name gives its random initialisation, and the title says so."""
    from ..visual.checks import untrained
    from ..visual.visualize import first_conv, save_filters

    model, record, _ = _load(model_file)
    save_filters(model, out, untrained=untrained(record))
    name, conv = first_conv(model)
    _done(out, {"layer": name, "filters": list(conv.weight.shape), "untrained": untrained(record)}, json_out)


@vis.command("features")
def features_cmd(model_file: str = MODEL_FILE_ARG, image: Path = typer.Argument(..., help="image file"),
                 layer: str = typer.Option(..., "--layer", "-l", help="module name, e.g. c1"),
                 out: Path = typer.Option(..., "--out", "-o"),
                 max_channels: int = typer.Option(64, help="show at most this many channels"),
                 per_map: bool = typer.Option(False, "--per-map", help="scale each map to its own range "
                                              "(default: one colour scale for all, with a colorbar)"),
                 json_out: bool = typer.Option(False, "--json")) -> None:
    """Feature maps of any layer for one image, on one shared colour scale."""
    from ..visual.visualize import save_feature_maps

    model, _, pp = _load(model_file)
    x, disp = _image(image, pp)
    save_feature_maps(model, x, layer, out, image=disp, max_channels=max_channels, per_map=per_map)
    _done(out, {"layer": layer}, json_out)


@vis.command("top9")
def top9_cmd(model_file: str = MODEL_FILE_ARG,
             layer: str = typer.Option(..., "--layer", "-l"),
             channel: int = typer.Option(..., "--channel", "-c"),
             data: Optional[str] = typer.Option(None, "--data", help=spec_help()),
             split: str = typer.Option("test", help="train or test"),
             limit: int = typer.Option(2000, help="search the first N images"),
             method: str = typer.Option("deconvnet", help="deconvnet, guided or gradient"),
             out: Path = typer.Option(..., "--out", "-o"),
             json_out: bool = typer.Option(False, "--json")) -> None:
    """The top-9 images of a dataset for one channel: reconstructions and image patches. Ranked by
    the layer's output (pre-activation where an activation follows; the same order after it);
    warns about a channel that never fires."""
    from ..transfer.core import load_image_set
    from ..visual.checks import top9_notes
    from ..visual.visualize import save_top_activations

    model, _, pp = _load(model_file)
    data_set = load_image_set(data, split, pp, limit=limit)
    _, top = save_top_activations(model, data_set.x, layer, channel, out, pp.mean, pp.std,
                                  method=method)
    for t in top:
        t["label"] = data_set.classes[int(data_set.y[t["index"]])]
    ranking, warnings = top9_notes(model, data_set.x[:1], layer, channel, top)
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    _done(out, {"layer": layer, "channel": channel, "ranking": ranking, "warnings": warnings, "top": top}, json_out)


@vis.command("deconv")
def deconv_cmd(model_file: str = MODEL_FILE_ARG, image: Path = typer.Argument(...),
               layer: str = typer.Option(..., "--layer", "-l"),
               channel: Optional[int] = typer.Option(None, "--channel", "-c",
                                                     help="default: the strongest channel"),
               out: Path = typer.Option(..., "--out", "-o"),
               json_out: bool = typer.Option(False, "--json")) -> None:
    """Deconvnet and guided-backprop reconstructions of one activation, side by side."""
    from ..visual.visualize import save_reconstruction

    model, _, pp = _load(model_file)
    x, disp = _image(image, pp)
    _, info = save_reconstruction(model, x, layer, out, channel, image=disp)
    _done(out, info, json_out)


@vis.command("gradcam")
def gradcam_cmd(model_file: str = MODEL_FILE_ARG, image: Path = typer.Argument(...),
                target: Optional[int] = typer.Option(None, "--class", help="default: predicted"),
                layer: Optional[str] = typer.Option(None, "--layer", "-l",
                                                    help="default: the last layer whose map is larger than 1x1"),
                out: Path = typer.Option(..., "--out", "-o"),
                json_out: bool = typer.Option(False, "--json")) -> None:
    """Grad-CAM heat map over the image for a class."""
    from ..deploy.predict import class_names
    from ..visual.visualize import save_grad_cam

    model, record, pp = _load(model_file)
    x, disp = _image(image, pp)
    _, info = save_grad_cam(model, x, out, disp, target, layer,
                            class_names(record, model.num_classes))
    if layer is None and not json_out:
        console.print(f"layer: {info['layer']} (the last with a map larger than 1x1; --layer to choose)",
                      highlight=False)
    _done(out, info, json_out)


@vis.command("occlusion")
def occlusion_cmd(model_file: str = typer.Argument(..., help="model file, run folder or model "
                                                   "name (random weights)"),
                  image: Path = typer.Argument(..., help="image file"),
                  size: Optional[int] = typer.Option(None, "--size", help="occluder side in "
                                                     "input pixels (default: a fifth of the input)"),
                  stride: Optional[int] = typer.Option(None, "--stride", help="step between "
                                                       "positions (default: a third of --size)"),
                  target: Optional[str] = typer.Option(None, "--target", help="correct class "
                                                       "(index or name; default: the prediction)"),
                  batch_size: int = typer.Option(64, help="occluded images per forward pass"),
                  out: Path = typer.Option(Path("occlusion.png"), "--out", "-o", help="PNG"),
                  fmt: str = typer.Option("table", "--format", help="table or json (the maps)"),
                  json_out: bool = typer.Option(False, "--json", help="same as --format json"),
                  ) -> None:
    """Occlusion sensitivity (Zeiler & Fergus 2014, Fig. 7): a grey square slides over the
    image; the PNG shows the image, the correct class's probability map and the most probable
    class map."""
    from ..errors import InvalidArgumentError
    from ..visual.occlusion import as_json, occlusion_maps, save_occlusion
    from ..deploy.predict import class_names

    if fmt not in ("table", "json"):
        raise InvalidArgumentError(f"--format {fmt!r}: choose table or json")
    from ..modelfile import model_path

    model, record, pp = _load(str(model_path(model_file)), allow_onnx=True)
    x, disp = _image(image, pp)
    names = class_names(record, model.num_classes)
    idx = None
    if target is not None:
        idx = names.index(target) if target in names else (
            int(target) if target.lstrip("-").isdigit() else None)
        if idx is None or not 0 <= idx < len(names):
            raise InvalidArgumentError(f"--target {target!r}: not a class of this model "
                                       f"(0..{len(names) - 1} or a name: {', '.join(names[:10])}"
                                       f"{', ...' if len(names) > 10 else ''})")
    res = occlusion_maps(model, x, size, stride, idx, batch_size=batch_size,
                         progress=_progress_printer())
    save_occlusion(res, disp, out, names)
    info = as_json(res, names)
    if json_out or fmt == "json":
        print_json({"out": str(out), **info})
        return
    console.print(f"wrote {out}: p({info['target_name']}) {info['unoccluded_prob']:.3f} "
                  f"unoccluded, down to {info['min_prob']:.3f} with the square at row "
                  f"{info['most_sensitive_square']['row']}, col "
                  f"{info['most_sensitive_square']['col']} ({len(res['rows'])}x"
                  f"{len(res['cols'])} positions, {res['size']}px square, stride "
                  f"{res['stride']})", highlight=False, soft_wrap=True)


def _progress_printer() -> Any:
    """A progress line on stderr every ~10 s (long runs: big models, small strides)."""
    import sys
    import time

    start = last = time.monotonic()

    def show(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= 10 or (done == total and now - start >= 10):
            last = now
            print(f"occlusion: {done}/{total} positions, {now - start:.0f} s", file=sys.stderr)

    return show


def register(app: typer.Typer) -> None:
    app.add_typer(vis, name="visualize")
