"""Decoding image files safely: one pixel cap, any PIL mode flattened to RGB or L, turned
upright as the file's EXIF orientation says (phone photos are stored sideways and tagged).

Unreadable files and images larger than the cap (decompression bombs) are refused with an
ImageError before their pixels are decoded: the cap is checked against the header's size.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CnnzooError

if TYPE_CHECKING:
    from PIL.Image import Image

# 40 megapixels: far above any photo a CNN would classify, far below what exhausts memory
# (a 40 MP RGB image decodes to 120 MB). Override with CNNZOO_MAX_PIXELS.
MAX_PIXELS = int(os.environ.get("CNNZOO_MAX_PIXELS", 40_000_000))


class ImageError(CnnzooError, ValueError):
    """An image file that cannot or must not be decoded."""


def load_image(path: str | os.PathLike, max_pixels: int | None = None) -> Image:
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
    return to_rgb_or_l(upright(img))


ORIENTATION = 0x0112  # the EXIF tag a camera or phone sets instead of rotating the pixels


def exif_orientation(img: Image) -> int:
    """The EXIF orientation of an opened image (1: upright, 2-8: flipped and/or rotated);
    1 for none or an unreadable EXIF block."""
    try:
        value = img.getexif().get(ORIENTATION, 1)
    except Exception:  # a malformed EXIF block: the pixels as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(img: Image) -> Image:
    """The image as its EXIF orientation says it is seen (a phone photo tagged Orientation=6
    is stored sideways): PIL.ImageOps.exif_transpose, only where a tag asks for it."""
    from PIL import ImageOps

    if exif_orientation(img) == 1:
        return img
    return ImageOps.exif_transpose(img)


def to_rgb_or_l(img: Image) -> Image:
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
