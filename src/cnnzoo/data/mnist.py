"""MNIST's IDX files (LeCun's format), gzip-compressed or not.

IDX: a big-endian header (two zero bytes, a type code, the number of dimensions, then one
uint32 per dimension) followed by the raw array. MNIST uses type 0x08 (unsigned byte).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import InvalidArgumentError
from ..files import atomic_write_bytes

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# The split's two files, as published and as some mirrors rename them.
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into a numpy array, checking its header and size.

    The header's dimensions are checked against the bytes actually present before any array
    is made, and a gzip file is decompressed only as far as the header says (no gzip bomb)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = _read_upto(f, 4 + 4 * 255)
            expected = _payload_size(path, head)
            header = 4 + 4 * head[3]
            if opener is open and os.fstat(f.fileno()).st_size - header != expected:
                _size_error(path, head, expected, os.fstat(f.fileno()).st_size - header)
            data = head + _read_upto(f, header + expected + 1 - len(head))
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile, CRC and zlib errors on junk
        raise InvalidArgumentError(f"{path}: cannot read IDX file, the file is corrupt ({err})") \
            from None
    if len(data) - header != expected:
        _size_error(path, head, expected, len(data) - header)
    return np.frombuffer(data, dtype=np.dtype(_TYPES[head[2]]), offset=header).reshape(
        struct.unpack(f">{head[3]}I", head[4:header]))


def _size_error(path: Path, head: bytes, expected: int, held: int) -> None:
    shape = struct.unpack(f">{head[3]}I", head[4:4 + 4 * head[3]])
    holds = f"more than {expected:,}" if held > expected else f"{max(held, 0):,}"
    raise InvalidArgumentError(
        f"{path}: header says {shape} ({expected:,} bytes of data) but the file holds "
        f"{holds} bytes; the file is truncated or not IDX")


def _payload_size(path: Path, head: bytes) -> int:
    """Bytes of data the header declares (exact: Python integers cannot overflow)."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _TYPES:
        raise InvalidArgumentError(
            f"{path} is not an IDX file (its header should start with 00 00 <type> <ndim>)")
    header = 4 + 4 * head[3]
    if len(head) < header:
        raise InvalidArgumentError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{head[3]}I", head[4:header])
    return math.prod(shape) * np.dtype(_TYPES[head[2]]).itemsize


def _read_upto(f: BinaryIO, n: int) -> bytes:
    """At most n bytes, read in chunks: memory follows what the file holds, not what it claims."""
    parts, left = [], n
    while left > 0:
        chunk = f.read(min(left, 1 << 24))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _find(root: Path, stem: str, dataset: str = "MNIST") -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    raise InvalidArgumentError(
        f"{dataset} file {stem}[.gz] not found in {root}; a {dataset} folder holds "
        + ", ".join(s + "[.gz]" for pair in SPLITS.values() for s in pair))


def load_mnist(root: str | Path, split: str, name: str = "MNIST") -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 N x 28 x 28, labels int64 N) of the 'train' or 'test' split.

    Fashion-MNIST shares the files' names and format; `name` only changes the messages."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidArgumentError(f"{name} folder {root} does not exist")
    img_stem, lbl_stem = SPLITS[split]
    images = read_idx(_find(root, img_stem, name))
    labels = read_idx(_find(root, lbl_stem, name))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise InvalidArgumentError(
            f"{root}: {name} {split} images {images.shape} and labels {labels.shape} do not match "
            "(expected N x H x W images and N labels)")
    if images.dtype != np.uint8 or labels.dtype.kind not in "iu":
        raise InvalidArgumentError(
            f"{root}: {name} {split} images must be unsigned bytes and labels integers (IDX types "
            f"0x08-0x0C); found {images.dtype} images and {labels.dtype} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise InvalidArgumentError(f"{root}: {name} labels must be 0-9, found {bad}")
    return images, labels.astype(np.int64)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as (gzip-)IDX, byte-for-byte reproducible (gzip mtime 0)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=9, mtime=0)
    atomic_write_bytes(path, payload)
