"""Atomic file writes: a crash leaves either the old file or the new one, never half of one.

The ground floor: every other module that writes a file goes through here.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success fsyncs it and renames it over `path`.

    The final file gets the mode a plain open() would give it: an existing file's mode is kept,
    a new one gets 0666 & ~umask (mkstemp's temporary is 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _final_mode(path))
        replace_durably(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def replace_durably(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Rename a complete file written beside `dest` (a temporary, a download's `.part`) over
    `dest`, with its bytes and the rename on disk first: after a crash `dest` is old or new."""
    with open(src, "rb+") as f:
        f.flush()
        os.fsync(f.fileno())
    os.replace(src, dest)
    try:  # make the rename itself durable
        dfd = os.open(Path(dest).parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _final_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux >= 4.7 reports it without changing it (os.umask would, briefly, for all threads)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
