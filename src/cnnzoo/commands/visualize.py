"""`cnnzoo visualize ...`: PNG figures of what a network learned (ZFNet section, Grad-CAM)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..data.kinds import spec_help
from ._common import Format, console, print_json
from ._lazy import group
from ._model_args import Pretrained, PretrainedTag, Weights, pretrained_choice
from ._options import FormatOpt, JsonOpt, OverwriteOpt, check_out, choices

if TYPE_CHECKING:  # the CLI imports its heavy modules only when a verb runs
    import numpy as np
    import torch
    from torch import nn

    from ..data.preprocess import Preprocess

ModelFileArg = Annotated[str, typer.Argument(help="model file (.safetensors), or a model name (random weights; "
                                           "published ones with `cnnzoo visualize --pretrained ...`)")]
Image = Annotated[Path, typer.Argument(help="image file")]
Out = Annotated[Path, typer.Option("--out", "-o", help="PNG to write")]
Layer = Annotated[str, typer.Option("--layer", "-l", help="module name, e.g. c1")]


def register(app: typer.Typer) -> None:
    group(app, "visualize", "PNG figures of what a network learned (ZFNet's visualisations, Grad-CAM).",
          {"filters": filters_cmd, "features": features_cmd, "top9": top9_cmd, "deconv": deconv_cmd,
           "gradcam": gradcam_cmd, "occlusion": occlusion_cmd}, callback=_group_options)


def _group_options(ctx: typer.Context, pretrained: Pretrained = False, pretrained_tag: PretrainedTag = None,
                   weights: Weights = None) -> None:
    """The model options before the sub-verb (`visualize --pretrained gradcam ...`): kept in the
    click context for the sub-verb."""
    ctx.obj = {"pretrained": pretrained, "tag": pretrained_tag, "weights": weights}


def _load(ctx: typer.Context, model_file: str,
          allow_onnx: bool = False) -> tuple[nn.Module, dict[str, Any], Preprocess]:
    from ..deploy.predict import get_preprocess, load_for_inference

    opts = ctx.obj or {}
    choice = pretrained_choice(opts.get("pretrained", False), opts.get("tag"), opts.get("weights"), model_file)
    model, record = load_for_inference(model_file, choice, allow_onnx=allow_onnx)
    return model, record, get_preprocess(record, model)


def _image(path: Path, pp: Preprocess) -> tuple[torch.Tensor, np.ndarray]:
    """One image file as a model input batch (1, C, H, W), and as the picture it shows."""
    from ..data.images import load_image
    from ..visual.visualize import to_display

    x = pp.prepare_image(load_image(path))[None]
    return x, to_display(x[0], pp.mean, pp.std)


def _done(out: Path, info: dict, fmt: Format) -> None:
    if fmt is Format.json:
        print_json({"out": str(out), **info})
    else:
        console.print(f"wrote {out}", highlight=False)


def filters_cmd(ctx: typer.Context, model_file: ModelFileArg, out: Out, overwrite: OverwriteOpt = False,
                fmt: FormatOpt = Format.table, json_flag: JsonOpt = False) -> None:
    """The first convolution's kernels as an image grid (alexnet_original: 96 kernels, 8 x 12). A
    model name gives its random initialisation, and the title says so."""
    from ..visual.checks import untrained
    from ..visual.visualize import first_conv, save_filters

    check_out(out, inputs=[model_file], overwrite=overwrite)
    model, record, _ = _load(ctx, model_file)
    save_filters(model, out, untrained=untrained(record), overwrite=overwrite)
    name, conv = first_conv(model)
    _done(out, {"layer": name, "filters": list(conv.weight.shape), "untrained": untrained(record)}, fmt)


def features_cmd(ctx: typer.Context, model_file: ModelFileArg, image: Image, layer: Layer, out: Out,
                 max_channels: Annotated[int, typer.Option(help="show at most this many channels")] = 64,
                 per_map: Annotated[bool, typer.Option("--per-map", help="scale each map to its own range "
                                                       "(default: one colour scale for all, with a "
                                                       "colorbar)")] = False,
                 overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False) -> None:
    """Feature maps of any layer for one image, on one shared colour scale."""
    from ..visual.visualize import save_feature_maps

    check_out(out, inputs=[model_file, image], overwrite=overwrite)
    model, _, pp = _load(ctx, model_file)
    x, disp = _image(image, pp)
    save_feature_maps(model, x, layer, out, image=disp, max_channels=max_channels, per_map=per_map,
                      overwrite=overwrite)
    _done(out, {"layer": layer}, fmt)


def _methods_help() -> str:
    from ..visual.visualize import METHODS

    return f"the reconstruction: {choices(METHODS)}"


def top9_cmd(ctx: typer.Context, model_file: ModelFileArg, layer: Layer,
             channel: Annotated[int, typer.Option("--channel", "-c")], out: Out,
             data: Annotated[Optional[str], typer.Option(help=spec_help())] = None,
             split: Annotated[str, typer.Option(help="train or test")] = "test",
             limit: Annotated[int, typer.Option(help="search the first N images")] = 2000,
             method: Annotated[str, typer.Option(help=_methods_help())] = "deconvnet",
             overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False) -> None:
    """The top-9 images of a dataset for one channel: reconstructions and image patches. Ranked by
    the layer's output (pre-activation where an activation follows; the same order after it);
    warns about a channel that never fires."""
    from ..transfer.core import load_image_set
    from ..visual.checks import top9_notes
    from ..visual.visualize import save_top_activations

    check_out(out, inputs=[model_file], overwrite=overwrite)
    model, _, pp = _load(ctx, model_file)
    data_set = load_image_set(data, split, pp, limit=limit)
    _, top = save_top_activations(model, data_set.x, layer, channel, out, pp.mean, pp.std,
                                  method=method, overwrite=overwrite)
    for t in top:
        t["label"] = data_set.classes[int(data_set.y[t["index"]])]
    ranking, warnings = top9_notes(model, data_set.x[:1], layer, channel, top)
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    _done(out, {"layer": layer, "channel": channel, "ranking": ranking, "warnings": warnings, "top": top}, fmt)


def deconv_cmd(ctx: typer.Context, model_file: ModelFileArg, image: Image, layer: Layer, out: Out,
               channel: Annotated[Optional[int], typer.Option("--channel", "-c", help="default: the "
                                                              "strongest channel")] = None,
               overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False) -> None:
    """Deconvnet and guided-backprop reconstructions of one activation, side by side."""
    from ..visual.visualize import save_reconstruction

    check_out(out, inputs=[model_file, image], overwrite=overwrite)
    model, _, pp = _load(ctx, model_file)
    x, disp = _image(image, pp)
    _, info = save_reconstruction(model, x, layer, out, channel, image=disp, overwrite=overwrite)
    _done(out, info, fmt)


def gradcam_cmd(ctx: typer.Context, model_file: ModelFileArg, image: Image, out: Out,
                target: Annotated[Optional[int], typer.Option("--class", help="default: predicted")] = None,
                layer: Annotated[Optional[str], typer.Option("--layer", "-l", help="default: the last layer "
                                                             "whose map is larger than 1x1")] = None,
                overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False) -> None:
    """Grad-CAM heat map over the image for a class."""
    from ..deploy.predict import class_names
    from ..visual.visualize import save_grad_cam

    check_out(out, inputs=[model_file, image], overwrite=overwrite)
    model, record, pp = _load(ctx, model_file)
    x, disp = _image(image, pp)
    _, info = save_grad_cam(model, x, out, disp, target, layer,
                            class_names(record, model.num_classes), overwrite=overwrite)
    if layer is None and fmt is Format.table:
        console.print(f"layer: {info['layer']} (the last with a map larger than 1x1; --layer to choose)",
                      highlight=False)
    _done(out, info, fmt)


def occlusion_cmd(
    ctx: typer.Context,
    model_file: Annotated[str, typer.Argument(help="model file, run folder or model name (random weights)")],
    image: Image,
    size: Annotated[Optional[int], typer.Option(help="occluder side in input pixels (default: a fifth of "
                                                "the input)")] = None,
    stride: Annotated[Optional[int], typer.Option(help="step between positions (default: a third of "
                                                  "--size)")] = None,
    target: Annotated[Optional[str], typer.Option(help="correct class (index or name; default: the "
                                                  "prediction)")] = None,
    batch_size: Annotated[int, typer.Option(help="occluded images per forward pass")] = 64,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG")] = Path("occlusion.png"),
    overwrite: OverwriteOpt = False, fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Occlusion sensitivity (Zeiler & Fergus 2014, Fig. 7): a grey square slides over the
    image; the PNG shows the image, the correct class's probability map and the most probable
    class map."""
    from ..deploy.predict import class_names
    from ..modelfile import model_path
    from ..visual.occlusion import as_json as maps_as_json
    from ..visual.occlusion import occlusion_maps, save_occlusion

    check_out(out, inputs=[model_file, model_path(model_file), image], overwrite=overwrite)
    model, record, pp = _load(ctx, str(model_path(model_file)), allow_onnx=True)
    x, disp = _image(image, pp)
    names = class_names(record, model.num_classes)
    res = occlusion_maps(model, x, size, stride, _class_index(target, names), batch_size=batch_size,
                         progress=_progress_printer())
    save_occlusion(res, disp, out, names, overwrite=overwrite)
    info = maps_as_json(res, names)
    if fmt is Format.json:
        print_json({"out": str(out), **info})
        return
    square = info["most_sensitive_square"]
    console.print(f"wrote {out}: p({info['target_name']}) {info['unoccluded_prob']:.3f} unoccluded, down to "
                  f"{info['min_prob']:.3f} with the square at row {square['row']}, col {square['col']} "
                  f"({len(res['rows'])}x{len(res['cols'])} positions, {res['size']}px square, stride "
                  f"{res['stride']})", highlight=False, soft_wrap=True)


def _class_index(target: str | None, names: list[str]) -> int | None:
    """--target as a class index: a class name or an index (None: the prediction)."""
    if target is None:
        return None
    from ..errors import InvalidArgumentError

    idx = names.index(target) if target in names else (int(target) if target.lstrip("-").isdigit() else None)
    if idx is None or not 0 <= idx < len(names):
        raise InvalidArgumentError(f"--target {target!r}: not a class of this model "
                                   f"(0..{len(names) - 1} or a name: {', '.join(names[:10])}"
                                   f"{', ...' if len(names) > 10 else ''})")
    return idx


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
