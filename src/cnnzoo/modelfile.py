"""Model files: weights in safetensors, with a JSON record embedded in the file's metadata.

A model file is self-describing: `load_model(path)` rebuilds the architecture from the record
(model name + architecture arguments) and loads the weights. Nothing is ever unpickled.
Every write goes through files.atomic_path (a full disk is a clear OutputWriteError). Rebuilding a model from its file
(`load_model`) needs the registry, so it lives in registry.py, one floor up.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .bounds import BOUNDS, BoundError, check_size
from .errors import ModelFileError
from .files import atomic_path, check_readable
from .runfolder import MODEL_FILE, STATE_FILE
from .version import __version__

RECORD_KEY = "cnnzoo"
FORMAT_VERSION = 1

# Bounds on what a record may declare, checked before anything is built from it: those of the
# bounds table (cnnzoo/bounds.py), far above any real model; the exact sizes are then checked
# against the file's own tensors.
MAX_CLASSES = int(BOUNDS["classes"].high)
MAX_IN_CHANS = int(BOUNDS["channels"].high)
MAX_ARCH_INT = 10_000  # depth 1202, alpha 270, growth 48... (architecture arguments)
MAX_INPUT_SIDE = int(BOUNDS["side"].high)  # recorded preprocessing: input and resize sizes


def model_record(model: nn.Module, **extra: Any) -> dict[str, Any]:
    """The JSON record of a model made by create_model, plus whatever the caller adds
    (recipe, data spec, metrics, preprocessing...)."""
    name = getattr(model, "model_name", None)
    if name is None:
        raise ModelFileError("only models made by cnnzoo.create_model can be saved with a record")
    record = {
        "format": FORMAT_VERSION,
        "model": name,
        "arch_kwargs": getattr(model, "arch_kwargs", {}),
        "num_classes": getattr(model, "num_classes", None),
        "in_chans": getattr(model, "in_chans", None),
        "versions": {"torch": torch.__version__, "cnnzoo": __version__},
    }
    # published weights (cnnzoo.hub) bring their preprocessing and class names along
    cfg = getattr(model, "pretrained_cfg", None) or {}
    for key in ("preprocess", "classes"):
        if cfg.get(key) and (key != "classes" or len(cfg[key]) == record["num_classes"]):
            record[key] = cfg[key]
    if cfg.get("weights"):
        record["pretrained"] = cfg["weights"]
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


def model_path(path: str | os.PathLike) -> Path:
    """A model-file argument as every verb reads it: a run folder means its model file."""
    path = Path(path)
    if path.is_dir() and (path / MODEL_FILE).is_file():
        return path / MODEL_FILE
    return path


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON record of a model file (or a run folder's), without loading the weights."""
    from safetensors import safe_open

    path = model_path(path)
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder without a {MODEL_FILE}; pass a model file or a run folder")
    if path.name == STATE_FILE and (path.parent / MODEL_FILE).is_file():
        raise ModelFileError(f"{path} is a run's training state: use the run's {MODEL_FILE} "
                             f"({path.parent / MODEL_FILE}, or just the folder {path.parent}), "
                             "or --resume for training state")
    if not path.is_file():
        raise ModelFileError(f"no such model file: {path}")
    _check_readable(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ModelFileError(f"{path} is not a readable safetensors file ({err})") from None
    if RECORD_KEY not in meta:
        raise ModelFileError(
            f"{path} has no cnnzoo record; for a plain weights file use "
            "create_model(name, weights=path) or `cnnzoo convert`"
        )
    try:
        record = json.loads(meta[RECORD_KEY])
    except (json.JSONDecodeError, RecursionError) as err:
        raise ModelFileError(f"{path}: its cnnzoo record is not valid JSON ({err})") from None
    check_record(record, path)
    return record


def check_record(record: Any, path: str | os.PathLike) -> None:
    """A model record's structure and every size it declares, bounded (ModelFileError)."""
    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{path}: its cnnzoo record is malformed: {what}")

    if not isinstance(record, dict):
        raise bad(f"a JSON {type(record).__name__} where an object {{\"model\": ...}} belongs")
    if not isinstance(record.get("model"), str) or not record["model"]:
        raise bad('no "model" name')
    for key, top in (("num_classes", MAX_CLASSES), ("in_chans", MAX_IN_CHANS)):
        if record.get(key) is not None and not _int_in(record[key], 1, top):
            raise bad(f"{key} must be an integer in 1..{top:,}, "
                      f"got {str(record.get(key))[:40]}")
    kwargs = record.get("arch_kwargs", {})
    if not isinstance(kwargs, dict) or not all(_arch_value(v) for v in kwargs.values()) or \
            {"num_classes", "in_chans", "weights", "name"} & set(kwargs):
        raise bad(f"arch_kwargs must map names to numbers (|n| <= {MAX_ARCH_INT:,}), strings, "
                  "booleans or short lists of them (not num_classes, in_chans or weights)")
    classes = record.get("classes")
    if classes is not None and (not isinstance(classes, list) or len(classes) > MAX_CLASSES
                                or not all(isinstance(c, (str, int)) for c in classes)):
        raise bad("classes must be a list of names")
    pre = record.get("preprocess")
    problem = _preprocess_problem(pre, record.get("in_chans")) if pre is not None else None
    if problem:
        raise bad(f"preprocess: {problem}")


def _int_in(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _arch_value(v: Any, depth: int = 0) -> bool:
    if v is None or isinstance(v, (str, bool)):
        return not isinstance(v, str) or len(v) <= 100
    if isinstance(v, (int, float)):
        return abs(v) <= MAX_ARCH_INT
    return isinstance(v, list) and depth == 0 and len(v) <= 100 and \
        all(_arch_value(x, 1) for x in v)


def _preprocess_problem(pre: Any, in_chans: Any) -> str | None:
    """What is wrong with a record's preprocessing (None: nothing): input_size [C, H, W] within
    the bounds table, resize and pad sizes, and C finite means and C finite stds > 0 (a std of 0
    divides by zero, a NaN makes every prediction NaN)."""
    if not isinstance(pre, dict):
        return "must be an object"
    size, channels = pre.get("input_size"), in_chans
    if size is not None:
        if not (isinstance(size, list) and len(size) == 3 and all(_int_in(x, 1, math.inf) for x in size)):
            return f"input_size must be [C, H, W], positive integers, got {str(size)[:60]}"
        try:
            channels = check_size(size, "its input_size")[0]
        except BoundError as err:
            return str(err)
    for key in ("resize", "pad"):
        if pre.get(key) is not None and not _int_in(pre[key], 0, MAX_INPUT_SIDE):
            return f"{key} must be an integer in 0..{MAX_INPUT_SIDE:,}, got {str(pre[key])[:40]}"
    for key, low in (("mean", -math.inf), ("std", 0.0)):
        v = pre.get(key)
        if v is None:
            continue
        if not (isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
            return f"{key} must be a list of numbers, got {str(v)[:60]}"
        if len(v) > MAX_IN_CHANS or (isinstance(channels, int) and len(v) != channels):
            return f"{key} has {len(v)} values for {channels} channels"
        if not all(math.isfinite(x) and x > low for x in v):
            return f"{key} must be finite numbers{' > 0' if key == 'std' else ''}, got {str(v)[:60]}"
    return None


def _check_readable(path: str | os.PathLike) -> None:
    """A file we may not read says so (safetensors reports it as 'No such file or directory')."""
    why = check_readable(path)
    if why is not None:
        raise ModelFileError(f"cannot read {path}: {why}; check its permissions (ls -l {path})")


def tensor_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in a safetensors file, read from its header only."""
    from safetensors import safe_open

    _check_readable(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as err:
        raise ModelFileError(f"{path} is not a readable safetensors file ({err})") from None


def check_shapes(path: str | os.PathLike, record: dict[str, Any],
                 expected: dict[str, tuple[int, ...]]) -> None:
    """The file's tensors against the architecture its record describes: the first missing,
    unexpected or differently shaped tensor is named (ModelFileError)."""
    found = tensor_shapes(path)
    for key, shape in expected.items():
        if key not in found:
            # as many tensors, one of them under another name: a layout that changed between
            # versions (speednet's BN moved behind its pools on 2026-11-28), not a damaged file
            hint = ""
            if len(found) == len(expected):
                saved_with = (record.get("versions") or {}).get("cnnzoo", "an unknown version")
                hint = (f"; the file holds the same number of tensors under other names, as a file "
                        f"written for an earlier layout of {record['model']} does (written by cnnzoo "
                        f"{saved_with}): retrain it or use the cnnzoo that wrote it")
            raise ModelFileError(f"{path} does not match its record ({record['model']}): "
                                 f"tensor {key} is missing from the file{hint}")
        if tuple(found[key]) != tuple(shape):
            raise ModelFileError(
                f"{path} does not match its record ({record['model']}): tensor {key} has shape "
                f"{tuple(found[key])} in the file but {tuple(shape)} in the architecture")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise ModelFileError(f"{path} does not match its record ({record['model']}): "
                             f"unexpected tensor(s) {', '.join(extra[:5])}")


def load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    _check_readable(path)
    try:
        return load_file(str(path))
    except Exception as err:
        raise ModelFileError(f"{path}: cannot read weights ({err})") from None
