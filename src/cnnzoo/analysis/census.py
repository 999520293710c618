"""What the cost counters disagree about, counted from the model: the analyzer's rows (one per
layer call, with its class, shapes, multiply-adds and parameters) and the element-wise tensor
operations between layers (the add of a residual, an operator `+` or a `torch.add`), which the
analyzer prices at zero and some counters price at one per output element.

Every amount that reconcile.py attributes to a rule is a sum over this census.
"""

from __future__ import annotations

import dis
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..contract import call_with_state, meta_state
from .core import analyze
from .report import LayerRow, Report

# names the element-wise ops between layers go by (functions and Tensor methods alike)
_ELEMENTWISE = {"add", "add_", "__add__", "__iadd__", "__radd__", "mul", "mul_", "__mul__",
                "__imul__", "__rmul__", "softmax", "sigmoid", "relu", "relu_", "hardswish", "cat"}


@dataclass
class Layer:
    """One analyzer row with the module that made it (None for a functional op's row)."""

    row: LayerRow
    module: nn.Module | None

    @property
    def cls(self) -> type | None:
        return None if self.module is None else type(self.module)

    def elements(self, which: str = "out") -> int:
        """Elements of one call's output (or input) for the whole batch of 1."""
        return math.prod((self.row.out_shape if which == "out" else self.row.in_shape) or (0,))

    @property
    def has_bias(self) -> bool:
        return getattr(self.module, "bias", None) is not None


@dataclass
class Census:
    """The model's layers and its element-wise ops between layers."""

    report: Report
    layers: list[Layer]
    ops: dict[str, int] = field(default_factory=dict)  # op name -> output elements, between layers
    # every functional op: (row name of the layer whose forward calls it, or ""; op name, input elements)
    inner: list[tuple[str, str, int]] = field(default_factory=list)

    def total(self, fn: Callable[[Layer], int]) -> int:
        return sum(fn(layer) for layer in self.layers)

    def where(self, pred: Callable[[Layer], bool], fn: Callable[[Layer], int]) -> int:
        return sum(fn(layer) for layer in self.layers if pred(layer))

    def op(self, *names: str) -> int:
        return sum(self.ops.get(n, 0) for n in names)


class _Ops(TorchFunctionMode):
    """Counts the output elements of element-wise ops run outside leaf modules."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.ops: dict[str, int] = {}
        self.inner: list[tuple[str, str, int]] = []
        self.names = {id(m): n for n, m in model.named_modules()}
        self.calls: dict[str, int] = {}
        self.leaf = ""
        self.depth = 0
        self.handles: list[Any] = []
        for m in model.modules():
            if next(m.children(), None) is None:
                self.handles.append(m.register_forward_pre_hook(self._enter))
                self.handles.append(m.register_forward_hook(self._leave))

    def _enter(self, m: nn.Module, *_: Any) -> None:
        self.depth += 1
        name = self.names.get(id(m), "")
        self.calls[name] = n = self.calls.get(name, 0) + 1
        self.leaf = name if n == 1 else f"{name}#{n}"  # the analyzer's row name

    def _leave(self, *_: Any) -> None:
        self.depth -= 1

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if args and isinstance(args[0], torch.Tensor):
            base = name.lstrip("_").replace("_with_indices", "")
            if base in ("add", "mul") and _operator(sys._getframe(1)):
                base = "operator " + base  # `a + b`: a tool that patches Tensor.add never sees it
            size = out.numel() if base in ("add", "mul") and isinstance(out, torch.Tensor) else args[0].numel()
            self.inner.append((self.leaf if self.depth else "", base, size))
        if (not self.depth and name in _ELEMENTWISE and isinstance(out, torch.Tensor)
                and sum(isinstance(a, torch.Tensor) for a in args) >= (1 if name in (
                    "softmax", "sigmoid", "relu", "relu_", "hardswish", "cat") else 2)):
            self.ops[name] = self.ops.get(name, 0) + out.numel()
        return out


def _operator(frame: Any) -> bool:
    """Did the Python code in `frame` call this op with an operator (`a + b`, `a *= b`)?"""
    op = next((i.opname for i in dis.get_instructions(frame.f_code) if i.offset == frame.f_lasti), "")
    return op.startswith(("BINARY_", "INPLACE_"))


def census(model: nn.Module, input_size: tuple[int, ...]) -> Census:
    """The census of `model` (left unchanged) for one image of `input_size`."""
    report = analyze(model, input_size=input_size)
    named = dict(model.named_modules())
    layers = [Layer(r, named.get(r.name.split("#")[0]) if not r.type.startswith("F.") else None)
              for r in report.rows]
    counter = _Ops(model)
    was = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            call_with_state(model, torch.empty((1, *input_size), device="meta"), meta_state(model))
    finally:
        for h in counter.handles:
            h.remove()
        model.train(was)
    return Census(report, layers, counter.ops, counter.inner)
