"""Receptive field and effective stride (seed 003: two 3x3 convs see what one 5x5 sees).

While the network is traced, every tensor carries a geometry (rf, jump) per spatial dim of the
network input: the receptive field of one of its elements on the input, and the distance on
the input between neighbouring elements (the effective stride). A conv or pool with kernel k,
stride s and dilation d maps (rf, jump) to (rf + (k-1)*d*jump, jump*s); global pooling and
flatten see the whole map; merging branches (residual add, inception concat) takes the max over
the branches. Values are the theoretical field, not clipped to the image.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch

Geo = tuple[tuple[int, ...], tuple[int, ...]]  # (rf, jump), one entry per spatial dim

_ATTR = "_cnnzoo_geo"  # where a traced tensor keeps its geometry


def unit(n_spatial: int) -> Geo:
    """The network input's own geometry: each element sees one pixel."""
    return (1,) * n_spatial, (1,) * n_spatial


def geo_of(t: torch.Tensor) -> Geo | None:
    return getattr(t, _ATTR, None)


def tag(ts: Iterable[torch.Tensor], geo: Geo | None) -> None:
    """Attach `geo` to each tensor (no-op for None)."""
    if geo is None:
        return
    for t in ts:
        try:
            setattr(t, _ATTR, geo)
        except (AttributeError, RuntimeError):  # e.g. torch.Size, frozen subclasses
            pass


def merge(geos: Iterable[Geo | None]) -> Geo | None:
    """Branches meeting (add, cat): the largest field and stride per dim; None if none known."""
    known = [g for g in geos if g is not None]
    if not known:
        return None
    rf = tuple(max(g[0][i] for g in known) for i in range(len(known[0][0])))
    jump = tuple(max(g[1][i] for g in known) for i in range(len(known[0][1])))
    return rf, jump


def window(geo: Geo, kernel: tuple[int, ...], stride: tuple[int, ...],
           dilation: tuple[int, ...] | None = None) -> Geo:
    """A sliding window (conv, pool); a short kernel/stride is padded with its last value."""
    rf, jump = geo
    n = len(rf)
    k = kernel[-n:] if len(kernel) >= n else kernel + (kernel[-1],) * (n - len(kernel))
    s = stride[-n:] if len(stride) >= n else stride + (stride[-1],) * (n - len(stride))
    d = dilation[-n:] if dilation and len(dilation) >= n else (1,) * n
    return (tuple(r + (ki - 1) * di * j for r, ki, di, j in zip(rf, k, d, jump)),
            tuple(j * si for j, si in zip(jump, s)))


def whole_map(geo: Geo, spatial: Sequence[int]) -> Geo:
    """Every output element sees the whole map (global pooling, flatten before an FC layer)."""
    rf, jump = geo
    n = len(rf)
    sp = tuple(spatial[-n:]) if len(spatial) >= n else (1,) * n
    return (tuple(r + (h - 1) * j for r, h, j in zip(rf, sp, jump)),
            tuple(j * h for j, h in zip(jump, sp)))


def adaptive_kernel(in_sp: Sequence[int], out_sp: Sequence[int]) -> tuple[int, ...]:
    """The widest window an adaptive pool uses per dim: ceil(in / out)."""
    return tuple(-(-i // o) for i, o in zip(in_sp, out_sp))


def adaptive(geo: Geo, in_sp: Sequence[int], out_sp: Sequence[int]) -> Geo:
    """An adaptive pool: identity at equal sizes, whole map to 1x1, else its widest window."""
    if all(o == 1 for o in out_sp):
        return whole_map(geo, in_sp)
    if tuple(in_sp) == tuple(out_sp):
        return geo
    stride = tuple(max(1, i // o) for i, o in zip(in_sp, out_sp))
    return window(geo, adaptive_kernel(in_sp, out_sp), stride)


def transposed(geo: Geo, stride: tuple[int, ...]) -> Geo:
    """A transposed conv: same field, neighbours `stride` times closer on the input."""
    return geo[0], tuple(max(1, j // s) for j, s in zip(geo[1], stride))


def apply_ops(geo: Geo, ops: list[dict[str, Any]]) -> Geo:
    """Geometry after a sequence of functional ops (rules.op_cost's records)."""
    for op in ops:
        if op.get("adaptive"):
            geo = adaptive(geo, op["adaptive"], op["out"])
        elif op.get("transposed"):
            continue
        elif op.get("stride") is not None:
            geo = window(geo, op["kernel"], op["stride"], op.get("dilation"))
    return geo
