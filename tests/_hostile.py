"""Hostile files shared by the tests: pickles that would run code when loaded, and images whose
header claims billions of pixels (decompression bombs)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import Callable


class Reduce:
    """Pickles as the call `fn(*args)`: unpickling it runs `fn` unless the loader refuses."""

    def __init__(self, fn: Callable, args: tuple) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Callable, tuple]:
        return (self.fn, self.args)


class Evil(Reduce):
    """Pickles as `os.system("touch MARKER")`: MARKER existing afterwards means the code ran."""

    def __init__(self, marker: str | Path) -> None:
        super().__init__(os.system, (f"touch {marker}",))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height: what a decompression bomb looks like before
    it is decoded (ours is tiny on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def bomb_bytes() -> bytes:
    """A small PNG whose header claims 10,000 x 10,000 pixels (a decompression bomb)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buf, format="PNG")
    return buf.getvalue()
