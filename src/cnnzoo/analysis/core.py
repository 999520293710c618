"""analyze(): per-layer cost of any nn.Module from shapes alone (seed 003), and its front doors.

The network runs once on the meta device (tensors with shapes and no data), so analyzing
ResNet-152 or VGG-19 allocates no activations and computes nothing. A model with real weights
is not touched: its parameters are swapped for meta stand-ins with `torch.func.functional_call`.
The walk itself is in walk.py, the per-operator formulas in rules.py, the receptive-field
geometry in receptive.py and the result with its text forms in report.py.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..bounds import check, check_size
from ..contract import call_with_state, meta_state
from ..errors import CnnzooError, InvalidArgumentError
from ..registry import create_model, get_entry
from . import own
from .diagnose import fmt, too_small
from .report import Report
from .walk import Tracer


class AnalysisError(CnnzooError, RuntimeError):
    """The model could not be traced on the meta device."""


def _check_input_size(input_size: Any) -> tuple[int, ...]:
    if (not isinstance(input_size, (tuple, list)) or not input_size
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_size)):
        raise InvalidArgumentError(
            f"input_size must be positive integers (C, H, W), e.g. (3, 224, 224); got {input_size!r}")
    return check_size(input_size, "input_size")  # bounded before the meta tensor is made


def _resolve(model_or_name: nn.Module | str,
             input_size: Sequence[int] | None) -> tuple[nn.Module, str, tuple[int, ...]]:
    """(model, its display name, checked input size); a name is built on the meta device."""
    if own.is_library_name(model_or_name):  # tv:NAME, timm:NAME
        model = own.build(model_or_name)
        return model, model_or_name, _check_input_size(input_size or own.default_input(model))
    if isinstance(model_or_name, str):
        entry = get_entry(model_or_name)
        if input_size is None:
            input_size = entry.input_size
        size = _check_input_size(input_size)
        with torch.device("meta"):  # built for the channels it is asked about
            return create_model(model_or_name, in_chans=size[0]), model_or_name, size
    if isinstance(model_or_name, nn.Module):
        model_name = getattr(model_or_name, "model_name", None) or type(model_or_name).__name__
        if input_size is None:
            raise InvalidArgumentError(
                f"input_size is required for a module ({model_name}); e.g. input_size=(3, 224, 224)")
        return model_or_name, model_name, _check_input_size(input_size)
    raise InvalidArgumentError(
        f"analyze() takes an nn.Module or a model name, got {type(model_or_name).__name__}")


def _batch_shape(model_or_name: nn.Module | str, input_size: Sequence[int] | None,
                 batch_size: int) -> tuple[Sequence[int] | None, int]:
    """torchinfo takes (N, C, H, W): accept it for 2-D models (input_size is per image here, so
    the leading N becomes batch_size), and say so where it conflicts with batch_size."""
    if not isinstance(input_size, (tuple, list)) or len(input_size) != 4:
        return input_size, batch_size
    if isinstance(model_or_name, str):
        two_d = len(get_entry(model_or_name).input_size) == 3
    else:
        kinds = {type(m) for m in model_or_name.modules()} if isinstance(model_or_name, nn.Module) else set()
        two_d = nn.Conv2d in kinds and nn.Conv3d not in kinds
    if not two_d:
        return input_size, batch_size
    n = input_size[0]
    if batch_size not in (1, n):
        raise InvalidArgumentError(
            f"input_size is per image, (C, H, W); got the batch shape {tuple(input_size)} and batch_size="
            f"{batch_size}: pass input_size={tuple(input_size[1:])}, batch_size=N")
    return tuple(input_size[1:]), n


def analyze(model_or_name: nn.Module | str, input_size: Sequence[int] | None = None,
            batch_size: int = 1) -> Report:
    """Per-layer shapes, memory, parameters and multiply-adds of a model, without computing it.

    `model_or_name`: any nn.Module (left unchanged) or a registered name (built on the meta
    device). `input_size`: (C, H, W) of one sample; defaults to a registered model's native size.
    A batch shape (N, C, H, W), as torchinfo takes it, is read as input_size=(C, H, W),
    batch_size=N. `print(report)` prints the per-layer table.
    """
    if own.is_onnx(model_or_name):
        from .onnx_walk import analyze_onnx
        return analyze_onnx(model_or_name, input_size, batch_size)
    input_size, batch_size = _batch_shape(model_or_name, input_size, batch_size)
    model, model_name, size = _resolve(model_or_name, input_size)
    check("batch_size", batch_size)

    state = meta_state(model)
    was = {m: m.training for m in model.modules()}
    model.eval()  # inference graph: no auxiliary heads, dropout as identity
    tracer = Tracer(model, n_spatial=max(0, len(size) - 1))
    x = torch.empty((batch_size, *size), device="meta")
    try:
        with torch.no_grad(), tracer:
            call_with_state(model, x, state)
    except Exception as err:
        leaf = tracer.current_leaf()
        if leaf is not None:
            raise too_small(model, model_name, size, tracer, leaf, err) from err
        if isinstance(err, CnnzooError):
            raise
        raise AnalysisError(
            f"could not trace {model_name} on the meta device with input {fmt(size)}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} (the analyzer "
            "needs a forward pass that depends on shapes only, not on values)") from err
    finally:
        tracer.remove()
        for m, t in was.items():
            m.training = t

    used = tracer.seen_params
    unused = sum(p.numel() for m in model.modules() if id(m) not in used
                 for p in m.parameters(recurse=False))
    return Report(model_name=model_name, input_size=size, batch_size=batch_size,
                  rows=tracer.rows, module_types=tracer.types, module_io=tracer.io, unused_params=unused)


def receptive_field(model: nn.Module, input_size: Sequence[int]) -> tuple[int, ...]:
    """Receptive field (per spatial dim) of the model's last row, e.g. (7, 7) for 3 3x3 convs."""
    rows = analyze(model, input_size).rows
    if not rows or rows[-1].rf is None:
        raise ValueError("the model has no layers to analyze")
    return rows[-1].rf
