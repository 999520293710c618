"""Fine-tuning a model on new classes, or training the same architecture from random weights
(the baseline that shows what the pre-trained weights are worth), and its model file.

`cnnzoo finetune` is this module: parse, `finetune(...)`, print; `Finetuned.save` writes the
model file with the settings that made it (its recipe) and where it came from."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..bounds import check
from ..results import pct
from .core import FitResult, ImageSet, fit_image_set, param_groups, prepare_transfer

# what fit_image_set runs, recorded in the model file's recipe
OPTIMIZER = "sgd+nesterov, cosine"


@dataclass(frozen=True)
class FinetuneSettings:
    """freeze_until: None = the whole network, "all" = only a new classifier, a module name =
    from that stage on. lr is the new classifier's, the pre-trained layers get lr x
    backbone_lr_mult. scratch: the same architecture from random weights, every layer at lr."""

    epochs: int = 30
    lr: float = 0.05
    backbone_lr_mult: float = 0.1
    batch_size: int = 32
    freeze_until: str | None = None
    augment: bool = True  # random shifts of up to 2 pixels
    scratch: bool = False
    seed: int = 0

    @property
    def mode(self) -> str:
        return "scratch" if self.scratch else f"transfer (freeze_until={self.freeze_until})"

    def recipe(self) -> dict[str, Any]:
        return {**asdict(self), "optimizer": OPTIMIZER}


@dataclass
class Finetuned:
    model: nn.Module  # the trained model (a new one with scratch=True)
    settings: FinetuneSettings
    result: FitResult  # val_acc: on the test set given to finetune
    classes: list[str]
    trainable_params: int

    def as_dict(self, source: str | None, n_train: int, n_test: int) -> dict[str, Any]:
        """The result in the library's vocabulary (docs/results.md)."""
        return {"model_file": source, "mode": self.settings.mode, "n_train": n_train, "n_test": n_test,
                "classes": self.classes, "trainable_params": self.trainable_params,
                "train_acc_pct": pct(self.result.train_acc), "test_acc_pct": pct(self.result.val_acc)}

    def save(self, path: str | os.PathLike, preprocess: dict[str, Any], data: dict[str, Any],
             source: str | None, *, overwrite: bool = False) -> dict[str, Any]:
        """Write the model file: weights, class names, `preprocess` (a Preprocess record),
        the recipe, `data` (what it was trained on) and the model it started from (`source`;
        none for scratch). Returns the record. `path` obeys the output guard (cnnzoo.outputs):
        never `source` nor a run folder's own file, an existing file only with `overwrite`."""
        from ..modelfile import save_model
        from ..outputs import check_output

        check_output(path, inputs=[source], overwrite=overwrite)

        return save_model(path, self.model, classes=self.classes, preprocess=preprocess,
                          recipe=self.settings.recipe(), data=data,
                          metrics={"test_acc_pct": pct(self.result.val_acc),
                                   "train_acc_pct": pct(self.result.train_acc)},
                          transfer={"from": None if self.settings.scratch else source})


def from_scratch(model: nn.Module, num_classes: int) -> nn.Module:
    """A new, randomly initialised model of `model`'s registered architecture (its recorded
    arch_kwargs and input channels) with `num_classes` classes."""
    from ..registry import create_model

    return create_model(model.model_name, num_classes=num_classes, in_chans=model.in_chans,
                        **getattr(model, "arch_kwargs", {}))


def finetune(model: nn.Module, train: ImageSet, test: ImageSet | None,
             settings: FinetuneSettings = FinetuneSettings()) -> Finetuned:
    """Give `model` a new classifier for `train`'s classes and train it (per `settings`:
    which layers, their learning rates), or with `settings.scratch` train a fresh copy of its
    architecture instead; scored on `test`. `model` is changed in place unless scratch."""
    s = settings
    check("epochs", s.epochs)  # before a model is built or copied
    check("batch_size", s.batch_size)
    torch.manual_seed(check("seed", s.seed))  # the new classifier's (or the scratch model's) initialisation
    n = len(train.classes)
    if s.scratch:
        model = from_scratch(model, n)
        groups = param_groups(model, s.lr, 1.0)
    else:
        groups = prepare_transfer(model, n, s.freeze_until, s.lr, s.backbone_lr_mult)
    trainable = sum(p.numel() for g in groups for p in g["params"])
    result = fit_image_set(model, groups, train, test, epochs=s.epochs, batch_size=s.batch_size,
                           seed=s.seed, augment=s.augment)
    return Finetuned(model, s, result, list(train.classes), trainable)
