"""The walker: one traced forward pass that turns a module tree into rows in execution order.

Forward hooks on every module see the leaves run (one row per leaf call, priced by
`rules.leaf_cost`) and record each container's own input/output shapes; a TorchFunctionMode sees
the functional ops between modules. Ops that change a tensor's geometry (torch.flatten / view to
2-D, F.conv*, F.*pool*, matmul) get a row of their own; element-wise ones (the add of a residual,
torch.cat of inception branches, F.relu) make no row and only carry the receptive field along.
Inside a custom leaf ("other") the ops are collected and priced as that leaf's row.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import receptive, rules
from .report import LayerRow
from .tensors import first_tensor, tensors


class Tracer(TorchFunctionMode):
    """Collects one row per leaf-module call and per geometry-changing functional op."""

    def __init__(self, model: nn.Module, n_spatial: int) -> None:
        super().__init__()
        self.rows: list[LayerRow] = []
        self.names: dict[int, str] = {}
        self.leaf: set[int] = set()
        self.types: dict[str, str] = {}
        self.stack: list[nn.Module] = []  # modules entered and not left (containers too)
        self.leaf_depth = 0  # >0 while inside a leaf: functional ops there belong to it
        self.calls: dict[str, int] = {}
        self.seen_params: set[int] = set()
        self.pending: dict[int, list[list[dict[str, Any]]]] = {}  # leaf -> ops per open call
        self.inputs: dict[int, list[list[torch.Tensor]]] = {}  # leaf -> inputs per open call
        self.entry: dict[int, tuple[int, ...]] = {}
        self.io: dict[str, tuple] = {}  # container name -> (in shape, out shape), first call
        self.n_spatial = n_spatial
        self.handles: list[Any] = []
        self.root = model
        for name, m in model.named_modules():
            self.names[id(m)] = name or type(m).__name__.lower()
            self.types[name] = type(m).__name__
            if next(m.children(), None) is None:
                self.leaf.add(id(m))
            self.handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
            self.handles.append(m.register_forward_hook(self._post, with_kwargs=True))

    def remove(self) -> None:
        """Take the hooks off the model."""
        for h in self.handles:
            h.remove()

    def current_leaf(self) -> nn.Module | None:
        """The innermost leaf running now (after an exception: the one that failed)."""
        for m in reversed(self.stack):
            if id(m) in self.leaf:
                return m
        return None

    # -- module hooks ----------------------------------------------------------------------------
    def _pre(self, m: nn.Module, args: tuple, kwargs: dict) -> None:
        if id(m) not in self.names:  # a copy of the model (e.g. a size probe): not ours
            return None
        self.stack.append(m)
        if id(m) not in self.leaf and id(m) not in self.entry:
            x = first_tensor(args) if args else first_tensor(kwargs)
            self.entry[id(m)] = tuple(x.shape[1:]) if x is not None else ()
        if id(m) in self.leaf:
            self.leaf_depth += 1
            self.pending.setdefault(id(m), []).append([])  # functional ops run inside it
            self.inputs.setdefault(id(m), []).append(tensors(args) + tensors(kwargs))
        return None

    def _post(self, m: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        if id(m) not in self.names:
            return None
        if self.stack and self.stack[-1] is m:
            self.stack.pop()
        if id(m) not in self.leaf:
            self._container_done(m, out)
            return None
        self.leaf_depth -= 1
        inputs, inner = self.inputs[id(m)].pop(), self.pending[id(m)].pop()
        with torch._C.DisableTorchFunction():
            self._leaf_row(m, inputs, out, inner)
        return None

    def _container_done(self, m: nn.Module, out: Any) -> None:
        name = self.names[id(m)]
        y = first_tensor(out)
        x = self.entry.pop(id(m), None)
        if name not in self.io and y is not None:  # a block's own in/out (e.g. the concat)
            self.io[name] = (x, tuple(y.shape[1:]))
        # nn.MultiheadAttention uses its out_proj's weights without calling it
        attn = isinstance(m, nn.MultiheadAttention)
        own = sum(p.numel() for p in m.parameters(recurse=attn))
        if own and id(m) not in self.seen_params:  # e.g. a class token used functionally
            self.seen_params.update(id(c) for c in (m.modules() if attn else [m]))
            self.rows.append(LayerRow(
                name=self._row_name(name + ".<own>"), kind="other",
                type=f"{type(m).__name__} (own parameters)", params=own,
                in_shape=(), out_shape=tuple(y.shape[1:]) if y is not None else ()))

    def _row_name(self, base: str) -> str:
        n = self.calls.get(base, 0) + 1
        self.calls[base] = n
        return base if n == 1 else f"{base}#{n}"

    def _leaf_row(self, m: nn.Module, inputs: list[torch.Tensor], out: Any,
                  inner: list[dict[str, Any]]) -> None:
        x = inputs[0] if inputs else None
        y = first_tensor(out)
        geo_in = receptive.merge([receptive.geo_of(t) for t in inputs]) if inputs else None
        if geo_in is None:
            geo_in = receptive.unit(self.n_spatial)
        row = LayerRow(name=self._row_name(self.names[id(m)]), type=type(m).__name__,
                       kind=rules.kind(m), in_shape=tuple(x.shape[1:]) if x is not None else (),
                       out_shape=tuple(y.shape[1:]) if y is not None else ())
        # parameters are counted once, at a module's first call (shared modules, reused ReLUs)
        if id(m) not in self.seen_params:
            self.seen_params.add(id(m))
            row.params = sum(p.numel() for p in m.parameters(recurse=False))
        geo_out = rules.leaf_cost(row, m, x, y, geo_in, inner, self.n_spatial)
        if row.kind not in rules.NO_MEMORY_KINDS and y is not None:
            row.memory = sum(t.numel() * t.element_size() for t in tensors(out))
        self._add(row, geo_out, out)

    def _add(self, row: LayerRow, geo: receptive.Geo, out: Any) -> None:
        row.rf, row.eff_stride = geo
        self.rows.append(row)
        receptive.tag(tensors(out), geo)

    # -- functional ops --------------------------------------------------------------------------
    def __torch_function__(self, func: Callable, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not isinstance(out, (torch.Tensor, tuple, list)):
            return out
        inner = None
        if self.leaf_depth:
            # inside a leaf: its own kind's formula counts it, unless it is a custom module
            # ("other"), whose convs / matmuls / pools are counted as it runs them
            leaf = self.current_leaf()
            if leaf is None or rules.kind(leaf) != "other" or not self.pending.get(id(leaf)):
                return out
            inner = self.pending[id(leaf)][-1]
        ins = tensors(args) + tensors(kwargs)
        if not ins or not any(isinstance(o, torch.Tensor) for o in tensors(out)):
            return out
        with torch._C.DisableTorchFunction():
            if inner is not None:
                name = getattr(func, "__name__", "")
                op = rules.op_cost(name, args, kwargs, ins[0], first_tensor(out))
                if op is not None:
                    inner.append(op)
            else:
                self._functional(func, args, kwargs, ins, out)
        return out

    def _container(self) -> str:
        """Dotted name of the module whose forward is running ("" for the model itself)."""
        if not self.stack or self.stack[-1] is self.root:
            return ""
        return self.names[id(self.stack[-1])]

    def _functional(self, func: Callable, args: tuple, kwargs: dict, ins: list[torch.Tensor],
                    out: Any) -> None:
        name = getattr(func, "__name__", "")
        x, y = ins[0], first_tensor(out)
        geo_in = receptive.merge([receptive.geo_of(t) for t in ins])
        flat = (name in ("flatten", "view", "reshape") and y is not None and x.dim() >= 3
                and y.dim() == 2)
        op = None if flat else rules.op_cost(name, args, kwargs, x, y)
        if not flat and op is None:
            receptive.tag(tensors(out), geo_in)  # element-wise (add, cat, relu, ...): carry the max
            return
        if geo_in is None:
            geo_in = receptive.unit(self.n_spatial)
        parent = self._container()
        base = "flatten" if flat else op["op"]
        row = LayerRow(name=self._row_name(f"{parent}.{base}" if parent else base),
                       type=f"F.{base}", kind="flatten" if flat else op["kind"],
                       in_shape=tuple(x.shape[1:]), out_shape=tuple(y.shape[1:]))
        if flat:
            geo_out = receptive.whole_map(geo_in, x.shape[2:])
        else:
            geo_out = receptive.apply_ops(geo_in, [op])
            row.macs = op["macs"]
            rules.copy_window(row, op)
        row.memory = y.numel() * y.element_size()
        self._add(row, geo_out, out)
