"""What a network has learned, after Zeiler & Fergus (ZFNet, seed 004) and Grad-CAM.

  first_layer_filters   the first convolution's kernels as an image grid (AlexNet's 96)
  feature_maps          the channels of any named layer for one image
  top_activations       the top-9 images of a dataset for one channel, with the image patch
                        (the unit's receptive field) and its reconstruction
  reconstruct           deconvnet (ZF: unpool with the max-pool switches, rectify, filter with
                        the transposed kernels) or guided backprop, from one activation
  grad_cam              Selvaraju et al.'s class activation map

Each works on any model of the zoo (layers are named as in `model.named_modules()`) and on a
private copy of it (in-place ReLUs made out-of-place, ReLUs swapped for the reconstruction
rules), so the caller's model is untouched. The `save_*` functions write PNGs sized for slides;
their `out` obeys the output guard (cnnzoo.outputs: an existing file only with `overwrite=True`).

The deconvnet needs no separate network: the gradient of a max-pool routes through the
recorded argmax (the paper's "switches") and the gradient of a convolution is the convolution
with the transposed filters, so backpropagation with ReLU's backward replaced by a ReLU of the
signal coming down is exactly the paper's unpool-rectify-filter path.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..contract import logits_of
from ..errors import InvalidArgumentError, closest
from ..outputs import check_output
from .checks import default_cam_layer, top9_notes

METHODS = ("deconvnet", "guided", "gradient")


# -- layers and model copies --------------------------------------------------------------------

def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        near = closest(name, [n for n in modules if n])
        convs = [n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
        raise InvalidArgumentError(
            f"no layer named {name!r} in {type(model).__name__}"
            + (f"; did you mean: {', '.join(near)}?" if near else "")
            + f" (conv/linear layers: {', '.join(convs[:12])}{', ...' if len(convs) > 12 else ''})")
    return modules[name]


def _private_copy(model: nn.Module) -> nn.Module:
    m = copy.deepcopy(model).eval().float().cpu()
    for mod in m.modules():
        if hasattr(mod, "inplace"):
            mod.inplace = False  # captured activations must not be overwritten downstream
    for p in m.parameters():
        p.requires_grad_(False)
    return m


class _ReconstructReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, method):
        ctx.save_for_backward(x)
        ctx.method = method
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.method == "deconvnet":  # rectify the signal coming down (ZF's deconvnet)
            return grad.clamp(min=0), None
        if ctx.method == "guided":  # ... and only where the forward pass was positive
            return grad.clamp(min=0) * (x > 0), None
        if ctx.method == "through":  # every path open: the support is the receptive field
            return grad, None
        return grad * (x > 0), None


class _ReLURule(nn.Module):
    def __init__(self, method: str):
        super().__init__()
        self.method = method

    def forward(self, x):
        return _ReconstructReLU.apply(x, self.method)


def _swap_relus(model: nn.Module, method: str) -> int:
    n = 0
    for mod in list(model.modules()):
        for cname, child in list(mod.named_children()):
            if type(child) is nn.ReLU:
                setattr(mod, cname, _ReLURule(method))
                n += 1
    return n


def _capture(model: nn.Module, layer: str, x: torch.Tensor):
    """Run the model; returns (activation of `layer`, logits)."""
    store: dict[str, torch.Tensor] = {}
    handle = resolve_layer(model, layer).register_forward_hook(
        lambda m, i, o: store.__setitem__("a", o if isinstance(o, torch.Tensor) else o[0]))
    try:
        out = model(x)
    finally:
        handle.remove()
    return store["a"], logits_of(out)


# -- computations ------------------------------------------------------------------------------

def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise InvalidArgumentError(f"{type(model).__name__} has no convolution")


@torch.no_grad()
def layer_activations(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    m = _private_copy(model)
    act, _ = _capture(m, layer, x)
    return act


def top_activations(model: nn.Module, images: torch.Tensor, layer: str, channel: int,
                    k: int = 9, batch_size: int = 256) -> list[dict[str, Any]]:
    """The k images of `images` (normalised, N x C x H x W) whose strongest activation in
    `channel` of `layer` is largest; each with its value, location and receptive-field box."""
    m = _private_copy(model)
    scores, where = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            act, _ = _capture(m, layer, images[i:i + batch_size])
            _check_channel(act, channel, layer)
            a = act[:, channel].reshape(act.shape[0], -1)
            v, idx = a.max(1)
            scores.append(v)
            where.append(idx)
            spatial = act.shape[2:]
    scores_t, where_t = torch.cat(scores), torch.cat(where)
    best = scores_t.topk(min(k, len(scores_t))).indices
    m_rf = _private_copy(model)
    _swap_relus(m_rf, "through")
    out = []
    for i in best.tolist():
        pos = _unravel(int(where_t[i]), spatial)
        box = receptive_box(m_rf, images[i:i + 1], layer, channel, pos)
        out.append({"index": i, "value": float(scores_t[i]), "position": pos, "box": box})
    return out


def _unravel(flat: int, spatial) -> tuple[int, ...]:
    return tuple(int(v) for v in np.unravel_index(flat, tuple(spatial))) if len(spatial) else ()


def _check_channel(act: torch.Tensor, channel: int, layer: str) -> None:
    if act.dim() < 2 or not 0 <= channel < act.shape[1]:
        raise InvalidArgumentError(
            f"channel {channel} is out of range: layer {layer!r} has "
            f"{act.shape[1] if act.dim() >= 2 else 0} channels (0..{act.shape[1] - 1})")


def receptive_box(model: nn.Module, x: torch.Tensor, layer: str, channel: int,
                  pos: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the input pixels that influence one unit: the support of
    the gradient of that unit (its receptive field, clipped to the image). Pass a model whose
    ReLUs pass gradients through (as top_activations does), else switched-off units shrink it."""
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        act, _ = _capture(model, layer, x)
        (g,) = torch.autograd.grad(act[(0, channel, *pos)], x)
    nz = (g[0].abs().sum(0) > 0).nonzero()
    if len(nz) == 0:  # dead path: fall back to the whole image
        return (0, 0, x.shape[-2], x.shape[-1])
    return (int(nz[:, 0].min()), int(nz[:, 1].min()), int(nz[:, 0].max()) + 1,
            int(nz[:, 1].max()) + 1)


def reconstruct(model: nn.Module, x: torch.Tensor, layer: str, channel: int | None = None,
                method: str = "deconvnet", position: tuple[int, ...] | None = None
                ) -> tuple[torch.Tensor, dict[str, Any]]:
    """Project one activation of `layer` back to pixel space (ZF's deconvnet, or guided
    backprop, or the plain gradient). All other activations of the layer are set to zero.

    channel None: the channel with the strongest activation; position None: its argmax.
    Returns (reconstruction shaped like x[0], info)."""
    if method not in METHODS:
        raise InvalidArgumentError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    m = _private_copy(model)
    swapped = _swap_relus(m, method)
    x = x[:1].clone().requires_grad_(True)
    with torch.enable_grad():
        act, _ = _capture(m, layer, x)
        if channel is None:
            flat = act[0].reshape(act.shape[1], -1).amax(1)
            channel = int(flat.argmax())
        _check_channel(act, channel, layer)
        if position is None:
            position = _unravel(int(act[0, channel].reshape(-1).argmax()), act.shape[2:])
        mask = torch.zeros_like(act)
        mask[(0, channel, *position)] = 1.0
        # the chosen activation is fed down with its own value; every other one is zero
        (g,) = torch.autograd.grad((act * mask).sum() * act[(0, channel, *position)].detach(), x)
    return g[0].detach(), {"layer": layer, "channel": channel, "position": list(position),
                           "value": float(act[(0, channel, *position)].detach()), "method": method,
                           "relus_replaced": swapped}


def grad_cam(model: nn.Module, x: torch.Tensor, target: int | None = None,
             layer: str | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """Grad-CAM heat map in [0, 1] at the input's resolution, for class `target` (default:
    the predicted class), from `layer` (default: the last layer whose map is larger than 1x1)."""
    m = _private_copy(model)
    x = x[:1]
    if layer is None:  # the last map with spatial extent > 1 (a 1x1 map gives a uniform heat map)
        layer = default_cam_layer(m, x)
    with torch.enable_grad():
        # gradients must reach the hooked activation even with frozen parameters
        x = x.clone().requires_grad_(True)
        act, logits = _capture(m, layer, x)
        logits = logits_of(logits)
        if target is None:
            target = int(logits[0].argmax())
        if not 0 <= target < logits.shape[1]:
            raise InvalidArgumentError(f"class {target} out of range 0..{logits.shape[1] - 1}")
        (g,) = torch.autograd.grad(logits[0, target], act)
    if act.dim() != 4:
        raise InvalidArgumentError(f"Grad-CAM needs a spatial feature map; layer output is "
                                   f"{tuple(act.shape)}")
    weights = g[0].mean((1, 2))  # global-average-pooled gradients: one weight per channel
    cam = torch.relu((weights[:, None, None] * act[0].detach()).sum(0))
    cam = nn.functional.interpolate(cam[None, None], size=x.shape[-2:], mode="bilinear",
                                    align_corners=False)[0, 0]
    cam = cam / cam.max() if cam.max() > 0 else cam
    prob = float(logits.detach().softmax(1)[0, target])
    return cam, {"target": target, "prob": prob, "layer": layer}


# -- drawing -----------------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_display(x: torch.Tensor, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> np.ndarray:
    """A normalised (C, H, W) image -> (H, W[, 3]) floats in [0, 1] for imshow."""
    x = x.detach().float().cpu()
    if mean is not None and std is not None:
        x = x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
    x = x.clamp(0, 1)
    return x[0].numpy() if x.shape[0] == 1 else x[:3].permute(1, 2, 0).numpy()


def _signed_display(r: torch.Tensor) -> np.ndarray:
    """A reconstruction (any sign) -> [0, 1], zero at mid-grey, as ZF show them."""
    r = r.detach().float()
    scale = r.abs().max()
    r = r / (2 * scale) + 0.5 if scale > 0 else r + 0.5
    return r[0].numpy() if r.shape[0] == 1 else r[:3].permute(1, 2, 0).numpy()


def _save(fig, out: str | os.PathLike) -> Path:
    from ..files import atomic_path

    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight", facecolor="white")
    _plt().close(fig)
    return out


def save_filters(model: nn.Module, out: str | os.PathLike, title: str | None = None,
                 untrained: bool = False, *, overwrite: bool = False) -> Path:
    """The first convolution's kernels as a grid (each kernel scaled to its own range);
    `untrained`: the weights are a random initialisation, and the title says so."""
    check_output(out, overwrite=overwrite)  # cnnzoo.outputs: before the work
    plt = _plt()
    name, conv = first_conv(model)
    w = conv.weight.detach().float().cpu()
    n, c = w.shape[:2]
    cols = min(16, n) if n > 16 else n
    cols = 12 if n == 96 else cols  # AlexNet: 96 kernels as 8 rows of 12, like the paper
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8 + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        k = w[i]
        k = (k - k.min()) / (k.max() - k.min() + 1e-12)
        ax.imshow(k.permute(1, 2, 0).numpy() if c == 3 else k.mean(0).numpy(),
                  cmap=None if c == 3 else "gray", interpolation="nearest")
    fig.suptitle((title or f"{getattr(model, 'model_name', type(model).__name__)}: {n} first-layer "
                  f"filters ({name}, {c}x{w.shape[2]}x{w.shape[3]}), {rows}x{cols}")
                 + ("\nrandom initialisation (untrained weights)" if untrained else ""), fontsize=10)
    return _save(fig, out)


def save_feature_maps(model: nn.Module, x: torch.Tensor, layer: str, out: str | os.PathLike,
                      image: np.ndarray | None = None, max_channels: int = 64,
                      per_map: bool = False, *, overwrite: bool = False) -> Path:
    """The channels of `layer` for one image (a grid; the input first if given), on one colour
    scale shared by every map with its colorbar (`per_map`: each map its own, said in the title)."""
    check_output(out, overwrite=overwrite)  # cnnzoo.outputs: before the work
    plt = _plt()
    act = layer_activations(model, x[:1], layer)[0]
    if act.dim() == 1:
        act = act[:, None, None]
    n = min(act.shape[0], max_channels)
    tiles = n + (image is not None)
    cols = min(8, tiles)
    rows = math.ceil(tiles / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.3 + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    flat = list(axes.flat)
    if image is not None:
        flat[0].imshow(image, cmap="gray" if image.ndim == 2 else None)
        flat[0].set_title("input", fontsize=7)
        flat = flat[1:]
    lo, hi = (None, None) if per_map else (float(act[:n].min()), float(act[:n].max()))
    for i in range(n):
        im = flat[i].imshow(act[i].numpy(), cmap="viridis", interpolation="nearest", vmin=lo, vmax=hi)
        flat[i].set_title(f"ch {i}", fontsize=6)
    if not per_map:
        fig.colorbar(im, ax=list(axes.flat), shrink=0.6).set_label(f"{layer} activation (one scale for all maps)")
    shape = "x".join(map(str, act.shape))
    scale = "each map scaled to its own range" if per_map else "one colour scale"
    fig.suptitle(f"{layer}: feature maps ({shape}{f', first {n}' if n < act.shape[0] else ''}; {scale})",
                 fontsize=10)
    return _save(fig, out)


def save_top_activations(model: nn.Module, images: torch.Tensor, layer: str, channel: int,
                         out: str | os.PathLike, mean: Sequence[float] | None = None,
                         std: Sequence[float] | None = None, k: int = 9,
                         method: str = "deconvnet", *, overwrite: bool = False) -> tuple[Path, list[dict[str, Any]]]:
    """ZF's figure: for one channel, the reconstructions of its top-k activations (left) and
    the corresponding image patches (right)."""
    check_output(out, overwrite=overwrite)  # cnnzoo.outputs: before the work
    plt = _plt()
    top = top_activations(model, images, layer, channel, k=k)
    side = math.ceil(math.sqrt(len(top)))
    fig, axes = plt.subplots(side, 2 * side + 1, figsize=((2 * side + 1) * 1.2, side * 1.2 + 0.6),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for j, t in enumerate(top):
        r, c = divmod(j, side)
        x = images[t["index"]:t["index"] + 1]
        rec, _ = reconstruct(model, x, layer, channel, method, position=tuple(t["position"]))
        y0, x0, y1, x1 = t["box"]
        axes[r, c].imshow(_signed_display(rec[:, y0:y1, x0:x1]),
                          cmap="gray" if rec.shape[0] == 1 else None)
        patch = to_display(x[0], mean, std)[y0:y1, x0:x1]
        axes[r, side + 1 + c].imshow(patch, cmap="gray" if patch.ndim == 2 else None)
        axes[r, side + 1 + c].set_title(f"#{t['index']} {t['value']:.2f}", fontsize=6)
    ranking, _ = top9_notes(_private_copy(model), images[:1], layer, channel, top)
    fig.suptitle(f"{layer}, channel {channel}: top-{len(top)} activations in {len(images)} images "
                 f"— {method} reconstructions | image patches\n{ranking}", fontsize=9)
    return _save(fig, out), top


def save_reconstruction(model: nn.Module, x: torch.Tensor, layer: str, out: str | os.PathLike,
                        channel: int | None = None, image: np.ndarray | None = None,
                        methods: Sequence[str] = ("deconvnet", "guided"), *,
                        overwrite: bool = False) -> tuple[Path, dict]:
    check_output(out, overwrite=overwrite)  # cnnzoo.outputs: before the work
    plt = _plt()
    panels = [("input", image)] if image is not None else []
    info: dict[str, Any] = {}
    for m in methods:
        rec, info = reconstruct(model, x, layer, channel, m)
        channel = info["channel"]
        panels.append((m, _signed_display(rec)))
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.4), squeeze=False)
    for ax, (title, img) in zip(axes[0], panels):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{layer}, channel {channel} at {tuple(info['position'])} "
                 f"(activation {info['value']:.3g}) projected to pixels", fontsize=9)
    return _save(fig, out), info


def save_grad_cam(model: nn.Module, x: torch.Tensor, out: str | os.PathLike,
                  image: np.ndarray, target: int | None = None, layer: str | None = None,
                  class_names: Sequence[str] | None = None, *, overwrite: bool = False) -> tuple[Path, dict]:
    check_output(out, overwrite=overwrite)  # cnnzoo.outputs: before the work
    plt = _plt()
    cam, info = grad_cam(model, x, target, layer)
    name = class_names[info["target"]] if class_names else str(info["target"])
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4))
    for ax in axes:
        ax.axis("off")
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    axes[0].set_title("input", fontsize=9)
    axes[1].imshow(cam.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
    axes[1].set_title(f"Grad-CAM: {name} (p={info['prob']:.2f})", fontsize=9)
    fig.suptitle(f"layer: {info['layer']}", fontsize=8)
    info["class"] = name
    return _save(fig, out), info
