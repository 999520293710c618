"""Model files: weights in safetensors, with a JSON record embedded in the file's metadata.

A model file is self-describing: `load_model(path)` rebuilds the architecture from the record
(model name + architecture arguments) and loads the weights. Nothing is ever unpickled.
Every write goes through files.atomic_path. Rebuilding a model from its file
(`load_model`) needs the registry, so it lives in registry.py, one floor up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError
from .files import atomic_path
from .version import __version__

RECORD_KEY = "cnnzoo"
FORMAT_VERSION = 1


def model_record(model: nn.Module, **extra: Any) -> dict[str, Any]:
    """The JSON record of a model made by create_model, plus whatever the caller adds
    (recipe, data spec, metrics, preprocessing...)."""
    name = getattr(model, "model_name", None)
    if name is None:
        raise CheckpointError("only models made by cnnzoo.create_model can be saved with a record")
    record = {
        "format": FORMAT_VERSION,
        "model": name,
        "arch_kwargs": getattr(model, "arch_kwargs", {}),
        "num_classes": getattr(model, "num_classes", None),
        "in_chans": getattr(model, "in_chans", None),
        "versions": {"torch": torch.__version__, "cnnzoo": __version__},
    }
    record.update(extra)
    return record


def save_model(path: str | os.PathLike, model: nn.Module, **extra: Any) -> dict[str, Any]:
    """Write `model`'s weights and record to `path` (.safetensors) atomically; returns the record."""
    from safetensors.torch import save_file

    record = model_record(model, **extra)
    # safetensors refuses shared storage; contiguous clones keep the file independent.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={RECORD_KEY: json.dumps(record)})
    return record


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON record of a model file, without loading the weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such model file: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path} is not a readable safetensors file ({err})") from None
    if RECORD_KEY not in meta:
        raise CheckpointError(
            f"{path} has no cnnzoo record; for a plain weights file use "
            "create_model(name, weights=path) or `cnnzoo convert`"
        )
    try:
        return json.loads(meta[RECORD_KEY])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: its cnnzoo record is not valid JSON ({err})") from None


def load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:
        raise CheckpointError(f"{path}: cannot read weights ({err})") from None
