"""Shared set-up of the serve tests: a tiny trained LeNet-5 run (a few seconds on a CPU) and
the playground's LeNet-5, trained by the same code path with a tinier recipe."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import cnnzoo.serve.state as state

TINY = {"epochs": 1, "overrides": {"limit_train": 320}}
ZOO = ["lenet5", "alexnet", "resnet18", "googlenet", "vgg11"]


def train_tiny_run(out: Path, epochs: int = 1, **kw) -> Path:
    from cnnzoo.train import fit

    fit("lenet5", data="embedded", out=out, seed=0, epochs=epochs,
        overrides={"limit_train": 320, **kw})
    return out


def make_runs(root: Path) -> Path:
    """runs/ with one trained run, one without a model file, and a symlink leading out."""
    runs = root / "runs"
    runs.mkdir(parents=True)
    train_tiny_run(runs / "lenet-tiny")
    (runs / "lenet-tiny" / "checkpoint.safetensors").unlink(missing_ok=True)
    (runs / "empty-run").mkdir()
    (runs / "empty-run" / "metrics.csv").write_text("epoch,step,lr,train_loss,train_acc\n1,10,0.1,2.3,0.1\n")
    outside = root / "outside"
    outside.mkdir()
    shutil.copy(runs / "lenet-tiny" / "model.safetensors", outside / "model.safetensors")
    (outside / "secret.png").write_bytes((runs / "lenet-tiny" / "training_curves.png").read_bytes())
    (runs / "escape").symlink_to(outside, target_is_directory=True)
    return runs


def playground_cache(root: Path, monkeypatch) -> Path:
    monkeypatch.setattr(state, "PLAYGROUND_TRAINING", TINY)
    cache = root / "cache"
    state.playground_file(cache)
    return cache


def serve_app(root: Path, **kw):
    """The app over make_runs(root), its playground LeNet-5 trained with TINY into root/cache."""
    from cnnzoo.serve import create_app

    with pytest.MonkeyPatch.context() as mp:
        cache = playground_cache(root, mp)
    return create_app(make_runs(root), models=ZOO, cache=cache, **kw)


def digit_one() -> list[list[float]]:
    a = np.zeros((28, 28))
    a[4:24, 13:16] = 1.0
    return a.tolist()


def png_bytes(size: tuple[int, int] = (40, 32), mode: str = "RGB") -> bytes:
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="PNG")
    return buf.getvalue()
