"""Model files: weights in safetensors, with a JSON record embedded in the file's metadata.

A model file is self-describing: `load_model(path)` rebuilds the architecture from the record
(model name + architecture arguments) and loads the weights. Nothing is ever unpickled.
Every write is atomic (temporary file in the same folder, fsync, rename), so a crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from .errors import CheckpointError

RECORD_KEY = "cnnzoo"
FORMAT_VERSION = 1


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success fsyncs it and renames it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        try:  # make the rename itself durable
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


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
        "versions": {"torch": torch.__version__, "cnnzoo": _version()},
    }
    record.update(extra)
    return record


def _version() -> str:
    from . import __version__

    return __version__


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


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild the model recorded in `path` and load its weights. Returns (model, record)."""
    from .registry import create_model

    record = read_record(path)
    model = create_model(
        record["model"],
        num_classes=record["num_classes"],
        in_chans=record["in_chans"],
        **record.get("arch_kwargs", {}),
    )
    state = load_state(path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match {record['model']}: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    return model.to(map_location), record
