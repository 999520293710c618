"""Occlusion sensitivity (Zeiler & Fergus 2014, section 4.2 and Fig. 7).

A grey square slides over the image; at each position the network classifies the occluded
image. Two maps come out: the probability of the correct class (it drops where the square
hides what the network relies on) and the most probable class (what the network sees instead).
"Grey" is the normalisation mean, i.e. 0 in the model's input space.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..contract import logits_of
from ..errors import InvalidArgumentError
from ..outputs import check_output


def default_window(h: int, w: int) -> tuple[int, int]:
    """(size, stride): a square of a fifth of the shorter side, moved a third of its size
    (MNIST 32 x 32: 6 px every 2 px, 14 x 14 positions; 224 x 224: 45 px every 15, 13 x 13)."""
    size = max(3, round(min(h, w) / 5))
    return size, max(1, round(size / 3))


def _starts(n: int, size: int, stride: int) -> list[int]:
    """Top-left offsets along one side; the last square touches the far border."""
    starts = list(range(0, n - size + 1, stride))
    if starts[-1] != n - size:
        starts.append(n - size)
    return starts


@torch.no_grad()
def occlusion_maps(model: nn.Module, x: torch.Tensor, size: int | None = None,
                   stride: int | None = None, target: int | None = None, fill: float = 0.0,
                   batch_size: int = 64,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Slide a `size` x `size` square of value `fill` over `x` (1, C, H, W), `stride` apart.

    Returns the target class (default: the unoccluded top prediction), its probability without
    the square, the square's offsets and, per position, the target's probability ("prob") and
    the most probable class ("top_class") with its probability ("top_prob")."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise InvalidArgumentError(f"occlusion takes one image (1, C, H, W), got {tuple(x.shape)}")
    _, _, h, w = x.shape
    d_size, d_stride = default_window(h, w)
    size = d_size if size is None else size
    stride = d_stride if stride is None else stride
    if not 1 <= size <= min(h, w) or stride < 1:
        raise InvalidArgumentError(f"occluder size must be 1..{min(h, w)} and stride >= 1 "
                                   f"(the input is {h} x {w}); got size {size}, stride {stride}")
    model.eval()
    device = next(model.parameters()).device
    x = x.to(device)
    base = logits_of(model(x)).float().softmax(1)[0]
    n_cls = base.numel()
    target = int(base.argmax()) if target is None else target
    if not 0 <= target < n_cls:
        raise InvalidArgumentError(f"target class {target} not in 0..{n_cls - 1}")
    if batch_size < 1:
        raise InvalidArgumentError(f"batch size must be >= 1, got {batch_size}")
    ys, xs = _starts(h, size, stride), _starts(w, size, stride)
    spots = [(i, j) for i in ys for j in xs]
    probs = torch.empty(len(spots))
    tops, top_p = torch.empty(len(spots), dtype=torch.long), torch.empty(len(spots))
    for k in range(0, len(spots), batch_size):
        chunk = spots[k:k + batch_size]
        batch = x.repeat(len(chunk), 1, 1, 1)
        for b, (i, j) in enumerate(chunk):
            batch[b, :, i:i + size, j:j + size] = fill
        p = logits_of(model(batch)).float().softmax(1).cpu()
        probs[k:k + len(chunk)] = p[:, target]
        top_p[k:k + len(chunk)], tops[k:k + len(chunk)] = p.max(1)
        if progress:
            progress(min(k + batch_size, len(spots)), len(spots))
    shape = (len(ys), len(xs))
    return {"target": target, "unoccluded_prob": float(base[target]),
            "unoccluded_top": int(base.argmax()), "size": size, "stride": stride,
            "rows": ys, "cols": xs, "input_size": [h, w],
            "prob": probs.view(shape).numpy(), "top_class": tops.view(shape).numpy(),
            "top_prob": top_p.view(shape).numpy()}


def as_json(result: dict[str, Any], classes: Sequence[str]) -> dict[str, Any]:
    """The maps as plain lists, with class names."""
    out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}
    out["target_name"] = classes[result["target"]]
    out["prob"] = [[round(float(p), 6) for p in row] for row in result["prob"]]
    out["top_prob"] = [[round(float(p), 6) for p in row] for row in result["top_prob"]]
    out["min_prob"] = float(result["prob"].min())
    i, j = np.unravel_index(int(result["prob"].argmin()), result["prob"].shape)
    out["most_sensitive_square"] = {"row": result["rows"][i], "col": result["cols"][j]}
    return out


def save_occlusion(result: dict[str, Any], image: np.ndarray, out: str | os.PathLike,
                   classes: Sequence[str], *, overwrite: bool = False) -> Path:
    """Image (with one square drawn), the target's probability map and the most probable class
    map, side by side, each map with a labelled colorbar."""
    check_output(out, overwrite=overwrite)  # cnnzoo.outputs: before the work
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Rectangle

    from .visualize import _plt, _save

    plt = _plt()
    h, w = result["input_size"]
    s, half = result["size"], result["size"] / 2
    # each map value belongs to the square's centre; pixels between centres share the nearest
    extent = (result["cols"][0] + half - 0.5, result["cols"][-1] + half - 0.5,
              result["rows"][-1] + half - 0.5, result["rows"][0] + half - 0.5)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    axes[0].imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    axes[0].add_patch(Rectangle((-0.5, -0.5), s, s, facecolor="0.5", edgecolor="red"))
    name = classes[result["target"]]
    axes[0].set_title(f"input ({h}x{w}); occluder {s}x{s}, stride {result['stride']}\n"
                      f"p({name}) unoccluded = {result['unoccluded_prob']:.3f}", fontsize=9)
    im = axes[1].imshow(result["prob"], extent=extent, cmap="jet", vmin=0, vmax=1,
                        interpolation="nearest")
    axes[1].set_title(f"(c) probability of the correct class '{name}'\n"
                      "at each square position (centre)", fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04).set_label(f"p({name})")
    top = result["top_class"]
    shown = sorted({int(c) for c in np.unique(top)})
    codes = np.searchsorted(shown, top)
    pal = "tab10" if len(shown) <= 10 else "tab20"  # tab10: the most distinct colours
    cmap = ListedColormap(plt.get_cmap(pal)(np.arange(len(shown)) % 20))
    norm = BoundaryNorm(np.arange(len(shown) + 1) - 0.5, len(shown))
    im2 = axes[2].imshow(codes, extent=extent, cmap=cmap, norm=norm, interpolation="nearest")
    axes[2].set_title("(d) most probable class\nat each square position", fontsize=9)
    bar = fig.colorbar(im2, ax=axes[2], fraction=0.046, pad=0.04, ticks=range(len(shown)))
    bar.ax.set_yticklabels([classes[c][:24] for c in shown], fontsize=8)
    bar.set_label("most probable class")
    for ax in axes:
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_xticks([]), ax.set_yticks([])
    return _save(fig, out)
