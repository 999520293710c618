"""Why a traced forward pass failed, in the user's terms: which layer, which sizes, what fits.

A conv or pool whose output would be zero or negative means the input is too small (and, for
a (C, H, W) input, the smallest square that fits is probed); anything else that failed inside a
layer is reported as an input that does not fit that layer.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..contract import SIZE_ERROR, min_input_size
from ..errors import InputShapeError
from .rules import CONV, POOL, tup
from .walk import Tracer


def fmt(shape: Sequence[int]) -> str:
    """(3, 224, 224) -> '3x224x224'."""
    return "x".join(str(int(s)) for s in shape)


def _out_size(m: nn.Module, x: torch.Tensor) -> str | None:
    """What a conv/pool layer would output for x (shown when that is zero or negative)."""
    if not isinstance(m, (CONV,) + POOL) or isinstance(m.padding if hasattr(m, "padding") else 0, str):
        return None
    nd = x.dim() - 2
    k = tup(m.kernel_size, nd)
    s = tup(m.stride if m.stride is not None else m.kernel_size, nd)
    p = tup(getattr(m, "padding", 0), nd)
    d = tup(getattr(m, "dilation", 1), nd)
    if min(s) < 1:  # PyTorch accepts the module; its forward fails. Nothing to compute here.
        return None
    sizes = [(h + 2 * pi - di * (ki - 1) - 1) // si + 1
             for h, ki, si, pi, di in zip(x.shape[2:], k, s, p, d)]
    return "x".join(str(v) for v in sizes)


def _describe(tracer: Tracer, leaf: nn.Module) -> str:
    """"layer 'features.0' (Conv2d 11, stride 4, pad 2)"."""
    where = f"layer '{tracer.names[id(leaf)]}' ({type(leaf).__name__}"
    if isinstance(leaf, (CONV,) + POOL):
        k = tup(leaf.kernel_size, 2)
        s = tup(leaf.stride if leaf.stride is not None else leaf.kernel_size, 2)
        p = getattr(leaf, "padding", 0)
        where += f" {fmt(k)}, stride {fmt(s)}, pad {p if isinstance(p, str) else fmt(tup(p, 2))}"
    return where + ")"


def too_small(model: nn.Module, model_name: str, size: tuple[int, ...], tracer: Tracer,
              leaf: nn.Module, err: BaseException) -> InputShapeError:
    """The error for a trace that failed inside `leaf` with input `size`."""
    x = tracer.inputs.get(id(leaf), [[None]])[-1]
    x = x[0] if x else None
    where = _describe(tracer, leaf)
    feat = fmt(x.shape[1:]) if x is not None else "?"
    out = _out_size(leaf, x) if x is not None else None
    reaches_zero = out is not None and any(int(v) <= 0 for v in out.split("x"))
    if out is None and SIZE_ERROR.search(" ".join(str(e) for e in (err, err.__cause__) if e)):
        reaches_zero, out = True, None  # a custom layer: PyTorch (or the model) said too small
    if reaches_zero:
        need = ""
        if len(size) == 3:
            smallest = min_input_size(model, size[0])
            if smallest > 0:
                need = f"; {model_name} needs at least {size[0]}x{smallest}x{smallest}"
        return InputShapeError(
            f"input {fmt(size)} is too small for {model_name}: the spatial size reaches zero at "
            f"{where}: its input is {feat}" + (f", its output would be {out}" if out else "") + need)
    return InputShapeError(
        f"input {fmt(size)} does not fit {model_name}: {where} cannot take its input of shape "
        f"{feat} ({str(err).splitlines()[0] if str(err) else type(err).__name__})")
