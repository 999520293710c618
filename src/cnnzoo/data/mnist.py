"""MNIST's IDX files (LeCun's format), gzip-compressed or not.

IDX: a big-endian header (two zero bytes, a type code, the number of dimensions, then one
uint32 per dimension) followed by the raw array. MNIST uses type 0x08 (unsigned byte).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from ..errors import InvalidArgumentError

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# The split's two files, as published and as some mirrors rename them.
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into a numpy array, checking its header and size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:  # gzip raises BadGzipFile (an OSError) on junk
        raise InvalidArgumentError(f"{path}: cannot read IDX file ({err})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise InvalidArgumentError(
            f"{path} is not an IDX file (its header should start with 00 00 <type> <ndim>)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InvalidArgumentError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_TYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise InvalidArgumentError(
            f"{path}: header says {shape} ({expected} bytes of data) but the file holds "
            f"{len(data) - header} bytes; the file is truncated or not IDX")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    raise InvalidArgumentError(
        f"MNIST file {stem}[.gz] not found in {root}; an MNIST folder holds "
        + ", ".join(s + "[.gz]" for pair in SPLITS.values() for s in pair))


def load_mnist(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 N x 28 x 28, labels int64 N) of the 'train' or 'test' split."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidArgumentError(f"MNIST folder {root} does not exist")
    img_stem, lbl_stem = SPLITS[split]
    images = read_idx(_find(root, img_stem))
    labels = read_idx(_find(root, lbl_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise InvalidArgumentError(
            f"{root}: MNIST {split} images {images.shape} and labels {labels.shape} do not match "
            "(expected N x H x W images and N labels)")
    if labels.size and labels.max() > 9:
        raise InvalidArgumentError(f"{root}: MNIST labels must be 0-9, found {labels.max()}")
    return images, labels.astype(np.int64)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as (gzip-)IDX, byte-for-byte reproducible (gzip mtime 0)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=9, mtime=0)
    path.write_bytes(payload)
