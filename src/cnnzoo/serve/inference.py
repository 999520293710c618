"""The Playground: a drawn digit through the playground LeNet-5, an uploaded image through a
trained run's model. The numbers come from cnnzoo.deploy.predict (preprocessing, class names) and
cnnzoo.visual.visualize (feature maps, first-layer filters, Grad-CAM); this module only turns them
into small PNGs (data: URLs) the page shows as they are."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..contract import logits_of
from ..data.images import load_image
from ..deploy.predict import class_names, get_preprocess
from ..errors import InvalidArgumentError
from ..registry import load_model
from ..visual.visualize import first_conv, grad_cam, layer_activations, resolve_layer, to_display
from .state import ModelCache

PLAYGROUND_LAYERS = ("c1", "s2", "c3")
DRAWING_SIZE = 28  # the canvas is sampled to MNIST's 28x28, white digit on black
MAX_CHANNELS = 16


def png_url(img: np.ndarray, scale: int = 1) -> str:
    """(H, W) or (H, W, 3) floats in [0, 1] -> a data: URL of a PNG, upscaled `scale` times."""
    from PIL import Image

    a = np.clip(np.nan_to_num(img) * 255, 0, 255).astype(np.uint8)
    im = Image.fromarray(a)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _unit(t: torch.Tensor) -> np.ndarray:
    t = t.float()
    lo, hi = float(t.min()), float(t.max())
    return ((t - lo) / (hi - lo + 1e-12)).numpy()


def _viridis(a: np.ndarray) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps["viridis"](a)[..., :3]


def feature_maps(model: nn.Module, x: torch.Tensor, layer: str,
                 limit: int = MAX_CHANNELS) -> dict[str, Any]:
    """The channels of `layer` for one image: one PNG per channel (each to its own range)."""
    resolve_layer(model, layer)  # a clear 400 naming the layers, before any work
    act = layer_activations(model, x[:1], layer)[0]
    if act.dim() == 1:
        act = act[:, None, None]
    n = min(act.shape[0], limit)
    scale = max(1, 56 // max(act.shape[-1], 1))
    return {"layer": layer, "shape": list(act.shape), "shown": n,
            "maps": [png_url(_viridis(_unit(act[i])), scale) for i in range(n)]}


def filters_png(model: nn.Module, limit: int = 64) -> dict[str, Any]:
    """The first convolution's kernels as one grid image (each kernel to its own range)."""
    name, conv = first_conv(model)
    w = conv.weight.detach().float().cpu()
    n, c, kh, kw = w.shape
    n_show = min(n, limit)
    cols = min(12 if n == 96 else 16, n_show)
    rows = math.ceil(n_show / cols)
    grid = np.ones((rows * (kh + 1) + 1, cols * (kw + 1) + 1, 3))
    for i in range(n_show):
        k = _unit(w[i])
        tile = k.transpose(1, 2, 0) if c == 3 else np.repeat(k.mean(0)[..., None], 3, -1)
        r, col = divmod(i, cols)
        grid[1 + r * (kh + 1):1 + r * (kh + 1) + kh, 1 + col * (kw + 1):1 + col * (kw + 1) + kw] = tile
    scale = max(1, 240 // grid.shape[1])
    return {"layer": name, "shape": list(w.shape), "shown": n_show, "grid": png_url(grid, scale)}


@torch.no_grad()
def _scores(model: nn.Module, x: torch.Tensor, record: dict, topk: int) -> tuple[list, list]:
    probs = logits_of(model(x)).float().softmax(1)[0]
    names = class_names(record, probs.shape[0])
    p, idx = probs.topk(min(topk, probs.shape[0]))
    top = [{"class": names[int(k)], "index": int(k), "prob": float(q)} for q, k in zip(p, idx)]
    return top, [float(v) for v in probs]


def classify_drawing(model: nn.Module, record: dict, pixels: Sequence[Sequence[float]]) -> dict:
    """A 28x28 drawing (0 background .. 1 ink) -> scores and the C1/S2/C3 feature maps."""
    try:
        arr = np.asarray(pixels, dtype=np.float32)
    except (ValueError, TypeError, OverflowError, RecursionError):  # ragged, text, 10**400, deep
        arr = np.zeros((0,), dtype=np.float32)
    if arr.shape != (DRAWING_SIZE, DRAWING_SIZE) or not np.isfinite(arr).all():
        raise InvalidArgumentError(f"pixels must be {DRAWING_SIZE}x{DRAWING_SIZE} numbers in [0, 1], "
                                   f"got shape {list(arr.shape)}")
    x = get_preprocess(record, model).prepare(torch.from_numpy(np.clip(arr, 0, 1))[None, None])
    top, probs = _scores(model, x, record, 10)
    return {"prediction": top[0], "top": top, "probs": probs,
            "layers": [feature_maps(model, x, name) for name in PLAYGROUND_LAYERS]}


def _default_layer(model: nn.Module) -> str:
    return first_conv(model)[0]


def classify_upload(cache: ModelCache, model_file: Path, image_file: Path,
                    layer: str | None = None, cam: bool = True) -> dict[str, Any]:
    """An uploaded image through a run's model: top-5, first-layer filters, the feature maps
    of `layer` (default: the first conv) and Grad-CAM for the top class."""
    img = load_image(image_file)  # non-images and decompression bombs: ImageError (4xx)
    model, record = cache.get(model_file, load_model)
    pp = get_preprocess(record, model)
    x = pp.prepare_image(img)[None]
    top, _ = _scores(model, x, record, 5)
    shown = to_display(x[0], pp.mean, pp.std)
    out: dict[str, Any] = {"model": record.get("model"), "top": top, "input": png_url(shown, 2),
                           "filters": filters_png(model),
                           "features": feature_maps(model, x, layer or _default_layer(model))}
    if cam:
        try:
            heat, info = grad_cam(model, x, target=top[0]["index"])
        except InvalidArgumentError as err:
            out["grad_cam"] = {"error": str(err)}
        else:
            base = shown if shown.ndim == 3 else np.repeat(shown[..., None], 3, -1)
            overlay = 0.55 * base + 0.45 * _viridis(heat.numpy())
            out["grad_cam"] = {**info, "image": png_url(overlay, 2)}
    out["layers"] = [n for n, m in model.named_modules() if n and isinstance(m, (nn.Conv2d, nn.Linear))
                     or n in ("s2", "s4")]
    return out
