"""Regenerate cnnzoo's embedded MNIST subset (src/cnnzoo/data/embedded/) from the full MNIST.

Deterministic: the first 1000 training and the first 100 test images of each digit, in file
order, written as gzip IDX with a zero gzip timestamp, so the output is byte-for-byte stable.

    python scripts/make_embedded_mnist.py [MNIST_DIR]     (default ../shared/data/mnist)
"""

import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from cnnzoo.data.mnist import SPLITS, load_mnist, write_idx  # noqa: E402

PER_CLASS = {"train": 1000, "test": 100}


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/data/mnist"
    out = ROOT / "src/cnnzoo/data/embedded"
    out.mkdir(parents=True, exist_ok=True)
    for split, per_class in PER_CLASS.items():
        images, labels = load_mnist(src, split)
        keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)]))
        img_name, lbl_name = SPLITS[split]
        write_idx(out / f"{img_name}.gz", images[keep])
        write_idx(out / f"{lbl_name}.gz", labels[keep].astype(np.uint8))
        print(f"{split}: {len(keep)} images")
    for f in sorted(out.glob("*.gz")):
        print(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}")


if __name__ == "__main__":
    main()
