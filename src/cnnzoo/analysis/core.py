"""Per-layer cost of any nn.Module from shapes alone: hooks + the lecture's formulas (seed 003).

The network runs once on the meta device (tensors with shapes and no data), so analyzing
ResNet-152 or VGG-19 allocates no activations and computes nothing. A model with real weights
is not touched: its parameters are swapped for meta stand-ins with `torch.func.functional_call`.

Rows are the leaf modules, in execution order, plus the functional ops between modules that
change a tensor's geometry (torch.flatten / view to 2-D, F.*pool*). Element-wise functional ops
(the add of a residual, torch.cat of inception branches, F.relu) make no row; they only carry
the receptive field along (the max over their inputs).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..contract import SIZE_ERROR, call_with_state, meta_state, min_input_size
from ..errors import CnnzooError, InputShapeError, InvalidArgumentError
from .report import LayerRow, Report

_CONV = nn.modules.conv._ConvNd
_POOL = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._LPPoolNd)
_ADAPTIVE = (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
_NORM = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
         nn.CrossMapLRN2d)
_DROPOUT = nn.modules.dropout._DropoutNd
_FLATTEN = (nn.Flatten, nn.Unflatten)

# Kinds whose output is not counted as memory: activations are taken as in place (what
# ReLU(inplace=True) does, and what an inference engine fuses), dropout and identity return
# their input at inference.
NO_MEMORY_KINDS = frozenset({"act", "dropout", "identity"})


# PyTorch's (and the model contract's) words for a feature map smaller than a kernel

class AnalysisError(CnnzooError, RuntimeError):
    """The model could not be traced on the meta device."""


def _kind(m: nn.Module) -> str:
    if isinstance(m, _CONV):
        return "conv"
    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, _POOL + _ADAPTIVE):
        return "pool"
    if isinstance(m, _NORM):
        return "norm"
    if isinstance(m, _DROPOUT):
        return "dropout"
    if isinstance(m, nn.Identity):
        return "identity"
    if isinstance(m, _FLATTEN):
        return "flatten"
    if type(m).__module__ == "torch.nn.modules.activation" or any(
        c.__module__ == "torch.nn.modules.activation" for c in type(m).__mro__[1:-2]
    ):
        return "act"
    return "other"


def _tup(v: Any, n: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(int(x) for x in v)
    return (int(v),) * n


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    if isinstance(obj, dict):
        return _first_tensor(list(obj.values()))
    return None


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return _tensors(list(obj.values()))
    return []


# -- receptive field ------------------------------------------------------------------------
# Each tensor carries (rf, jump) per spatial dim of the network input: the receptive field of
# one of its elements on the input, and the distance on the input between neighbours (the
# effective stride). A layer with kernel k, stride s, dilation d: rf' = rf + (k-1)*d*jump,
# jump' = jump*s. Merging branches (add, cat) takes the max.
_GEO = "_cnnzoo_geo"


def _geo(t: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    return getattr(t, _GEO, None)


def _set_geo(obj: Any, geo) -> None:
    if geo is None:
        return
    for t in _tensors(obj):
        try:
            setattr(t, _GEO, geo)
        except (AttributeError, RuntimeError):  # e.g. torch.Size, frozen subclasses
            pass


def _merge(geos):
    geos = [g for g in geos if g is not None]
    if not geos:
        return None
    rf = tuple(max(g[0][i] for g in geos) for i in range(len(geos[0][0])))
    jump = tuple(max(g[1][i] for g in geos) for i in range(len(geos[0][1])))
    return rf, jump


def _window(geo, kernel, stride, dilation=None):
    rf, jump = geo
    n = len(rf)
    k = kernel[-n:] if len(kernel) >= n else kernel + (kernel[-1],) * (n - len(kernel))
    s = stride[-n:] if len(stride) >= n else stride + (stride[-1],) * (n - len(stride))
    d = dilation[-n:] if dilation and len(dilation) >= n else (1,) * n
    return (tuple(r + (ki - 1) * di * j for r, ki, di, j in zip(rf, k, d, jump)),
            tuple(j * si for j, si in zip(jump, s)))


def _global(geo, spatial: Sequence[int]):
    """Every output element sees the whole map (global pooling, flatten before an FC layer)."""
    rf, jump = geo
    n = len(rf)
    sp = tuple(spatial[-n:]) if len(spatial) >= n else (1,) * n
    return (tuple(r + (h - 1) * j for r, h, j in zip(rf, sp, jump)),
            tuple(j * h for j, h in zip(jump, sp)))


def _adaptive_macs(in_sp: Sequence[int], out_sp: Sequence[int]) -> int:
    """Sum over outputs of the adaptive window size (PyTorch's start=floor, end=ceil)."""
    total = 1
    for i_, o_ in zip(in_sp, out_sp):
        total *= sum(-(-((k + 1) * i_) // o_) - (k * i_) // o_ for k in range(o_))
    return total


def _arg(args, kwargs, idx, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[idx] if len(args) > idx else default


class _Tracer(TorchFunctionMode):
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
        self.pending: dict[int, list] = {}
        self.inputs: dict[int, list] = {}
        self.entry: dict[int, tuple] = {}
        self.io: dict[str, tuple] = {}  # container name -> (in shape, out shape), first call
        self.n_spatial = n_spatial
        self.handles = []
        self.root = model
        for name, m in model.named_modules():
            self.names[id(m)] = name or type(m).__name__.lower()
            self.types[name] = type(m).__name__
            if next(m.children(), None) is None:
                self.leaf.add(id(m))
            self.handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
            self.handles.append(m.register_forward_hook(self._post, with_kwargs=True))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    # -- module hooks -----------------------------------------------------------------------
    def _pre(self, m, args, kwargs):
        if id(m) not in self.names:  # a copy of the model (e.g. a size probe): not ours
            return None
        self.stack.append(m)
        if id(m) not in self.leaf and id(m) not in self.entry:
            x = _first_tensor(args) if args else _first_tensor(kwargs)
            self.entry[id(m)] = tuple(x.shape[1:]) if x is not None else ()
        if id(m) in self.leaf:
            self.leaf_depth += 1
            self.pending.setdefault(id(m), []).append([])  # functional ops run inside it
            self.inputs.setdefault(id(m), []).append(_tensors(args) + _tensors(kwargs))
        return None

    def _post(self, m, args, kwargs, out):
        if id(m) not in self.names:
            return None
        if self.stack and self.stack[-1] is m:
            self.stack.pop()
        if id(m) not in self.leaf:
            name = self.names[id(m)]
            y = _first_tensor(out)
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
            return None
        self.leaf_depth -= 1
        inputs, inner = self.inputs[id(m)].pop(), self.pending[id(m)].pop()
        with torch._C.DisableTorchFunction():
            self._leaf_row(m, inputs, out, inner)
        return None

    def current_leaf(self) -> nn.Module | None:
        """The innermost leaf running now (after an exception: the one that failed)."""
        for m in reversed(self.stack):
            if id(m) in self.leaf:
                return m
        return None

    def _row_name(self, base: str) -> str:
        n = self.calls.get(base, 0) + 1
        self.calls[base] = n
        return base if n == 1 else f"{base}#{n}"

    def _leaf_row(self, m: nn.Module, inputs: list[torch.Tensor], out: Any, inner: list) -> None:
        x = inputs[0] if inputs else None
        y = _first_tensor(out)
        kind = _kind(m)
        geo_in = _merge([_geo(t) for t in inputs]) if inputs else None
        if geo_in is None:
            geo_in = ((1,) * self.n_spatial, (1,) * self.n_spatial)
        row = LayerRow(name=self._row_name(self.names[id(m)]), type=type(m).__name__, kind=kind,
                       in_shape=tuple(x.shape[1:]) if x is not None else (),
                       out_shape=tuple(y.shape[1:]) if y is not None else ())
        # parameters are counted once, at a module's first call (shared modules, reused ReLUs)
        if id(m) not in self.seen_params:
            self.seen_params.add(id(m))
            row.params = sum(p.numel() for p in m.parameters(recurse=False))
        geo_out = geo_in
        if kind == "conv":
            nd = len(m.kernel_size)
            row.filters, row.kernel = m.out_channels, tuple(m.kernel_size)
            row.stride, row.groups = tuple(m.stride), m.groups
            row.pad = _tup(m.padding, nd) if not isinstance(m.padding, str) else m.padding
            if m.transposed:  # each input element scatters into Cout/groups*K*K outputs
                row.macs = x.numel() * (m.out_channels // m.groups) * math.prod(m.kernel_size)
                geo_out = (geo_in[0], tuple(max(1, j // s) for j, s in
                                            zip(geo_in[1], _tup(m.stride, self.n_spatial))))
            else:
                row.macs = y.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)
                geo_out = _window(geo_in, row.kernel, row.stride, tuple(m.dilation))
        elif kind == "linear":
            row.filters = m.out_features
            row.macs = y.numel() * m.in_features
        elif kind == "pool" and isinstance(m, _ADAPTIVE):
            geo_out, row.macs = self._adaptive(x, y, geo_in)
            row.kernel = self._adaptive_kernel(x, y)
        elif kind == "pool":
            nd = max(1, x.dim() - 2)
            row.kernel = _tup(m.kernel_size, nd)
            row.stride = _tup(m.stride if m.stride is not None else m.kernel_size, nd)
            row.pad = _tup(getattr(m, "padding", 0), nd)
            row.macs = y.numel() * math.prod(row.kernel)
            dil = getattr(m, "dilation", 1)
            geo_out = _window(geo_in, row.kernel, row.stride, _tup(dil, nd))
        elif kind == "flatten" and x is not None and y is not None and y.dim() < x.dim():
            geo_out = _global(geo_in, x.shape[2:])
        elif kind == "other" and inner:  # a custom module: what its functional ops cost
            row.macs = sum(op["macs"] for op in inner)
            first = next((op for op in inner if op["kind"] in ("conv", "pool")), None)
            if first is not None and len(inner) == 1 or first is not None and first["kind"] == "conv":
                for k in ("kernel", "stride", "pad", "filters", "groups"):
                    setattr(row, k, first.get(k))
            geo_out = _apply_ops(geo_in, inner)
        if kind not in NO_MEMORY_KINDS and y is not None:
            row.memory = sum(t.numel() * t.element_size() for t in _tensors(out))
        row.rf, row.eff_stride = geo_out
        self.rows.append(row)
        _set_geo(out, geo_out)

    def _adaptive_kernel(self, x, y):
        return tuple(-(-i // o) for i, o in zip(x.shape[2:], y.shape[2:]))

    def _adaptive(self, x, y, geo_in):
        macs = x.shape[0] * x.shape[1] * _adaptive_macs(x.shape[2:], y.shape[2:])
        if tuple(y.shape[2:]) == tuple(x.shape[2:]):
            return geo_in, macs
        if all(o == 1 for o in y.shape[2:]):
            return _global(geo_in, x.shape[2:]), macs
        k = self._adaptive_kernel(x, y)
        s = tuple(max(1, i // o) for i, o in zip(x.shape[2:], y.shape[2:]))
        return _window(geo_in, k, s), macs

    # -- functional ops ------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not isinstance(out, (torch.Tensor, tuple, list)):
            return out
        inner = None
        if self.leaf_depth:
            # inside a leaf: its own kind's formula counts it, unless it is a custom module
            # ("other"), whose convs / matmuls / pools are counted as it runs them
            leaf = self.current_leaf()
            if leaf is None or _kind(leaf) != "other" or not self.pending.get(id(leaf)):
                return out
            inner = self.pending[id(leaf)][-1]
        ins = _tensors(args) + _tensors(kwargs)
        if not ins or not any(isinstance(o, torch.Tensor) for o in _tensors(out)):
            return out
        with torch._C.DisableTorchFunction():
            if inner is not None:
                op = _op_cost(getattr(func, "__name__", ""), args, kwargs, ins[0], _first_tensor(out))
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

    def _functional(self, func, args, kwargs, ins, out) -> None:
        name = getattr(func, "__name__", "")
        x, y = ins[0], _first_tensor(out)
        geo_in = _merge([_geo(t) for t in ins])
        flat = (name in ("flatten", "view", "reshape") and y is not None and x.dim() >= 3
                and y.dim() == 2)
        op = None if flat else _op_cost(name, args, kwargs, x, y)
        if not flat and op is None:
            _set_geo(out, geo_in)  # element-wise (add, cat, relu, ...): carry the max along
            return
        if geo_in is None:
            geo_in = ((1,) * self.n_spatial, (1,) * self.n_spatial)
        parent = self._container()
        base = "flatten" if flat else op["op"]
        row = LayerRow(name=self._row_name(f"{parent}.{base}" if parent else base),
                       type=f"F.{base}", kind="flatten" if flat else op["kind"],
                       in_shape=tuple(x.shape[1:]), out_shape=tuple(y.shape[1:]))
        if flat:
            geo_out = _global(geo_in, x.shape[2:])
        else:
            geo_out = _apply_ops(geo_in, [op])
            row.macs = op["macs"]
            for k in ("kernel", "stride", "pad", "filters", "groups"):
                setattr(row, k, op.get(k))
        row.memory = y.numel() * y.element_size()
        row.rf, row.eff_stride = geo_out
        self.rows.append(row)
        _set_geo(out, geo_out)


def _op_cost(name: str, args, kwargs, x: torch.Tensor, y: torch.Tensor | None) -> dict | None:
    """Multiply-adds and geometry of a functional conv / linear / matmul / pool; None otherwise."""
    if y is None:
        return None
    base = name.lstrip("_").replace("_with_indices", "")
    if base in ("conv1d", "conv2d", "conv3d"):
        w = _arg(args, kwargs, 1, "weight")
        nd = w.dim() - 2
        pad = _arg(args, kwargs, 4, "padding", 0)
        return {"op": base, "kind": "conv", "macs": y.numel() * math.prod(w.shape[1:]),
                "kernel": tuple(w.shape[2:]), "stride": _tup(_arg(args, kwargs, 3, "stride", 1), nd),
                "pad": pad if isinstance(pad, str) else _tup(pad, nd), "filters": w.shape[0],
                "groups": _arg(args, kwargs, 6, "groups", 1),
                "dilation": _tup(_arg(args, kwargs, 5, "dilation", 1), nd)}
    if base in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        w = _arg(args, kwargs, 1, "weight")
        return {"op": base, "kind": "conv", "macs": x.numel() * math.prod(w.shape[1:]),
                "kernel": tuple(w.shape[2:]), "transposed": True}
    if base == "linear":
        w = _arg(args, kwargs, 1, "weight")
        return {"op": base, "kind": "linear", "macs": y.numel() * w.shape[-1], "filters": w.shape[0]}
    if base in ("matmul", "mm", "bmm", "addmm", "baddbmm", "addbmm"):
        a = _arg(args, kwargs, 1 if base.startswith("add") or base == "baddbmm" else 0, "mat1")
        if not isinstance(a, torch.Tensor):
            return None
        return {"op": base, "kind": "linear", "macs": y.numel() * a.shape[-1]}
    if base == "multi_head_attention_forward":  # (L, N, E) query, (S, N, E) key and value
        key = _arg(args, kwargs, 1, "key")
        (L, N, E), S = x.shape, key.shape[0]
        # q, k, v and output projections, then scores q.k and their weighted sum of v
        return {"op": "attention", "kind": "linear",
                "macs": N * (2 * L * E * E + 2 * S * E * E + 2 * L * S * E)}
    if base.endswith(("pool1d", "pool2d", "pool3d")) and x.dim() >= 3:
        nd = x.dim() - 2
        if base.startswith("adaptive"):
            return {"op": base, "kind": "pool", "adaptive": tuple(x.shape[2:]),
                    "macs": x.shape[0] * x.shape[1] * _adaptive_macs(x.shape[2:], y.shape[2:]),
                    "kernel": tuple(-(-i // o) for i, o in zip(x.shape[2:], y.shape[2:])),
                    "out": tuple(y.shape[2:])}
        kernel = _tup(_arg(args, kwargs, 1, "kernel_size"), nd)
        stride = _arg(args, kwargs, 2, "stride")
        return {"op": base, "kind": "pool", "macs": y.numel() * math.prod(kernel), "kernel": kernel,
                "stride": _tup(stride if stride not in (None, []) else kernel, nd),
                "pad": _tup(_arg(args, kwargs, 3, "padding", 0), nd)}
    return None


def _apply_ops(geo, ops: list[dict]):
    """Receptive field after a sequence of functional ops (those with a window)."""
    for op in ops:
        if op.get("adaptive"):
            i_, o_ = op["adaptive"], op["out"]
            if all(o == 1 for o in o_):
                geo = _global(geo, i_)
            elif tuple(i_) != tuple(o_):
                geo = _window(geo, op["kernel"], tuple(max(1, a // b) for a, b in zip(i_, o_)))
        elif op.get("transposed"):
            continue
        elif op.get("stride") is not None:
            geo = _window(geo, op["kernel"], op["stride"], op.get("dilation"))
    return geo


def _check_input_size(input_size: Any) -> tuple[int, ...]:
    if (not isinstance(input_size, (tuple, list)) or not input_size
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_size)):
        raise InvalidArgumentError(
            f"input_size must be positive integers (C, H, W), e.g. (3, 224, 224); got {input_size!r}")
    return tuple(input_size)


def _fmt(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def _out_size(m: nn.Module, x: torch.Tensor) -> str | None:
    """What a conv/pool layer would output for x (shown when that is zero or negative)."""
    if not isinstance(m, (_CONV,) + _POOL) or isinstance(m.padding if hasattr(m, "padding") else 0, str):
        return None
    nd = x.dim() - 2
    k = _tup(m.kernel_size, nd)
    s = _tup(m.stride if m.stride is not None else m.kernel_size, nd)
    p = _tup(getattr(m, "padding", 0), nd)
    d = _tup(getattr(m, "dilation", 1), nd)
    sizes = [(h + 2 * pi - di * (ki - 1) - 1) // si + 1
             for h, ki, si, pi, di in zip(x.shape[2:], k, s, p, d)]
    return "x".join(str(v) for v in sizes)


def _too_small(model, model_name, size, tracer: _Tracer, leaf: nn.Module, err) -> InputShapeError:
    x = tracer.inputs.get(id(leaf), [[None]])[-1]
    x = x[0] if x else None
    where = f"layer '{tracer.names[id(leaf)]}' ({type(leaf).__name__}"
    if isinstance(leaf, (_CONV,) + _POOL):
        k = _tup(leaf.kernel_size, 2)
        s = _tup(leaf.stride if leaf.stride is not None else leaf.kernel_size, 2)
        p = getattr(leaf, "padding", 0)
        where += f" {_fmt(k)}, stride {_fmt(s)}, pad {p if isinstance(p, str) else _fmt(_tup(p, 2))}"
    where += ")"
    feat = _fmt(x.shape[1:]) if x is not None else "?"
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
            f"input {_fmt(size)} is too small for {model_name}: the spatial size reaches zero at "
            f"{where}: its input is {feat}" + (f", its output would be {out}" if out else "") + need)
    return InputShapeError(
        f"input {_fmt(size)} does not fit {model_name}: {where} cannot take its input of shape "
        f"{feat} ({str(err).splitlines()[0] if str(err) else type(err).__name__})")


def analyze(model_or_name: nn.Module | str, input_size: Sequence[int] | None = None,
            batch_size: int = 1) -> Report:
    """Per-layer shapes, memory, parameters and multiply-adds of a model, without computing it.

    `model_or_name`: any nn.Module (left unchanged) or a registered name (built on the meta
    device). `input_size`: (C, H, W) of one sample; defaults to a registered model's native size.
    """
    from ..registry import create_model, get_entry

    if isinstance(model_or_name, str):
        entry = get_entry(model_or_name)
        if input_size is None:
            input_size = entry.input_size
        size = _check_input_size(input_size)
        with torch.device("meta"):  # built for the channels it is asked about
            model = create_model(model_or_name, in_chans=size[0])
        model_name = model_or_name
    elif isinstance(model_or_name, nn.Module):
        model = model_or_name
        model_name = getattr(model, "model_name", None) or type(model).__name__
        if input_size is None:
            raise InvalidArgumentError(
                f"input_size is required for a module ({model_name}); e.g. input_size=(3, 224, 224)")
    else:
        raise InvalidArgumentError(
            f"analyze() takes an nn.Module or a model name, got {type(model_or_name).__name__}")
    size = _check_input_size(input_size)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")

    state = meta_state(model)
    was = {m: m.training for m in model.modules()}
    model.eval()  # inference graph: no auxiliary heads, dropout as identity
    tracer = _Tracer(model, n_spatial=max(0, len(size) - 1))
    x = torch.empty((batch_size, *size), device="meta")
    try:
        with torch.no_grad(), tracer:
            call_with_state(model, x, state)
    except Exception as err:
        leaf = tracer.current_leaf()
        if leaf is not None:
            raise _too_small(model, model_name, size, tracer, leaf, err) from err
        if isinstance(err, CnnzooError):
            raise
        raise AnalysisError(
            f"could not trace {model_name} on the meta device with input {_fmt(size)}: "
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
