import os
import sys
from pathlib import Path

import pytest
import torch

from _cli import CliResult, run_cli

# The full MNIST beside the checkout (../shared/data/mnist), or where CNNZOO_MNIST points.
MNIST_DIR = Path(os.environ.get("CNNZOO_MNIST", Path(__file__).resolve().parents[2] / "shared/data/mnist"))
# The real-MNIST subset shipped in the package (10,000 train / 1,000 test digits, same IDX files).
EMBEDDED_MNIST = Path(__file__).resolve().parents[1] / "src/cnnzoo/data/embedded"


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
    """Full MNIST, for tests about the full set itself; they skip without it."""
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"full MNIST not found at {MNIST_DIR}")
    return MNIST_DIR


@pytest.fixture
def real_mnist_dir() -> Path:
    """Real MNIST digits for learning tests: the full set when present, else the embedded subset."""
    if (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        return MNIST_DIR
    return EMBEDDED_MNIST


@pytest.fixture
def cli(capsys):
    """`cli(*argv) -> CliResult(code, out, err)`: `cnnzoo ARGV` run in this process (see _cli.py)."""

    def run(*argv: object) -> CliResult:
        return run_cli(list(argv), capsys)

    return run
