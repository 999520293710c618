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

from .errors import CnnzooError, InvalidArgumentError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
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


def preprocess_image(img, pp: dict[str, Any]) -> torch.Tensor:
    """PIL image -> normalised (C, H, W) float tensor, following the recorded preprocessing."""
    from PIL import Image

    c, h, w = pp["input_size"]
    img = img.convert("L") if (c == 1 or pp.get("grayscale")) else img.convert("RGB")
    if pp.get("resize"):  # shorter side to `resize`, then a centre crop
        s = int(pp["resize"])
        iw, ih = img.size
        scale = s / min(iw, ih)
        img = img.resize((max(w, round(iw * scale)), max(h, round(ih * scale))),
                         Image.BILINEAR)
        iw, ih = img.size
        left, top = (iw - w) // 2, (ih - h) // 2
        img = img.crop((left, top, left + w, top + h))
    else:
        img = img.resize((w, h), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()) / 255.0
    x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
    if x.shape[0] != c:  # a grayscale image fed to a 3-channel model
        x = x.expand(c, -1, -1) if x.shape[0] == 1 else x.mean(0, keepdim=True).expand(c, -1, -1)
    mean = torch.tensor(pp["mean"], dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(pp["std"], dtype=torch.float32).view(-1, 1, 1)
    return (x - mean) / std


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
    from .checkpoint import load_model

    path = Path(checkpoint)
    if path.exists() or path.suffix in (".safetensors", ".pth", ".pt"):
        model, record = load_model(path)
    else:
        from .registry import create_model

        model = create_model(str(checkpoint))
        record = {"model": str(checkpoint), "untrained": True}
    return model.eval(), record
