"""The lecture's cost formulas, one per operator: parameters, multiply-adds and window geometry.

`leaf_cost` prices a leaf module (conv, linear, pool, flatten, or a custom module by the
functional ops it ran); `op_cost` prices one functional op (F.conv2d, F.linear, matmul,
F.*pool*, attention) and returns None for element-wise ones, which cost nothing here.
Memory is not a rule of its own: it is the size of the output, except for NO_MEMORY_KINDS.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from . import receptive
from .receptive import Geo
from .report import LayerRow

CONV = nn.modules.conv._ConvNd
POOL = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._LPPoolNd)
ADAPTIVE = (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
_NORM = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
         nn.CrossMapLRN2d)
_DROPOUT = nn.modules.dropout._DropoutNd
_FLATTEN = (nn.Flatten, nn.Unflatten)

# Kinds whose output is not counted as memory: activations are taken as in place (what
# ReLU(inplace=True) does, and what an inference engine fuses), dropout and identity return
# their input at inference.
NO_MEMORY_KINDS = frozenset({"act", "dropout", "identity"})

# The row fields an op record may carry over to its row
_WINDOW_FIELDS = ("kernel", "stride", "pad", "filters", "groups")


def kind(m: nn.Module) -> str:
    """The module's cost family: conv, linear, pool, norm, dropout, identity, flatten, act, other."""
    if isinstance(m, CONV):
        return "conv"
    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, POOL + ADAPTIVE):
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


def tup(v: Any, n: int) -> tuple[int, ...]:
    """An int-or-sequence layer argument as an n-tuple of ints (kernel_size=3 -> (3, 3))."""
    if isinstance(v, (tuple, list)):
        return tuple(int(x) for x in v)
    return (int(v),) * n


def _arg(args: Sequence[Any], kwargs: dict[str, Any], idx: int, name: str,
         default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[idx] if len(args) > idx else default


def _adaptive_macs(in_sp: Sequence[int], out_sp: Sequence[int]) -> int:
    """Sum over outputs of the adaptive window size (PyTorch's start=floor, end=ceil)."""
    total = 1
    for i_, o_ in zip(in_sp, out_sp):
        total *= sum(-(-((k + 1) * i_) // o_) - (k * i_) // o_ for k in range(o_))
    return total


def copy_window(row: LayerRow, op: dict[str, Any]) -> None:
    """Show an op's kernel / stride / pad / filters / groups on its row."""
    for k in _WINDOW_FIELDS:
        setattr(row, k, op.get(k))


# -- functional ops ----------------------------------------------------------------------------

def op_cost(name: str, args: Sequence[Any], kwargs: dict[str, Any], x: torch.Tensor,
            y: torch.Tensor | None) -> dict[str, Any] | None:
    """Multiply-adds and geometry of a functional conv / linear / matmul / pool; None otherwise."""
    if y is None:
        return None
    base = name.lstrip("_").replace("_with_indices", "")
    if base in ("conv1d", "conv2d", "conv3d"):
        return _conv_op(base, args, kwargs, y)
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
        return _pool_op(base, args, kwargs, x, y)
    return None


def _conv_op(base: str, args: Sequence[Any], kwargs: dict[str, Any],
             y: torch.Tensor) -> dict[str, Any]:
    w = _arg(args, kwargs, 1, "weight")
    nd = w.dim() - 2
    pad = _arg(args, kwargs, 4, "padding", 0)
    return {"op": base, "kind": "conv", "macs": y.numel() * math.prod(w.shape[1:]),
            "kernel": tuple(w.shape[2:]), "stride": tup(_arg(args, kwargs, 3, "stride", 1), nd),
            "pad": pad if isinstance(pad, str) else tup(pad, nd), "filters": w.shape[0],
            "groups": _arg(args, kwargs, 6, "groups", 1),
            "dilation": tup(_arg(args, kwargs, 5, "dilation", 1), nd)}


def _pool_op(base: str, args: Sequence[Any], kwargs: dict[str, Any], x: torch.Tensor,
             y: torch.Tensor) -> dict[str, Any]:
    nd = x.dim() - 2
    if base.startswith("adaptive"):
        return {"op": base, "kind": "pool", "adaptive": tuple(x.shape[2:]),
                "macs": x.shape[0] * x.shape[1] * _adaptive_macs(x.shape[2:], y.shape[2:]),
                "kernel": receptive.adaptive_kernel(x.shape[2:], y.shape[2:]),
                "out": tuple(y.shape[2:])}
    kernel = tup(_arg(args, kwargs, 1, "kernel_size"), nd)
    stride = _arg(args, kwargs, 2, "stride")
    return {"op": base, "kind": "pool", "macs": y.numel() * math.prod(kernel), "kernel": kernel,
            "stride": tup(stride if stride not in (None, []) else kernel, nd),
            "pad": tup(_arg(args, kwargs, 3, "padding", 0), nd)}


# -- leaf modules ------------------------------------------------------------------------------

def leaf_cost(row: LayerRow, m: nn.Module, x: torch.Tensor | None, y: torch.Tensor | None,
              geo: Geo, inner: list[dict[str, Any]], n_spatial: int) -> Geo:
    """Fill `row`'s window fields and MACs for leaf `m` (input x, output y); return the geometry
    of its output. `inner`: the functional ops a custom module ran (op_cost records)."""
    k = row.kind
    if k == "conv":
        return _conv_leaf(row, m, x, y, geo, n_spatial)
    if k == "linear":
        row.filters = m.out_features
        row.macs = y.numel() * m.in_features
        return geo
    if k == "pool" and isinstance(m, ADAPTIVE):
        in_sp, out_sp = x.shape[2:], y.shape[2:]
        row.macs = x.shape[0] * x.shape[1] * _adaptive_macs(in_sp, out_sp)
        row.kernel = receptive.adaptive_kernel(in_sp, out_sp)
        return receptive.adaptive(geo, in_sp, out_sp)
    if k == "pool":
        nd = max(1, x.dim() - 2)
        row.kernel = tup(m.kernel_size, nd)
        row.stride = tup(m.stride if m.stride is not None else m.kernel_size, nd)
        row.pad = tup(getattr(m, "padding", 0), nd)
        row.macs = y.numel() * math.prod(row.kernel)
        return receptive.window(geo, row.kernel, row.stride, tup(getattr(m, "dilation", 1), nd))
    if k == "flatten" and x is not None and y is not None and y.dim() < x.dim():
        return receptive.whole_map(geo, x.shape[2:])
    if k == "other" and inner:  # a custom module: what its functional ops cost
        row.macs = sum(op["macs"] for op in inner)
        first = next((op for op in inner if op["kind"] in ("conv", "pool")), None)
        if first is not None and (len(inner) == 1 or first["kind"] == "conv"):
            copy_window(row, first)
        return receptive.apply_ops(geo, inner)
    return geo


def _conv_leaf(row: LayerRow, m: nn.Module, x: torch.Tensor, y: torch.Tensor, geo: Geo,
               n_spatial: int) -> Geo:
    nd = len(m.kernel_size)
    row.filters, row.kernel = m.out_channels, tuple(m.kernel_size)
    row.stride, row.groups = tuple(m.stride), m.groups
    row.pad = tup(m.padding, nd) if not isinstance(m.padding, str) else m.padding
    if m.transposed:  # each input element scatters into Cout/groups*K*K outputs
        row.macs = x.numel() * (m.out_channels // m.groups) * math.prod(m.kernel_size)
        return receptive.transposed(geo, tup(m.stride, n_spatial))
    row.macs = y.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)
    return receptive.window(geo, row.kernel, row.stride, tuple(m.dilation))
