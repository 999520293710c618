"""The fast image-folder path, per image: crop geometry, JPEG decoding, crop-and-resize on uint8.

An image's crop is a box in the original image's pixels (top, left, height, width) drawn from
its own seed, so the same seed gives the same crop whichever process, worker count or device
decodes it: that is what makes a resumed run repeat its batches exactly. The box is then cut out
and resampled to the model's size as uint8 (bilinear, antialiased), which is cheaper than
resampling the whole image first and is what torchvision's RandomResizedCrop does too.

JPEG files whose header says 3-channel colour (the bulk of any photo folder) are decoded by
torchvision.io.decode_jpeg (libjpeg-turbo on the CPU, nvJPEG on CUDA); every other file, and any
file the fast decoder refuses, goes through data/images.load_image, the PIL path, which applies
the pixel cap and turns an unreadable file into an ImageError exactly as the PIL loader does.
"""

from __future__ import annotations

import io
import math
import random
import warnings
from pathlib import Path
from typing import Sequence

import torch

from .images import MAX_PIXELS, ImageError, exif_orientation, load_image

Box = tuple[int, int, int, int]  # top, left, height, width


def scaled_box(h: int, w: int, size: tuple[int, int], scale: float, rng: random.Random | None) -> Box:
    """A `size` box scaled by `scale` (clamped to the image): centred (rng None) or at a random place."""
    bh, bw = min(h, max(1, round(size[0] * scale))), min(w, max(1, round(size[1] * scale)))
    if rng is None:
        return (h - bh) // 2, (w - bw) // 2, bh, bw
    return rng.randint(0, h - bh), rng.randint(0, w - bw), bh, bw


def rrc_box(h: int, w: int, rng: random.Random, scale: tuple[float, float] = (0.08, 1.0),
            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Box:
    """torchvision's RandomResizedCrop.get_params, drawn from `rng`: area fraction ~ U[scale],
    log aspect ~ U[log ratio], 10 tries, then a centre crop clamped to the ratio range."""
    area = h * w
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(*scale)
        r = math.exp(rng.uniform(lo, hi))
        bw, bh = round(math.sqrt(target * r)), round(math.sqrt(target / r))
        if 0 < bw <= w and 0 < bh <= h:
            return rng.randint(0, h - bh), rng.randint(0, w - bw), bh, bw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        bw, bh = w, round(w / ratio[0])
    elif in_ratio > ratio[1]:
        bh, bw = h, round(h * ratio[1])
    else:
        bw, bh = w, h
    return (h - bh) // 2, (w - bw) // 2, bh, bw


def crop_resize(x: torch.Tensor, box: Box, size: Sequence[int]) -> torch.Tensor:
    """Cut `box` out of a (C, H, W) uint8 image and resample it to `size` (bilinear, antialiased)."""
    from torchvision.transforms.v2 import functional as TF

    t, l, bh, bw = box
    return TF.resize(x[:, t:t + bh, l:l + bw], list(size), antialias=True)


_QUIET = False


def quiet_decoders() -> None:
    """torchvision 0.29 warns on every decode_jpeg call that its decoders move to TorchCodec
    (once per process: adding a filter clears the warnings caches)."""
    global _QUIET
    if not _QUIET:
        warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision")
        _QUIET = True


class Encoded:
    """A file read for the fast path: a colour JPEG's bytes and size (`data`, `hw`), or, for any
    other file, its pixels decoded by PIL (`pixels`, uint8 (3, H, W))."""

    def __init__(self, data: torch.Tensor | None, hw: tuple[int, int], pixels: torch.Tensor | None) -> None:
        self.data, self.hw, self.pixels = data, hw, pixels


def read_encoded(path: str | Path, max_pixels: int | None = None) -> Encoded:
    """Read one file: a colour JPEG stays encoded; anything else is decoded by PIL now.
    Raises ImageError for an unreadable file or one over the pixel cap."""
    from PIL import Image

    cap = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise ImageError(f"{path}: cannot read ({err})") from None
    if raw[:3] == b"\xff\xd8\xff":
        try:
            with Image.open(io.BytesIO(raw)) as im:  # the header only
                mode, (w, h), turned = im.mode, im.size, exif_orientation(im) != 1
        except Exception:
            mode, w, h, turned = "?", 0, 0, False
        if mode == "RGB" and 0 < w * h <= cap and not turned:  # EXIF-rotated: PIL turns it upright
            return Encoded(torch.frombuffer(bytearray(raw), dtype=torch.uint8), (h, w), None)
    return Encoded(None, (0, 0), pil_pixels(path, max_pixels))


def pil_pixels(path: str | Path, max_pixels: int | None = None) -> torch.Tensor:
    """The PIL fallback: any format or mode, as uint8 RGB (3, H, W); ImageError if unreadable."""
    import numpy as np

    img = load_image(path, max_pixels).convert("RGB")
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


def decode_cpu(enc: Encoded, path: str | Path) -> torch.Tensor:
    """uint8 (3, H, W) pixels of a read file; a JPEG libjpeg-turbo refuses goes to PIL."""
    if enc.pixels is not None:
        return enc.pixels
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        x = decode_jpeg(enc.data, mode=ImageReadMode.UNCHANGED)
    except RuntimeError:
        return pil_pixels(path)  # truncated or odd: PIL decides, and names the file if it fails too
    return x if x.shape[0] == 3 and tuple(x.shape[1:]) == enc.hw else pil_pixels(path)


def decode_cuda(encs: list[Encoded], device: torch.device) -> list[torch.Tensor | None]:
    """nvJPEG decoding of a batch's JPEGs in one call: uint8 (3, H, W) tensors on `device`, None
    for the files it refuses (the caller decodes those with decode_cpu, which may still refuse them)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    if not encs:
        return []
    try:
        dec = decode_jpeg([e.data for e in encs], mode=ImageReadMode.UNCHANGED, device=device)
    except RuntimeError:  # one bad file fails the batched call: try them one by one
        dec = []
        for e in encs:
            try:
                dec.append(decode_jpeg(e.data, mode=ImageReadMode.UNCHANGED, device=device))
            except RuntimeError:
                dec.append(None)
    return [x if x is not None and x.shape[0] == 3 and tuple(x.shape[1:]) == e.hw else None
            for x, e in zip(dec, encs)]
