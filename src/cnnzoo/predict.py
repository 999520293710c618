"""Classifying image files with a model file: the preprocessing it was trained with, top-k.

The model file's record carries the preprocessing (`"preprocess": {"input_size": [C, H, W],
"resize": int | None, "mean": [...], "std": [...], "grayscale": bool}`) and the class names
(`"classes"`); where absent we fall back to the model's native input size and ImageNet
statistics. Images of any size and mode are accepted (grayscale, RGBA and palette images are
flattened onto white, 16-bit images rescaled); unreadable files and images larger than a pixel
cap (decompression bombs) are refused with a CnnzooError before they are decoded.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .data.preprocess import IMAGENET_MEAN, IMAGENET_STD
from .errors import CnnzooError, InvalidArgumentError

# 40 megapixels: far above any photo a CNN would classify, far below what exhausts memory
# (a 40 MP RGB image decodes to 120 MB). Override with CNNZOO_MAX_PIXELS.
MAX_PIXELS = int(os.environ.get("CNNZOO_MAX_PIXELS", 40_000_000))


class ImageError(CnnzooError, ValueError):
    """An image file that cannot or must not be decoded."""


def default_preprocess(model: nn.Module) -> dict[str, Any]:
    """Preprocessing for a model without a recorded one: native size, ImageNet statistics."""
    c = int(getattr(model, "in_chans", 3))
    h = w = 224
    name = getattr(model, "model_name", None)
    if name:
        from .registry import get_entry

        try:
            _, h, w = get_entry(name).input_size
        except CnnzooError:
            pass
    mean, std = (list(IMAGENET_MEAN), list(IMAGENET_STD)) if c == 3 else (
        [sum(IMAGENET_MEAN) / 3] * c, [sum(IMAGENET_STD) / 3] * c)
    # ImageNet convention: shorter side to 256 then a 224 centre crop (scaled for other sizes)
    resize = round(h * 256 / 224) if h >= 64 else None
    return {"input_size": [c, h, w], "resize": resize, "mean": mean, "std": std,
            "grayscale": c == 1}


def get_preprocess(record: dict[str, Any] | None, model: nn.Module) -> dict[str, Any]:
    pp = default_preprocess(model)
    stored = (record or {}).get("preprocess") or {}
    pp.update({k: v for k, v in stored.items() if v is not None or k == "resize"})
    c = pp["input_size"][0]
    if len(pp["mean"]) != c or len(pp["std"]) != c:
        raise InvalidArgumentError(
            f"preprocess mean/std have {len(pp['mean'])}/{len(pp['std'])} values for {c} channels")
    return pp


def load_image(path: str | os.PathLike, max_pixels: int | None = None):
    """Open and decode an image safely; returns a PIL image in mode RGB or L."""
    from PIL import Image, UnidentifiedImageError

    cap = MAX_PIXELS if max_pixels is None else max_pixels
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"no such image file: {path}")
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; make it an error
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)  # reads the header only
            w, h = img.size
            if w * h > cap:
                raise ImageError(
                    f"{path}: {w}x{h} = {w * h:,} pixels exceeds the limit of {cap:,} "
                    "(a decompression bomb or an image far too large to classify); "
                    "downscale it first or raise CNNZOO_MAX_PIXELS")
            img.load()  # decodes: truncated or corrupt data fails here
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{path}: refused as a decompression bomb ({err})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file PIL can read (corrupt or unknown format)") \
            from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: corrupt or truncated image ({err})") from None
    return to_rgb_or_l(img)


def to_rgb_or_l(img):
    """Any PIL mode -> 'RGB' or 'L'. Transparent pixels become white (like a page)."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        return Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    if img.mode in ("L", "RGB"):
        return img
    if img.mode == "1":
        return img.convert("L")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def fit_to_input(x: torch.Tensor, pp: dict[str, Any]) -> torch.Tensor:
    """(N, C, h, w) floats in [0, 1] -> (N, C, H, W) at the model's input size, as the trainer
    does it (cnnzoo.data.preprocess): with `resize`, the shorter side is resized to it and an
    H x W centre crop taken, zero-padded where the crop is larger than the image (MNIST's
    28x28 in LeNet-5's 32x32 field); without, the image is resized to H x W."""
    import torch.nn.functional as F

    _, h, w = pp["input_size"]
    ih, iw = x.shape[-2:]
    if not pp.get("resize"):
        if (ih, iw) != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        return x
    s = int(pp["resize"])
    scale = s / min(ih, iw)
    size = (max(1, round(ih * scale)), max(1, round(iw * scale)))
    if size != (ih, iw):
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    ih, iw = size
    top, left = (ih - h) // 2, (iw - w) // 2
    if top < 0 or left < 0:  # crop larger than the image: zero padding around it
        pt, pl = max(0, -top), max(0, -left)
        x = F.pad(x, (pl, max(0, w - iw - pl), pt, max(0, h - ih - pt)))
        top, left = max(0, top), max(0, left)
    return x[..., top:top + h, left:left + w]


def normalize(x: torch.Tensor, pp: dict[str, Any]) -> torch.Tensor:
    mean = torch.tensor(pp["mean"], dtype=x.dtype).view(-1, 1, 1)
    std = torch.tensor(pp["std"], dtype=x.dtype).view(-1, 1, 1)
    return (x - mean) / std


def match_channels(x: torch.Tensor, c: int) -> torch.Tensor:
    """(..., C', H, W) -> (..., c, H, W): gray repeated for RGB models, RGB averaged for gray."""
    if x.shape[-3] == c:
        return x
    if x.shape[-3] == 1:
        return x.expand(*x.shape[:-3], c, *x.shape[-2:])
    return x.mean(-3, keepdim=True).expand(*x.shape[:-3], c, *x.shape[-2:])


def preprocess_image(img, pp: dict[str, Any]) -> torch.Tensor:
    """PIL image -> normalised (C, H, W) float tensor, following the recorded preprocessing."""
    c = pp["input_size"][0]
    img = img.convert("L") if (c == 1 or pp.get("grayscale")) else img.convert("RGB")
    x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()) / 255.0
    x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
    x = fit_to_input(match_channels(x, c)[None], pp)[0]
    return normalize(x, pp)


def class_names(record: dict[str, Any] | None, num_classes: int) -> list[str]:
    names = (record or {}).get("classes")
    if names and len(names) == num_classes:
        return [str(n) for n in names]
    return [str(i) for i in range(num_classes)]


@torch.no_grad()
def predict(model: nn.Module, images: Sequence[str | os.PathLike], record: dict | None = None,
            topk: int = 5, batch_size: int = 16) -> list[dict[str, Any]]:
    """Top-k classes with probabilities for each image file."""
    if topk < 1:
        raise InvalidArgumentError(f"topk must be >= 1, got {topk}")
    pp = get_preprocess(record, model)
    tensors = [preprocess_image(load_image(p), pp) for p in images]  # fail before any work
    model.eval()
    device = next(model.parameters()).device
    results: list[dict[str, Any]] = []
    for i in range(0, len(tensors), batch_size):
        logits = model(torch.stack(tensors[i:i + batch_size]).to(device))
        probs = logits.float().softmax(1).cpu()
        names = class_names(record, probs.shape[1])
        p, idx = probs.topk(min(topk, probs.shape[1]), dim=1)
        for j in range(probs.shape[0]):
            results.append({
                "image": str(images[i + j]),
                "top": [{"class": names[int(k)], "index": int(k), "prob": float(q)}
                        for q, k in zip(p[j], idx[j])],
            })
    return results


def load_for_inference(checkpoint: str | os.PathLike):
    """(model, record) from a model file; a registered model name gives a randomly
    initialised model (useful for visualisation and smoke tests), said so in the record."""
    from .registry import load_model

    path = Path(checkpoint)
    if path.exists() or path.suffix in (".safetensors", ".pth", ".pt"):
        model, record = load_model(path)
    else:
        from .errors import CheckpointError
        from .registry import create_model, list_models

        if str(checkpoint) not in list_models():
            raise CheckpointError(f"{checkpoint}: no such model file, and not a model name "
                                  "(`cnnzoo list` shows the names)")
        model = create_model(str(checkpoint))
        record = {"model": str(checkpoint), "untrained": True}
    return model.eval(), record
