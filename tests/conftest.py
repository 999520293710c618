import os
import sys
from pathlib import Path

import pytest
import torch

# The full MNIST beside the checkout (../shared/data/mnist); tests that need it skip without it
# only where the embedded subset (always present) covers the same behaviour.
MNIST_DIR = Path(os.environ.get("CNNZOO_MNIST", Path(__file__).resolve().parents[2] / "shared/data/mnist"))


# Under pytest-xdist each worker gets one intra-op thread: two workers with two threads each
# oversubscribe a 2-core machine, which made some forwards tens of times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    # Every zoo model shares ZooModel.forward; compiling many models in one worker process would
    # otherwise hit dynamo's per-code-object recompile limit (8) and fail fullgraph tests.
    yield
    if "torch._dynamo" in sys.modules:
        torch._dynamo.reset()


@pytest.fixture
def mnist_dir() -> Path:
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"full MNIST not found at {MNIST_DIR}")
    return MNIST_DIR
