"""Features files (`cnnzoo features`, read by `linear-probe`) and linear probes on disk:
safetensors with what produced them in the metadata, checked on read before a classifier is
sized from them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..bounds import check, check_optional
from ..errors import InvalidArgumentError
from ..files import atomic_path, check_readable


def save_features(path: str | os.PathLike, features: torch.Tensor, labels: torch.Tensor, *,
                  overwrite: bool = False, **meta: Any) -> None:
    """Features + labels as safetensors, with what produced them in the metadata. `path` obeys
    the output guard (cnnzoo.outputs): never the model file they come from (`meta["model_file"]`)
    nor a run folder's own file, an existing file only with `overwrite`."""
    from safetensors.torch import save_file

    from ..outputs import check_output

    check_output(path, inputs=[meta.get("model_file")], overwrite=overwrite)
    with atomic_path(path) as tmp:
        save_file({"features": features.contiguous(), "labels": labels.contiguous()}, str(tmp),
                  metadata={"cnnzoo_features": json.dumps(meta)})


def save_probe(path: str | os.PathLike, probe: nn.Module, meta: dict[str, Any], *,
               inputs: Sequence[str | os.PathLike | None] = (), overwrite: bool = False) -> None:
    """A linear probe's weights as safetensors, `meta` in the metadata; `path` obeys the output
    guard (cnnzoo.outputs): never one of `inputs` (its features files), an existing file only
    with `overwrite`."""
    from safetensors.torch import save_file

    from ..outputs import check_output

    check_output(path, inputs=inputs, overwrite=overwrite)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in probe.state_dict().items()}, str(tmp),
                  metadata={"cnnzoo_probe": json.dumps(meta)})


def load_features(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    from safetensors import safe_open

    if Path(path).is_file() and (why := check_readable(path)) is not None:  # not 'No such file'
        raise InvalidArgumentError(f"cannot read features file {path}: {why}; check its permissions")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("cnnzoo_features", "{}"))
            feats, labels = f.get_tensor("features"), f.get_tensor("labels")
    except (OSError, KeyError, ValueError, RecursionError) as err:
        raise InvalidArgumentError(f"{path}: not a features file written by `cnnzoo features` ({err})") \
            from None
    except Exception as err:  # safetensors' own errors for corrupt headers
        raise InvalidArgumentError(f"{path}: not a readable features file ({err})") from None
    classes = meta.get("classes") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or (classes is not None and not isinstance(classes, list)):
        raise InvalidArgumentError(f"{path}: its features record is not an object with a list of classes")
    check_features(feats, labels, len(classes) if classes else None, where=str(path))
    return feats, labels, meta


def check_features(f: torch.Tensor, y: torch.Tensor, num_classes: int | None = None,
                   where: str = "features") -> None:
    """Features finite and 2-D, labels integers in the bounds table's range and below
    `num_classes`: before a classifier is sized from them (a label of 10^9 would ask 336 GB)."""
    if f.ndim != 2 or not f.is_floating_point() or not bool(torch.isfinite(f).all()):
        raise InvalidArgumentError(f"{where}: features must be a finite 2-D float matrix (rows x dims), got "
                                   f"{'non-finite values (NaN or inf)' if f.ndim == 2 else f'shape {tuple(f.shape)}'}")
    if y.ndim != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise InvalidArgumentError(f"{where}: labels must be a 1-D integer tensor, got {y.dtype} {tuple(y.shape)}")
    top = check_optional("classes", num_classes, "num_classes")
    if len(y):
        check("label", int(y.min()), f"{where}: a label")
        check("label", int(y.max()), f"{where}: a label")
        if top is not None and int(y.max()) >= top:
            raise InvalidArgumentError(f"{where}: label {int(y.max())} is not below its {top} classes")
