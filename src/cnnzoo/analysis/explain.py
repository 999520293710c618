"""One layer's arithmetic with the numbers filled in, as seed 003 writes it.

    conv1: output size (W - K + 2P)/S + 1 = (227 - 11 + 2*0)/4 + 1 = 55 -> 96 x 55 x 55
           memory 96 x 55 x 55 = 290,400 elements x 4 bytes = 1,134.4 KB
           params 96 x 3 x 11 x 11 + 96 = 34,944
           MACs   96 x 55 x 55 (outputs) x 3 x 11 x 11 = 105,415,200 (105.4 M)

`explain(report, layer)` is the text of `cnnzoo summary MODEL --explain LAYER` and of the web
app's row detail; `explain_lines` gives the same as (label, formula) pairs.
"""

from __future__ import annotations

from math import prod

from ..errors import InvalidArgumentError, closest
from .report import LayerRow, Report


def _x(dims: tuple[int, ...] | list[int]) -> str:
    return " x ".join(str(d) for d in dims)


def _short(v: float) -> str:
    """1,134.4 / 2.34 / 0.045: enough digits to be read back."""
    return f"{v:,.1f}" if abs(v) >= 10 or v == 0 else f"{v:.3g}"


def _find(report: Report, layer: str) -> LayerRow:
    for r in report.rows:
        if r.name == layer:
            return r
    names = [r.name for r in report.rows]
    near = closest(layer, names)
    raise InvalidArgumentError(
        f"{report.model_name} has no layer {layer!r}"
        + (f"; did you mean: {', '.join(near)}?" if near else "")
        + f" (layers: {', '.join(names[:15])}{', ...' if len(names) > 15 else ''})")


def _pad_of(r: LayerRow, i: int) -> int | None:
    if isinstance(r.pad, tuple) and r.pad:
        return r.pad[min(i, len(r.pad) - 1)]
    return None if isinstance(r.pad, str) else 0


def _size_lines(r: LayerRow) -> list[tuple[str, str]]:
    """The output-size rule per spatial dim, with the layer's own numbers."""
    if r.kernel is None or r.stride is None or len(r.in_shape) < 2:
        return []
    out = []
    spatial = r.in_shape[1:]
    seen: set[tuple] = set()
    for i, w in enumerate(spatial):
        k = r.kernel[min(i, len(r.kernel) - 1)]
        s = r.stride[min(i, len(r.stride) - 1)]
        p = _pad_of(r, i)
        got = r.out_shape[1 + i] if len(r.out_shape) > 1 + i else None
        if p is None or (w, k, s, p) in seen:
            continue
        seen.add((w, k, s, p))
        exact = (w - k + 2 * p) / s + 1
        rule = int((w - k + 2 * p) // s + 1)
        txt = f"(W - K + 2P)/S + 1 = ({w} - {k} + 2*{p})/{s} + 1 = "
        txt += f"{rule}" if exact == rule else f"{exact:g} -> floor {rule}"
        if got is not None and got != rule:
            txt += f"; the layer gives {got} (ceil mode or adaptive window)"
        out.append(("output size" + (f" (dim {i + 1})" if len(spatial) > 1 and len(set(
            zip(spatial, r.kernel, r.stride))) > 1 else ""), txt))
    return out


def _params_line(r: LayerRow) -> tuple[str, str] | None:
    if r.kind == "conv" and r.kernel is not None and r.filters is not None:
        cin = r.in_shape[0] // (r.groups or 1)
        w = r.filters * cin * prod(r.kernel)
        g = f" (C_in/groups = {r.in_shape[0]}/{r.groups})" if (r.groups or 1) > 1 else ""
        form = f"{r.filters} x {cin} x {_x(r.kernel)}"
        bias = r.params - w
        if bias == r.filters:
            return "params", f"{form} + {bias} = {r.params:,}{g} (weights {w:,} + biases {bias})"
        if bias == 0:
            return "params", f"{form} = {r.params:,}{g} (no bias)"
        return "params", f"{form} = {w:,} weights, {r.params:,} in all{g}"
    if r.kind == "linear" and r.filters is not None:
        cin = r.in_shape[-1]
        w = cin * r.filters
        bias = r.params - w
        tail = f" + {r.filters} = {r.params:,}" if bias == r.filters else f" = {r.params:,}"
        return "params", f"{cin} x {r.filters}{tail}"
    if r.params:
        return "params", f"{r.params:,}"
    return None


def _macs_line(r: LayerRow, batch: int) -> tuple[str, str]:
    per = r.macs // max(batch, 1)
    b = f" x batch {batch}" if batch > 1 else ""
    total = f"{r.macs:,} ({_short(r.macs / 1e6)} M)"
    outs = _x(r.out_shape)
    if r.kind == "conv" and r.kernel is not None and r.filters is not None:
        cin = r.in_shape[0] // (r.groups or 1)
        if per == prod(r.out_shape) * cin * prod(r.kernel):
            return "MACs", f"{outs} (outputs) x {cin} x {_x(r.kernel)}{b} = {total}"
    if r.kind == "linear" and r.filters is not None:
        if per == r.in_shape[-1] * r.filters:
            return "MACs", f"{r.in_shape[-1]} x {r.filters}{b} = {total}"
    if r.kind == "pool" and r.kernel is not None and per == prod(r.out_shape) * prod(r.kernel):
        return "MACs", f"{outs} (outputs) x {_x(r.kernel)} (window){b} = {total}"
    if r.macs == 0:
        return "MACs", "0 (not counted for this kind of layer: seed 003 reports it as 0)"
    return "MACs", total


def explain_lines(report: Report, layer: str) -> list[tuple[str, str]]:
    """(label, formula with numbers) pairs for one layer of `report`."""
    r = _find(report, layer)
    batch = report.batch_size
    lines: list[tuple[str, str]] = [("layer", f"{r.name} ({r.type}, {r.kind})"),
                                    ("input", _x(r.in_shape)), ("output", _x(r.out_shape))]
    if r.kind == "conv":
        lines.append(("filters", f"{r.filters} of {_x(r.kernel or ())}, stride "
                      f"{_x(r.stride or ())}, pad {r.pad if isinstance(r.pad, str) else _x(r.pad or ())}"
                      + (f", groups {r.groups}" if (r.groups or 1) > 1 else "")))
    lines += _size_lines(r)
    n = prod(r.out_shape)
    if r.memory:
        b = f" x batch {batch}" if batch > 1 else ""
        lines.append(("memory", f"{_x(r.out_shape)} = {n:,} elements{b} x 4 bytes = "
                      f"{r.memory:,} bytes = {_short(r.memory / 1024)} KB"))
    else:
        lines.append(("memory", "0 (not counted: the output overwrites its input)"))
    p = _params_line(r)
    lines.append(p if p is not None else ("params", "0"))
    lines.append(_macs_line(r, batch))
    if r.rf is not None:
        lines.append(("receptive field", f"{_x(r.rf)} input pixels, effective stride "
                      f"{_x(r.eff_stride or ())}"))
    return lines


def explain(report: Report, layer: str) -> str:
    """The layer's arithmetic as text (label-aligned lines)."""
    lines = explain_lines(report, layer)
    width = max(len(k) for k, _ in lines)
    head = f"{report.model_name}, input {'x'.join(map(str, report.input_size))}\n"
    return head + "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines) + "\n"
