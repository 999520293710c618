"""Your own model: a torchvision or timm architecture by name (`tv:resnet50`, `timm:convnext_tiny`,
built with random weights, nothing downloaded) or an ONNX file (a path ending .onnx, costed by
onnx_walk.py). The one place these names are recognised and resolved; `analyze`, `compare`,
`reconcile` and serve take them wherever they take a zoo name.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InvalidArgumentError, closest

PREFIXES = {"tv": "torchvision", "timm": "timm"}


def is_library_name(arg: Any) -> bool:
    """`tv:NAME` or `timm:NAME`."""
    return isinstance(arg, str) and arg.split(":", 1)[0] in PREFIXES and ":" in arg


def is_onnx(arg: Any) -> bool:
    return isinstance(arg, (str, Path)) and str(arg).lower().endswith(".onnx")


def is_own(arg: Any) -> bool:
    return is_library_name(arg) or is_onnx(arg)


def build(arg: str, device: str | torch.device = "meta") -> nn.Module:
    """The architecture `tv:NAME` / `timm:NAME` with random weights (on `device`; the analyzer
    uses meta: nothing is allocated). Unknown names and missing libraries are bad input."""
    prefix, name = arg.split(":", 1)
    library = PREFIXES[prefix]
    if importlib.util.find_spec(library) is None:
        raise InvalidArgumentError(f"{arg}: {library} is not installed (pip install {library})")
    if prefix == "tv":
        import torchvision.models as tvm

        known = tvm.list_models(module=tvm)
        make = (lambda: tvm.get_model(name, weights=None)) if name in known else None
    else:
        import timm

        known = timm.list_models()
        make = (lambda: timm.create_model(name, pretrained=False)) if name in known else None
    if make is None:
        near = closest(name, known)
        hint = f"; did you mean: {', '.join(prefix + ':' + n for n in near)}?" if near else ""
        raise InvalidArgumentError(f"{library} has no model {name!r}{hint}")
    with torch.device(device):
        model = make().eval()
    model.model_name = arg
    return model


def default_input(model: nn.Module) -> tuple[int, ...]:
    """The input a library model was made for: timm's pretrained_cfg, else 3x224x224 (torchvision's
    inception_v3: 3x299x299)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if cfg.get("input_size"):
        return tuple(cfg["input_size"])
    return (3, 299, 299) if type(model).__name__ == "Inception3" else (3, 224, 224)
