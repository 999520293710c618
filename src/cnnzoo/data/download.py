"""The first MNIST downloader, kept working: `download_mnist` and

    python -m cnnzoo.data.download mnist [DIR] [--mirror URL]

are now `cnnzoo data fetch mnist [--dir DIR]` (data/fetch.py): the same four files, checked
against the publisher's MD5 (from torchvision) or, for a mirror that re-compressed them, the
SHA-256 of their content (MNIST_SHA256), through the one download core. Nothing in cnnzoo calls
this on import, in training or in tests other than against a local file:// mirror.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..cache import CacheError
from ..cache.download import DownloadError, Progress, stderr_progress
from .fetch import MNIST_SHA256, fetch

__all__ = ["MNIST_SHA256", "DownloadError", "download_mnist"]


def download_mnist(root: str | Path | None = None, mirror: str | None = None,
                   timeout: float = 60, progress: Progress | None = None) -> Path:
    """Download the four MNIST .gz files into `root` (default: the cache's datasets/mnist),
    verify each, write each atomically. Files already present and verified are kept."""
    return fetch("mnist", folder=root, mirror=mirror, progress=progress, timeout=timeout,
                 content_sha256=MNIST_SHA256)


if __name__ == "__main__":
    args = sys.argv[1:]
    mirror = args[args.index("--mirror") + 1] if "--mirror" in args[:-1] else None
    rest = [a for a in args if a not in ("--mirror", mirror)]
    if not rest or rest[0] != "mnist" or len(rest) > 2:
        sys.exit("usage: python -m cnnzoo.data.download mnist [DIR] [--mirror URL]\n"
                 "(now also: cnnzoo data fetch NAME [--dir DIR], for every data set: "
                 "cnnzoo data fetch --help)")
    print("note: this is now `cnnzoo data fetch mnist"
          + (f" --dir {rest[1]}" if len(rest) > 1 else "") + "`", file=sys.stderr)
    try:
        print(download_mnist(rest[1] if len(rest) > 1 else None, mirror, progress=stderr_progress()))
    except CacheError as err:  # a download that failed, or a folder that cannot be made
        print(err, file=sys.stderr)
        sys.exit(err.exit_code)
