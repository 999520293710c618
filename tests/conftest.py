import os
from pathlib import Path

import pytest
import torch

# The full MNIST beside the checkout (../shared/data/mnist); tests that need it skip without it
# only where the embedded subset (always present) covers the same behaviour.
MNIST_DIR = Path(os.environ.get("CNNZOO_MNIST", Path(__file__).resolve().parents[2] / "shared/data/mnist"))


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"full MNIST not found at {MNIST_DIR}")
    return MNIST_DIR
