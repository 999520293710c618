"""Small dataset files in the official layouts, for the data tests."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import numpy as np


def write_cifar_batch(path: str | Path, images: np.ndarray, labels: Sequence[int] | np.ndarray,
                      classes: int = 10) -> None:
    """Write a batch in the official CIFAR layout (a protocol-2 pickle of a dict), to make small
    CIFAR-like sets."""
    key = b"labels" if classes == 10 else b"fine_labels"
    obj = {b"batch_label": b"cnnzoo", key: [int(v) for v in labels],
           b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1),
           b"filenames": [f"{i}.png".encode() for i in range(len(images))]}
    Path(path).write_bytes(pickle.dumps(obj, protocol=2))


def write_fashion_mnist(folder: Path, n: int) -> str:
    """A Fashion-MNIST-shaped folder of `n` random 28x28 images per split (labels 0-9 in turn):
    for the code paths, not for learning. Returns its --data spec."""
    from cnnzoo.data.mnist import write_idx

    rng = np.random.default_rng(0)
    for stem in ("train", "t10k"):
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return f"fashion-mnist:{folder}"
