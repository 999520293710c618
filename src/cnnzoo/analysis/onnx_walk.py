"""The analyzer for an ONNX file: ONNX's shape inference gives every tensor's shape, and each node
is priced by the same rules as a PyTorch layer (rules.py, receptive.py): Conv, Gemm / MatMul,
pooling, BN, activations, Add / Concat (free, merging receptive fields), Flatten.

An operator this walker does not know is never guessed at: the file is refused (exit 2) with the
list of such operators, rather than a total that silently leaves them out.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from . import receptive
from .report import LayerRow, Report

ACT = {"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "LeakyRelu", "Elu", "PRelu",
       "Softmax", "LogSoftmax", "Erf", "Gelu", "Selu", "Softplus", "Mish"}
FREE = {"Add", "Sub", "Mul", "Div", "Concat", "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze",
        "Transpose", "Cast", "Reshape", "Identity", "Pad", "Slice", "Split", "Pow", "Sqrt",
        "ReduceMean", "ConstantOfShape", "Expand", "Range", "Equal", "Where", "Max", "Min"}
NORM = {"BatchNormalization", "LRN", "LayerNormalization", "InstanceNormalization"}
POOL = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
COSTED = {"Conv", "Gemm", "MatMul", "Flatten", "Dropout"} | ACT | FREE | NORM | POOL


class UncostedOperatorsError(InvalidArgumentError):
    """The ONNX graph holds operators the analyzer cannot cost."""

    def __init__(self, path: str, operators: dict[str, list[str]]) -> None:
        self.operators = operators
        listed = "; ".join(f"{op} x{len(nodes)} (e.g. {nodes[0]})" for op, nodes in operators.items())
        super().__init__(f"{path}: cannot cost these operators: {listed}. No total is given rather than "
                         f"a wrong one; the analyzer costs {', '.join(sorted(COSTED - FREE))} and the "
                         "shape-only operators")


def _load(path: str | Path, input_size: tuple[int, ...] | None, batch: int) -> tuple[Any, str, tuple[int, ...]]:
    import onnx

    p = Path(path)
    if not p.is_file():
        raise InvalidArgumentError(f"{path}: no such file")
    try:
        model = onnx.load(str(p))
    except Exception as err:  # protobuf's DecodeError and friends
        raise InvalidArgumentError(f"{path} is not an ONNX model ({type(err).__name__}: {err})") from None
    if not model.graph.node:
        raise InvalidArgumentError(f"{path} is not an ONNX model (an empty graph)")
    unknown: dict[str, list[str]] = {}  # before shape inference, which fails on them too
    for i, n in enumerate(model.graph.node):
        if n.op_type not in COSTED or n.domain not in ("", "ai.onnx"):
            unknown.setdefault(n.op_type, []).append(n.name or f"node {i}")
    if unknown:
        raise UncostedOperatorsError(str(path), unknown)
    inits = {i.name for i in model.graph.initializer}
    x = next((i for i in model.graph.input if i.name not in inits), None)
    if x is None:
        raise InvalidArgumentError(f"{path}: the graph has no input")
    dims = x.type.tensor_type.shape.dim
    if input_size is None:
        if any(not d.dim_value for d in dims[1:]):
            raise InvalidArgumentError(f"{path}: the input {x.name!r} has no fixed size; pass --input CxHxW")
        input_size = tuple(d.dim_value for d in dims[1:])
    if len(dims) != len(input_size) + 1:
        raise InvalidArgumentError(f"{path}: the input {x.name!r} has {len(dims) - 1} dims per sample, "
                                   f"--input gives {len(input_size)}")
    for d, v in zip(dims, (batch, *input_size)):
        d.ClearField("dim_param")
        d.dim_value = v
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as err:
        raise InvalidArgumentError(f"{path}: shape inference failed at input {input_size}: "
                                   f"{str(err).splitlines()[0]}") from None
    return model, x.name, tuple(input_size)


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def analyze_onnx(path: str | Path, input_size: tuple[int, ...] | None = None, batch_size: int = 1) -> Report:
    """Per-layer rows of the ONNX file at `path` for `input_size` (C, H, W; default: the file's)."""
    model, xname, size = _load(path, None if input_size is None else tuple(input_size), batch_size)
    g = model.graph
    shapes: dict[str, tuple[int, ...]] = {}
    for v in list(g.input) + list(g.value_info) + list(g.output):
        shapes[v.name] = tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
    inits = {i.name: tuple(i.dims) for i in g.initializer}
    shapes.update(inits)
    n_sp = max(0, len(size) - 1)
    geo: dict[str, receptive.Geo] = {xname: receptive.unit(n_sp)}
    rows: list[LayerRow] = []
    seen: Counter[str] = Counter()
    for n in g.node:
        ins = [shapes.get(t, ()) for t in n.input]
        out = shapes.get(n.output[0], ()) if n.output else ()
        g_in = receptive.merge([geo.get(t) for t in n.input]) or receptive.unit(n_sp)
        row, g_out = _row(n, _attrs(n), ins, out, inits, g_in)
        if row is not None:
            base = n.name or n.op_type.lower()
            seen[base] += 1
            row.name = base if seen[base] == 1 else f"{base}#{seen[base]}"
            row.rf, row.eff_stride = g_out
            rows.append(row)
        for o in n.output:
            geo[o] = g_out
    return Report(model_name=Path(path).name, input_size=size, batch_size=batch_size, rows=rows)


def _row(n: Any, a: dict[str, Any], ins: list[tuple[int, ...]], out: tuple[int, ...],
         inits: dict[str, tuple[int, ...]], geo: receptive.Geo) -> tuple[LayerRow | None, receptive.Geo]:
    """One node's row (None: a shape-only or element-wise node) and its output's geometry."""
    op, x = n.op_type, ins[0] if ins else ()
    params = sum(math.prod(inits[t]) for t in n.input[1:] if t in inits)
    kind = ("conv" if op == "Conv" else "linear" if op in ("Gemm", "MatMul") else "pool" if op in POOL
            else "norm" if op in NORM else "act" if op in ACT else "dropout" if op == "Dropout"
            else "flatten" if op == "Flatten" else None)
    if kind is None:
        return None, geo
    row = LayerRow(name="", type=op, kind=kind, in_shape=x[1:], out_shape=out[1:],
                   memory=0 if kind in ("act", "dropout") else math.prod(out) * 4)
    if op == "Conv":
        w = ins[1]
        k = tuple(w[2:])
        row.filters, row.kernel, row.groups = w[0], k, a.get("group", 1)
        row.stride = tuple(a.get("strides", (1,) * len(k)))
        pads = a.get("pads", (0,) * 2 * len(k))
        row.pad = tuple(pads[: len(k)])
        row.params, row.macs = params, math.prod(out) * math.prod(w[1:])
        return row, receptive.window(geo, k, row.stride, tuple(a.get("dilations", (1,) * len(k))))
    if op in ("Gemm", "MatMul"):
        k_dim = x[0] if op == "Gemm" and a.get("transA", 0) else x[-1]
        row.filters, row.params, row.macs = out[-1], params, math.prod(out) * k_dim
        return row, geo
    if op in ("MaxPool", "AveragePool"):
        k = tuple(a["kernel_shape"])
        row.kernel, row.stride = k, tuple(a.get("strides", (1,) * len(k)))
        row.pad = tuple(a.get("pads", (0,) * 2 * len(k))[: len(k)])
        row.macs = math.prod(out) * math.prod(k)
        return row, receptive.window(geo, k, row.stride)
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        row.kernel, row.macs = tuple(x[2:]), math.prod(x)
        return row, receptive.whole_map(geo, x[2:])
    if op == "BatchNormalization":  # scale and bias are parameters; mean and var are buffers
        row.params = sum(math.prod(inits[t]) for t in n.input[1:3] if t in inits)
    if op == "Flatten" and len(x) > 2:
        return row, receptive.whole_map(geo, x[2:])
    return row, geo
