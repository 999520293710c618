"""Fetch the official MNIST files, verified by SHA-256. Runs only when called explicitly:

    python -m cnnzoo.data.download mnist DIR [--mirror URL]

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
import urllib.request
from pathlib import Path

from ..files import atomic_write_bytes
from ..errors import CnnzooError

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/")
MNIST_SHA256 = {  # of the decompressed files
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


class DownloadError(CnnzooError):
    pass


def download_mnist(root: str | Path, mirror: str | None = None, timeout: float = 60) -> Path:
    """Download the four MNIST .gz files into `root`, verify each, write each atomically.
    Files already present and verified are kept."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    mirrors = (mirror,) if mirror else MNIST_MIRRORS
    for name, sha in MNIST_SHA256.items():
        dest = root / f"{name}.gz"
        if dest.is_file() and _sha_of_gz(dest.read_bytes()) == sha:
            continue
        errors = []
        for base in mirrors:
            url = base.rstrip("/") + f"/{name}.gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    data = r.read()
            except Exception as err:  # URLError, timeouts, HTTP errors
                errors.append(f"{url}: {err}")
                continue
            got = _sha_of_gz(data)
            if got != sha:
                errors.append(f"{url}: SHA-256 of its content is {got}, expected {sha}")
                continue
            atomic_write_bytes(dest, data)
            break
        else:
            raise DownloadError(f"could not fetch a verified {name}.gz: " + "; ".join(errors))
    return root


def _sha_of_gz(data: bytes) -> str:
    try:
        data = gzip.decompress(data)
    except (OSError, EOFError):
        return "not-gzip"
    return hashlib.sha256(data).hexdigest()


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "mnist":
        sys.exit("usage: python -m cnnzoo.data.download mnist DIR [--mirror URL]")
    mirror = args[args.index("--mirror") + 1] if "--mirror" in args else None
    print(download_mnist(args[1], mirror))
