"""Small models for the training tests (registered on import), and a CLI entry that registers
them first: `python tests/_train_models.py train tiny_cnn ...` (also under torchrun)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnzoo.contract import AuxOutputs, ZooModel
from cnnzoo.registry import _REGISTRY, Paper, register
from cnnzoo.train.reporter import Reporter

_PAPER = Paper("test model", "cnnzoo tests", 2026, "-")


class TinyCNN(ZooModel):
    """conv(8) - pool - conv(16) - pool - fc; optional BN and an auxiliary head."""

    classifier_name = "fc"

    def __init__(self, num_classes=10, in_chans=1, bn=False, aux=False, width=8):
        super().__init__(num_classes, in_chans)
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, w, 5, padding=2), nn.BatchNorm2d(w) if bn else nn.Identity(), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 5), nn.BatchNorm2d(2 * w) if bn else nn.Identity(), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4))
        self.num_features = 2 * w * 16
        self.fc = nn.Linear(self.num_features, num_classes)
        self.aux_head = nn.Linear(self.num_features, num_classes) if aux else None

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x, pre_logits=False):
        x = x.flatten(1)
        if pre_logits:
            return x
        logits = self.fc(x)
        if self.aux_head is not None and self.training:
            return AuxOutputs(logits, (self.aux_head(x),), 0.3)
        return logits


def _builder(**kw):
    return TinyCNN(**kw)


def _register():
    for name, kw, size in (("tiny_cnn", {}, (1, 28, 28)), ("tiny_bn", {"bn": True}, (1, 28, 28)),
                           ("tiny_aux", {"aux": True}, (1, 28, 28)),
                           ("tiny32", {}, (1, 32, 32)), ("tiny_rgb", {}, (3, 32, 32))):
        if name not in _REGISTRY:
            from cnnzoo.registry import _ensure_loaded

            _ensure_loaded()
            if name not in _REGISTRY:
                register(name, _builder, family="test", paper=_PAPER, input_size=size, kwargs=kw)


# Shared by test_train.py and test_train_faults.py.
@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # two xdist workers on two cores
    yield


# the tests' own optimizer settings, independent of the shipped lenet recipe
SGD = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "amp": "off",
       "channels_last": "off"}


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


class _Stop(Exception):
    pass


def _fit_until(out, overrides, stop_at, device=None):
    """A run that dies right after its step-`stop_at` checkpoint (like kill -9)."""
    from cnnzoo.train import state as ckpt
    from cnnzoo.train.run import fit

    real = ckpt.save_state

    def save_then_die(*a, **kw):
        real(*a, **kw)
        if kw["step"] == stop_at:
            raise _Stop

    ckpt.save_state = save_then_die
    try:
        fit("tiny_bn", recipe="lenet", epochs=2, out=out, overrides=overrides, deterministic=True,
            device=device)
    finally:
        ckpt.save_state = real


# Short runs for the run-folder, option and fault tests: 2 steps an epoch.
TINY = {**SGD, "batch_size": 64, "limit_train": 128, "eval_every": 9}
TINY_ARGS = ["--set", "limit_train=128", "--batch-size", "64", "--set", "amp=off", "--set", "channels_last=off",
             "--no-progress"]


class Messages(Reporter):
    """A reporter that keeps the run's messages, for the tests that read them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def _step_ctx(model):
    """What train_one_epoch needs to step `model` with SGD on the CPU."""
    from cnnzoo.train.engine import StepContext
    from cnnzoo.train.recipes import Recipe

    r = Recipe(**{**SGD, "batch_size": 4, "log_every": 1})
    return StepContext(recipe=r, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), scheduler=None,
                       device=torch.device("cpu"))


_register()

if __name__ == "__main__":
    from cnnzoo.cli import main

    main(sys.argv[1:])

