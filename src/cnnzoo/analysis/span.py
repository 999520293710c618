"""Where a unit's receptive field lies on the input: the analyzer's walk with a start added.

receptive.py carries (rf, jump) per tensor: how wide a unit's field is and how far apart
neighbouring units' fields are. To draw the field of unit (y, x) on the image one also needs
where unit 0's field starts. `SpanTracer` is the analyzer's own Tracer (same rows, same names,
same order) that also carries a Span per spatial dim, (lo, hi, jump): unit i sees input pixels
lo + i*jump .. hi + i*jump (lo < 0 past a padded border). A window of kernel k, stride s,
padding p, dilation d maps it to (lo - p*jump, hi + ((k-1)*d - p)*jump, jump*s), so hi - lo + 1
grows exactly as receptive.window grows rf; branches meeting (residual add, inception concat)
take the union, lo = min, hi = max. The tracer runs on the meta device (geometry only) or on
real tensors, where it can also hand back one row's input and output (`capture`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..contract import call_with_state, meta_state
from . import receptive, rules
from .core import _resolve, analyze
from .report import Report
from .tensors import first_tensor, tensors
from .walk import Tracer

Span = tuple[tuple[int, int, int], ...]  # (lo, hi, jump) per spatial dim of the network input
_ATTR = "_cnnzoo_span"


def unit_span(n_spatial: int) -> Span:
    """The network input itself: element i sees pixel i."""
    return ((0, 0, 1),) * n_spatial


def _per_dim(v: Any, n: int, default: int) -> tuple[int, ...]:
    if v is None:
        return (default,) * n
    t = rules.tup(v, n)
    return t[-n:] if len(t) >= n else t + (t[-1],) * (n - len(t))


def window(span: Span, kernel: Any, stride: Any, pad: Any = 0, dilation: Any = 1) -> Span:
    """A sliding window (conv, pool); pad may be 'same' / 'valid' as nn.Conv2d takes it."""
    n = len(span)
    k, s, d = _per_dim(kernel, n, 1), _per_dim(stride, n, 1), _per_dim(dilation, n, 1)
    if isinstance(pad, str):  # 'same' pads (k-1)*d in all, the smaller half first
        p = tuple(((ki - 1) * di) // 2 if pad == "same" else 0 for ki, di in zip(k, d))
    else:
        p = _per_dim(pad, n, 0)
    return tuple((lo - pi * j, hi + ((ki - 1) * di - pi) * j, j * si)
                 for (lo, hi, j), ki, si, pi, di in zip(span, k, s, p, d))


def whole_map(span: Span, spatial: Sequence[int]) -> Span:
    """Every output sees the whole map (global pooling, flatten)."""
    sp = tuple(spatial[-len(span):])
    return tuple((lo, hi + (h - 1) * j, j * h) for (lo, hi, j), h in zip(span, sp))


def adaptive(span: Span, in_sp: Sequence[int], out_sp: Sequence[int]) -> Span:
    """receptive.adaptive's reading of an adaptive pool, with the start."""
    if all(o == 1 for o in out_sp):
        return whole_map(span, in_sp)
    if tuple(in_sp) == tuple(out_sp):
        return span
    stride = tuple(max(1, i // o) for i, o in zip(in_sp, out_sp))
    return window(span, receptive.adaptive_kernel(in_sp, out_sp), stride)


def merge(spans: Sequence[Span | None]) -> Span | None:
    """Branches meeting: the union of their fields."""
    known = [s for s in spans if s is not None]
    if not known:
        return None
    return tuple((min(s[i][0] for s in known), max(s[i][1] for s in known), max(s[i][2] for s in known))
                 for i in range(len(known[0])))


def span_of(t: torch.Tensor) -> Span | None:
    return getattr(t, _ATTR, None)


def _tag(out: Any, span: Span | None) -> None:
    if span is None:
        return
    for t in tensors(out):
        try:
            setattr(t, _ATTR, span)
        except (AttributeError, RuntimeError):
            pass


def rf_of(span: Span) -> tuple[int, ...]:
    """The field's size per dim: the analyzer's rf."""
    return tuple(hi - lo + 1 for lo, hi, _ in span)


def box(span: Span, index: Sequence[int]) -> list[tuple[int, int]]:
    """The input pixels (first, last) per dim that unit `index` sees, before clipping."""
    return [(lo + i * j, hi + i * j) for (lo, hi, j), i in zip(span, index)]


def _ops_span(span: Span, ops: list[dict[str, Any]]) -> Span:
    """receptive.apply_ops with the start."""
    for op in ops:
        if op.get("adaptive"):
            span = adaptive(span, op["adaptive"], op["out"])
        elif op.get("transposed"):
            continue
        elif op.get("stride") is not None:
            span = window(span, op["kernel"], op["stride"], op.get("pad", 0), op.get("dilation"))
    return span


class SpanTracer(Tracer):
    """The analyzer's Tracer; also `spans[row name]` of each row's output, and, for the row named
    `capture`, its input and output tensors in `captured`."""

    def __init__(self, model: nn.Module, n_spatial: int, capture: str | None = None) -> None:
        super().__init__(model, n_spatial)
        self.spans: dict[str, Span] = {}
        self.capture = capture
        self.captured: tuple[torch.Tensor, torch.Tensor] | None = None

    def _done(self, span: Span, out: Any, x: torch.Tensor | None) -> None:
        row = self.rows[-1]
        self.spans[row.name] = span
        _tag(out, span)
        y = first_tensor(out)
        if row.name == self.capture and x is not None and y is not None:
            self.captured = (x, y)

    def _leaf_row(self, m: nn.Module, inputs: list[torch.Tensor], out: Any,
                  inner: list[dict[str, Any]]) -> None:
        super()._leaf_row(m, inputs, out, inner)
        span = merge([span_of(t) for t in inputs]) or unit_span(self.n_spatial)
        x, y, row = (inputs[0] if inputs else None), first_tensor(out), self.rows[-1]
        if row.kind == "conv" and not m.transposed:
            span = window(span, m.kernel_size, m.stride, m.padding, m.dilation)
        elif row.kind == "pool" and isinstance(m, rules.ADAPTIVE):
            span = adaptive(span, x.shape[2:], y.shape[2:])
        elif row.kind == "pool":
            span = window(span, row.kernel, row.stride, row.pad, getattr(m, "dilation", 1))
        elif row.kind == "flatten" and x is not None and y is not None and y.dim() < x.dim():
            span = whole_map(span, x.shape[2:])
        elif row.kind == "other" and inner:
            span = _ops_span(span, inner)
        self._done(span, out, x)

    def _functional(self, func: Callable, args: tuple, kwargs: dict, ins: list[torch.Tensor],
                    out: Any) -> None:
        n = len(self.rows)
        super()._functional(func, args, kwargs, ins, out)
        span = merge([span_of(t) for t in ins])
        if len(self.rows) == n:  # element-wise: carry the union along
            _tag(out, span)
            return
        span = span or unit_span(self.n_spatial)
        x, y = ins[0], first_tensor(out)
        if self.rows[-1].kind == "flatten":
            span = whole_map(span, x.shape[2:])
        else:
            op = rules.op_cost(getattr(func, "__name__", ""), args, kwargs, x, y)
            span = _ops_span(span, [op] if op else [])
        self._done(span, out, x)


def trace(model: nn.Module, x: torch.Tensor, capture: str | None = None,
          state: dict | None = None) -> SpanTracer:
    """Run `model` on `x` (meta or real, gradients as the caller set them) under a SpanTracer."""
    was = {m: m.training for m in model.modules()}
    model.eval()
    tracer = SpanTracer(model, n_spatial=x.dim() - 2, capture=capture)
    try:
        with tracer:
            call_with_state(model, x, state)
    finally:
        tracer.remove()
        for m, t in was.items():
            m.training = t
    return tracer


def spans(model_or_name: nn.Module | str, input_size: Sequence[int] | None = None
          ) -> tuple[Report, dict[str, Span]]:
    """The analyzer's report and the span of every row, from one meta-device pass each."""
    report = analyze(model_or_name, input_size)  # its checks and errors come first
    model, _, size = _resolve(model_or_name, report.input_size)
    with torch.no_grad():
        tracer = trace(model, torch.empty((1, *size), device="meta"), state=meta_state(model))
    return report, tracer.spans
