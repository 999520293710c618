"""The numbers of the Convolution page: a zoo model's conv and pooling layers as the analyzer
rows them, real activations at one layer, one unit's receptive field (the analyzer's geometry,
analysis/span.py) and its effective receptive field (autograd), and the analyzer's costs of a
single layer built from hyper-parameters (what the page's live arithmetic is tested against).

Activations come from the zoo model built with seed 0 (random weights: nothing is downloaded
here), run on CPU; a drawn digit or an uploaded image is resized to the layer's input size."""

from __future__ import annotations

import difflib
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from ..analysis import analyze
from ..analysis import span as spanlib
from ..analysis.report import LayerRow
from ..data.preprocess import Preprocess
from ..errors import CnnzooError, InvalidArgumentError
from ..registry import create_model, get_entry
from .inference import _unit, _viridis, png_url
from .state import NotFoundError

MAX_SIDE = 2048  # geometry and costs (meta device: no memory)
MAX_RUN_SIDE = 512  # real activations and gradients on the CPU
MAX_CHANNELS = 8192
_RUN_LOCK = threading.Lock()  # one real forward at a time: the tracer hooks the shared model
_MODELS: OrderedDict[tuple[str, int], nn.Module] = OrderedDict()


class LayerKindError(CnnzooError, ValueError):
    """A layer that is not a convolution or a pooling layer (HTTP 400)."""


def check_size(size: tuple[int, ...], limit: int = MAX_SIDE) -> tuple[int, ...]:
    if len(size) != 3:
        raise InvalidArgumentError(f"the Convolution page takes 2-D inputs CxHxW, got {size}")
    if max(size[1:]) > limit or size[0] > MAX_CHANNELS:
        raise InvalidArgumentError(f"input {'x'.join(map(str, size))} is too large here: at most "
                                   f"{limit} pixels a side and {MAX_CHANNELS} channels")
    return size


@lru_cache(maxsize=16)
def _traced(name: str, size: tuple[int, ...] | None) -> tuple[Any, dict[str, spanlib.Span]]:
    return spanlib.spans(name, size)


def _module(name: str, size: tuple[int, ...], row_name: str) -> nn.Module | None:
    with torch.device("meta"):
        model = create_model(name, in_chans=size[0])
    return dict(model.named_modules()).get(row_name.split("#")[0])


def _pair(v: Any) -> list[int]:
    t = list(v) if isinstance(v, (tuple, list)) else [int(v), int(v)]
    return t[-2:] if len(t) >= 2 else t * 2


def _hyper(row: LayerRow, m: nn.Module | None) -> dict[str, Any]:
    """The hyper-parameters the page's arithmetic takes (kernel, stride, pad, dilation per dim)."""
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) or (m is None and row.type.startswith("F.adaptive")):
        op = "adaptive"
    elif row.kind == "conv":
        op = "conv"
    else:
        op = "max" if "Max" in row.type or "max" in row.type else "avg"
    kernel = _pair(row.kernel or 1)
    dil = _pair(getattr(m, "dilation", 1) if op in ("conv", "max") else 1)
    pad = row.pad
    if isinstance(pad, str):
        pad = [((k - 1) * d) // 2 if pad == "same" else 0 for k, d in zip(kernel, dil)]
    return {"op": op, "kernel": kernel, "stride": _pair(row.stride or 1), "pad": _pair(pad or 0),
            "dilation": dil, "groups": row.groups or 1, "cin": row.in_shape[0],
            "cout": row.out_shape[0], "bias": getattr(m, "bias", None) is not None,
            "ceil_mode": bool(getattr(m, "ceil_mode", False))}


def _row_dict(row: LayerRow, span: spanlib.Span, m: nn.Module | None) -> dict[str, Any]:
    return {"name": row.name, "type": row.type, "kind": row.kind, "in_shape": list(row.in_shape),
            "out_shape": list(row.out_shape), "params": row.params, "macs": row.macs,
            "rf": list(row.rf or ()), "eff_stride": list(row.eff_stride or ()),
            "span": [list(s) for s in span], **_hyper(row, m)}


def model_layers(name: str, size: tuple[int, ...] | None) -> dict[str, Any]:
    """Every conv and pooling row of `name` at `size` (default: its native size)."""
    size = check_size(tuple(size) if size else tuple(get_entry(name).input_size))
    report, spans = _traced(name, size)
    with torch.device("meta"):
        mods = dict(create_model(name, in_chans=size[0]).named_modules())
    rows = [_row_dict(r, spans[r.name], mods.get(r.name.split("#")[0]))
            for r in report.rows if r.kind in ("conv", "pool") and len(r.out_shape) == 3]
    return {"model": name, "input_size": list(size), "layers": rows}


def find_layer(name: str, size: tuple[int, ...], layer: str) -> tuple[LayerRow, spanlib.Span]:
    report, spans = _traced(name, size)
    rows = {r.name: r for r in report.rows}
    if layer not in rows:
        close = difflib.get_close_matches(layer, [n for n, r in rows.items() if r.kind in ("conv", "pool")], 3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (GET /api/layers/MODEL lists them)"
        raise NotFoundError(f"{name} has no layer {layer!r}{hint}")
    row = rows[layer]
    if row.kind not in ("conv", "pool") or len(row.out_shape) != 3:
        raise LayerKindError(f"{layer} is a {row.type} ({row.kind}), not a convolution or pooling "
                             "layer: pick one from GET /api/layers/" + name)
    return row, spans[layer]


def layer_info(name: str, size: tuple[int, ...] | None, layer: str) -> dict[str, Any]:
    size = check_size(tuple(size) if size else tuple(get_entry(name).input_size))
    row, span = find_layer(name, size, layer)
    return _row_dict(row, span, _module(name, size, layer))


def unit_box(name: str, size: tuple[int, ...], layer: str, y: int, x: int) -> dict[str, Any]:
    """The input pixels unit (y, x) of `layer` sees: the box before and after clipping."""
    row, span = find_layer(name, size, layer)
    oh, ow = row.out_shape[1:]
    if not (0 <= y < oh and 0 <= x < ow):
        raise InvalidArgumentError(f"unit (y={y}, x={x}) is outside {layer}'s {oh}x{ow} output: "
                                   f"y must be 0..{oh - 1}, x 0..{ow - 1}")
    (y0, y1), (x0, x1) = spanlib.box(span, (y, x))
    h, w = size[1:]
    clipped = [max(0, y0), min(h - 1, y1), max(0, x0), min(w - 1, x1)]
    return {"layer": layer, "unit": [y, x], "box": [y0, y1, x0, x1], "clipped": clipped,
            "rf": list(row.rf), "eff_stride": list(row.eff_stride), "input_size": list(size)}


# -- real activations --------------------------------------------------------------------------

def _model(name: str, chans: int) -> nn.Module:
    key = (name, chans)
    if key not in _MODELS:
        torch.manual_seed(0)
        model = create_model(name, in_chans=chans).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        _MODELS[key] = model
        while len(_MODELS) > 2:
            _MODELS.popitem(last=False)
    _MODELS.move_to_end(key)
    return _MODELS[key]


def prepare(image: np.ndarray, size: tuple[int, ...]) -> tuple[torch.Tensor, np.ndarray]:
    """(H, W) or (H, W, 3) floats in [0, 1] -> the network input (1, C, H, W) and what it shows."""
    from PIL import Image

    c, h, w = size
    rgb = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
    pil = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    arr = np.asarray(pil, dtype=np.float32) / 255
    shown = arr if c == 3 else arr.mean(-1)
    planes = arr.transpose(2, 0, 1) if c == 3 else np.repeat(arr.mean(-1)[None], c, 0)
    pp = Preprocess.default(c, (h, w))  # the zoo's default statistics for c channels
    mean, std = pp.mean, pp.std
    x = (torch.from_numpy(np.ascontiguousarray(planes)) - torch.tensor(mean)[:, None, None]) \
        / torch.tensor(std)[:, None, None]
    return x[None].float(), shown


class _Stop(Exception):
    """Raised once the captured layer has run: nothing after it is needed."""


class _StopTracer(spanlib.SpanTracer):
    def _done(self, span: spanlib.Span, out: Any, x: torch.Tensor | None) -> None:
        super()._done(span, out, x)
        if self.captured is not None:
            self.captured = (self.captured[0].clone(), self.captured[1].clone())  # before in-place ops
            raise _Stop


def _run(name: str, size: tuple[int, ...], layer: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's input and output for network input x (gradients flow when x requires them)."""
    model = _model(name, size[0])
    tracer = _StopTracer(model, n_spatial=2, capture=layer)
    try:
        with tracer:
            model(x)
    except _Stop:
        pass
    finally:
        tracer.remove()
    if tracer.captured is None:
        raise InvalidArgumentError(f"{layer} did not run for this input")
    return tracer.captured


def _map(t: torch.Tensor, ch: int) -> dict[str, Any]:
    ch = min(max(ch, 0), t.shape[1] - 1)
    a = t[0, ch].detach()
    return {"channel": ch, "shape": list(t.shape[1:]), "min": float(a.min()), "max": float(a.max()),
            "png": png_url(_viridis(_unit(a)))}


def watch(name: str, size: tuple[int, ...] | None, layer: str, image: np.ndarray,
          cin: int = 0, cout: int = 0) -> dict[str, Any]:
    """The input image, one channel of the layer's input map and one of its output map."""
    size = check_size(tuple(size) if size else tuple(get_entry(name).input_size), MAX_RUN_SIDE)
    row, _ = find_layer(name, size, layer)
    x, shown = prepare(image, size)
    m = _module(name, size, layer)
    kernel = None
    with _RUN_LOCK, torch.no_grad():
        xin, yout = _run(name, size, layer, x)
        if row.kind == "conv" and m is not None:  # the weights output channel cout applies
            w = _model(name, size[0]).get_submodule(layer.split("#")[0]).weight
            kernel = w[min(max(cout, 0), w.shape[0] - 1), max(cin, 0) % w.shape[1]].tolist()
    return {"layer": _row_dict(row, _traced(name, size)[1][layer], m), "input_size": list(size),
            "image": png_url(shown), "in_map": _map(xin, cin), "out_map": _map(yout, cout),
            "kernel": kernel}


def unit(name: str, size: tuple[int, ...] | None, layer: str, y: int, x_: int,
         image: np.ndarray) -> dict[str, Any]:
    """unit_box, and the effective receptive field: |d unit / d input| summed over channels
    (the unit: all output channels at (y, x)), as a heat map and its nonzero extent."""
    size = check_size(tuple(size) if size else tuple(get_entry(name).input_size), MAX_RUN_SIDE)
    out = unit_box(name, size, layer, y, x_)
    x, _ = prepare(image, size)
    x.requires_grad_(True)
    with _RUN_LOCK, torch.enable_grad():
        _, yout = _run(name, size, layer, x)
        yout[0, :, y, x_].sum().backward()
    g = x.grad[0].abs().sum(0)
    nz = torch.nonzero(g > 0)
    support = ([int(nz[:, 0].min()), int(nz[:, 0].max()), int(nz[:, 1].min()), int(nz[:, 1].max())]
               if len(nz) else None)
    heat = (g / g.max()).sqrt() if float(g.max()) > 0 else g
    out["erf"] = {"support": support, "png": png_url(_viridis(heat.numpy())),
                  "nonzero": int(len(nz))}
    return out


# -- one layer from hyper-parameters -----------------------------------------------------------

def _ints(q: dict[str, str], key: str, default: str, n: int = 2) -> list[int]:
    raw = (q.get(key) or default).lower().replace(",", "x").split("x")
    try:
        v = [int(s) for s in raw]
    except ValueError:
        raise InvalidArgumentError(f"{key} must be an integer or HxW, got {q.get(key)!r}") from None
    if len(v) not in (1, n):
        raise InvalidArgumentError(f"{key} takes 1 or {n} integers, got {q.get(key)!r}")
    if any(abs(i) > MAX_SIDE for i in v):
        raise InvalidArgumentError(f"{key}={q.get(key)} is too large here (at most {MAX_SIDE})")
    return v * n if len(v) == 1 else v


def _one_layer(q: dict[str, str]) -> tuple[nn.Module, tuple[int, int, int]]:
    op = q.get("op", "conv")
    (h, w), k, s, p, d = _ints(q, "input", "32"), _ints(q, "k", "3"), _ints(q, "s", "1"), \
        _ints(q, "p", "0"), _ints(q, "d", "1")
    cin, cout, groups = (_ints(q, key, "1", 1)[0] for key in ("cin", "cout", "groups"))
    for key, v in (("input", h), ("input", w), ("k", k), ("s", s), ("d", d), ("cin", cin),
                   ("cout", cout), ("groups", groups), ("p", [v + 1 for v in p])):
        if min(v if isinstance(v, list) else [v]) < 1:  # PyTorch takes some of these silently
            floor_ = "0 or more" if key == "p" else "1 or more"
            raise InvalidArgumentError(f"{key} must be {floor_}, got {q.get(key)}")
    if op == "conv":
        layer = nn.Conv2d(cin, cout, k, s, p, d, groups, bias=q.get("bias", "1") != "0", device="meta")
    elif op == "max":
        layer = nn.MaxPool2d(k, s, p, d, ceil_mode=q.get("ceil") == "1")
    elif op == "avg":
        layer = nn.AvgPool2d(k, s, p, ceil_mode=q.get("ceil") == "1")
    elif op == "adaptive":
        layer = nn.AdaptiveAvgPool2d(tuple(_ints(q, "out", "1")))
    else:
        raise InvalidArgumentError(f"op must be conv, max, avg or adaptive, got {op!r}")
    return layer, (cin, h, w)


def formula(q: dict[str, str]) -> dict[str, Any]:
    """The analyzer's row for one layer built from the query's hyper-parameters; PyTorch's and
    the analyzer's refusals become a 400 that says why."""
    try:
        layer, size = _one_layer(q)
        report = analyze(nn.Sequential(layer), size)
    except CnnzooError as err:
        cause = f" (PyTorch: {err.__cause__})" if err.__cause__ is not None else ""
        raise InvalidArgumentError(f"{err}{cause}") from None
    except (ValueError, RuntimeError, TypeError) as err:
        raise InvalidArgumentError(f"impossible layer: {err}") from None
    row = report.rows[0]
    return {"out_shape": list(row.out_shape), "params": row.params, "macs": row.macs,
            "rf": list(row.rf or ()), "eff_stride": list(row.eff_stride or ())}
