"""What each recipe field means, for `cnnzoo train --list-fields` (every `--set key=value`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .recipes import AUGMENTATIONS, OPTIMIZERS, SCHEDULES, Recipe

MEANING: dict[str, str] = {
    "name": "the recipe's name",
    "source": "where the recipe comes from (paper, seed)",
    "epochs": "run length in epochs (unless iterations is set)",
    "iterations": "run length in optimizer steps (the CIFAR ResNet's 64k); --epochs replaces it",
    "batch_size": "global batch: all processes and accumulation steps together",
    "accum_steps": "gradient accumulation steps per optimizer step",
    "optimizer": "one of " + ", ".join(OPTIMIZERS),
    "lr": "base learning rate",
    "momentum": "SGD momentum",
    "nesterov": "Nesterov momentum (SGD)",
    "weight_decay": "L2 weight decay (AdamW: decoupled)",
    "no_decay_norm_bias": "no weight decay on BatchNorm parameters and biases",
    "betas": "AdamW's (beta1, beta2)",
    "schedule": "learning-rate schedule: one of " + ", ".join(SCHEDULES),
    "milestones": "multistep: steps (of iterations, or epochs) where lr is multiplied by gamma",
    "gamma": "multistep / plateau / exp: the lr factor",
    "patience": "plateau: epochs without validation improvement before lr x gamma",
    "decay_every": "exp: multiply lr by gamma every this many epochs",
    "warmup_epochs": "linear warm-up from 0 over this many epochs",
    "pct_start": "onecycle: fraction of the run spent warming up",
    "final_lr_frac": "cosine / onecycle: the last lr as a fraction of the base",
    "label_smoothing": "cross-entropy label smoothing (the plotted loss says so)",
    "aux_weight": "weight of auxiliary classifier losses (default: the model's own, GoogLeNet 0.3)",
    "grad_clip": "clip the global L2 norm of the gradients to this",
    "augment": "training augmentation: one of " + ", ".join(AUGMENTATIONS) + " (flips are wrong on digits)",
    "on_corrupt": "image folders: skip (and count) or fail on an unreadable image",
    "workers": "image folders: DataLoader worker processes",
    "amp": "auto (bf16 autocast on CUDA, on AMX CPUs, and on avx512_bf16 CPUs at batch >= 64), bf16 or off",
    "channels_last": "auto (where amp's auto is on), on or off",
    "compile": "torch.compile the model",
    "fused": "fused optimizer kernels: auto (on CUDA), on, off",
    "sync_bn": "SyncBatchNorm across processes (torchrun, CUDA)",
    "log_every": "steps between progress updates",
    "ckpt_every": "also checkpoint every N steps (0: at epoch ends only)",
    "eval_every": "evaluate on the validation split every N epochs",
    "limit_train": "train on the first N images only (quick experiments)",
    "val_split": "validation held out of the training set: fraction F, N images, or 0 (none)",
    "loader": "image folders: auto, torch (decode_jpeg, batched augmentation), dali (CUDA, if "
              "installed) or pil (one image at a time)",
    "keep": "model.safetensors keeps the best epoch by validation (best) or the last (last)",
}


def _type_name(t: Any) -> str:
    return str(t).replace("typing.", "") if not isinstance(t, type) else t.__name__


def fields_table() -> list[dict[str, str]]:
    """One row per recipe field: name, type, default, meaning."""
    default = Recipe()
    return [{"field": f.name, "type": _type_name(f.type), "default": repr(getattr(default, f.name)),
             "meaning": MEANING.get(f.name, "")} for f in dataclasses.fields(Recipe)]
