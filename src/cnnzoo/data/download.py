"""Fetch the official MNIST files, verified by SHA-256. Runs only when called explicitly:

    python -m cnnzoo.data.download mnist [DIR] [--mirror URL]

DIR defaults to the cache's `datasets/mnist` (`cnnzoo.cache`); the transfer is the download
core's (`cnnzoo.cache.download`: resumable, locked, atomic, the next mirror on failure).
Nothing in cnnzoo calls this on import, in training or in tests (the tests point `mirror` at a
local file:// folder). The hashes are of the decompressed IDX bytes, so any mirror's gzip
(different compression, same data) verifies; they were computed from the original files
(whose MD5s are the published ones: 6bbc9ace..., a25bea73..., 2646ac64..., 27ae3e4e...).
CIFAR is not offered: no SHA-256 of its archives could be verified here.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

from ..cache import CacheError, cache_dir, make_dir
from ..cache.download import Check, DownloadError, Progress, download, stderr_progress

__all__ = ["MNIST_MIRRORS", "MNIST_SHA256", "DownloadError", "download_mnist"]

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/")
MNIST_SHA256 = {  # of the decompressed files
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def download_mnist(root: str | Path | None = None, mirror: str | None = None,
                   timeout: float = 60, progress: Progress | None = None) -> Path:
    """Download the four MNIST .gz files into `root` (default: the cache's datasets/mnist),
    verify each, write each atomically. Files already present and verified are kept."""
    root = Path(root) if root is not None else cache_dir("datasets") / "mnist"
    make_dir(root, "the MNIST folder")
    mirrors = (mirror,) if mirror else MNIST_MIRRORS
    for name, sha in MNIST_SHA256.items():
        dest = root / f"{name}.gz"
        check = _content_check(sha)
        if dest.is_file() and check(dest) is None:
            continue
        download([base.rstrip("/") + f"/{name}.gz" for base in mirrors], dest, check=check,
                 progress=progress, timeout=timeout)
    return root


def _content_check(sha: str) -> Check:
    def check(path: Path) -> str | None:
        got = _sha_of_gz(path.read_bytes())
        return None if got == sha else f"SHA-256 of its content is {got}, expected {sha}"

    return check


def _sha_of_gz(data: bytes) -> str:
    try:
        data = gzip.decompress(data)
    except (OSError, EOFError):
        return "not-gzip"
    return hashlib.sha256(data).hexdigest()


if __name__ == "__main__":
    args = sys.argv[1:]
    mirror = args[args.index("--mirror") + 1] if "--mirror" in args[:-1] else None
    rest = [a for a in args if a not in ("--mirror", mirror)]
    if not rest or rest[0] != "mnist" or len(rest) > 2:
        sys.exit("usage: python -m cnnzoo.data.download mnist [DIR] [--mirror URL]")
    try:
        print(download_mnist(rest[1] if len(rest) > 1 else None, mirror, progress=stderr_progress()))
    except CacheError as err:  # a download that failed, or a folder that cannot be made
        print(err, file=sys.stderr)
        sys.exit(err.exit_code)
