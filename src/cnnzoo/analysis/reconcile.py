"""Why the counters disagree: cnnzoo's params and multiply-adds beside torchvision's published
figure, the paper's, and fvcore, ptflops (both backends), thop and calflops where installed; each
difference split into named rules whose amounts are counted on the model (census.py), and what
is left over printed as the unexplained residual.

    r = reconcile("resnet50"); print(r.to_text())

The rules say what each tool does differently from cnnzoo's (the lectures') convention, which
counts one multiply-add per weight use in convs and fully connected layers, one per window
element in pooling, and nothing for bias, BN, activations, residual adds or softmax.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import nn

from ..errors import InvalidArgumentError
from . import counters as _counters
from . import own
from .census import Census, Layer, census
from .core import analyze
from .report import Report

POOL_ROWS = ("pool",)


class Rule(NamedTuple):
    name: str  # short, stable: the JSON key and the docs' word
    text: str  # what the counter does differently from cnnzoo
    amount: Callable[[Census], int]  # what it adds to cnnzoo's figure (negative: leaves out)


def _pool(layer: Layer) -> bool:
    return layer.row.kind == "pool"


def _adaptive(layer: Layer) -> bool:
    return isinstance(layer.module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d))


def _torch_adaptive(layer: Layer) -> bool:
    """An adaptive average pool that runs torch's own op (not a subclass's own forward)."""
    if layer.module is None:
        return layer.row.type.startswith("F.adaptive_avg_pool")
    return _adaptive(layer) and type(layer.module).__module__.startswith("torch.")


def _bn(layer: Layer) -> bool:
    return isinstance(layer.module, nn.modules.batchnorm._BatchNorm)


def _affine(layer: Layer) -> int:
    return 2 if getattr(layer.module, "affine", False) else 1


def _bias(layer: Layer) -> int:
    return layer.elements() if layer.row.kind in ("conv", "linear") and layer.has_bias else 0


def _known(table: Callable[[], Any]) -> Callable[[Layer], bool]:
    """Is the layer's class (exactly: subclasses are unknown to these tools) in `table()`?"""
    return lambda layer: layer.cls in table()


def _thop_table() -> Any:
    from thop.profile import register_hooks
    return register_hooks


def _ptflops_table() -> Any:
    from ptflops.pytorch_ops import MODULES_MAPPING
    return MODULES_MAPPING


def _elements(which: str = "out") -> Callable[[Layer], int]:
    return lambda layer: layer.elements(which)


def _macs(layer: Layer) -> int:
    return layer.row.macs


# -- the rules ----------------------------------------------------------------------------------
NO_POOL = Rule("pooling not counted", "max and average pooling cost nothing",
               lambda c: -c.where(_pool, _macs))
NO_POOL_BUT_ADAPTIVE = Rule(
    "pooling not counted (but adaptive)", "max / average pooling cost nothing; "
    "adaptive_avg_pool counts one per input element",
    lambda c: c.where(_pool, lambda ly: (ly.elements("in") if _torch_adaptive(ly) else 0) - ly.row.macs))
BN_X2 = Rule("BN counted (x2 affine)", "batch norm counts one per element, two with scale and shift",
             lambda c: c.where(_bn, lambda ly: ly.elements() * _affine(ly)))
BN_X4 = Rule("BN counted (x4 affine)", "batch norm counts two per element, four with scale and shift",
             lambda c: c.where(_bn, lambda ly: 2 * ly.elements() * _affine(ly)))


def _ln(layer: Layer) -> int:
    m = layer.module
    affine = getattr(m, "elementwise_affine", getattr(m, "affine", False))
    return layer.elements() * (5 if affine else 4) if isinstance(m, (nn.LayerNorm, nn.GroupNorm)) else 0


LN_X5 = Rule("LayerNorm / GroupNorm counted (x5 affine)", "layer and group norm count 4 per element, "
             "5 with scale and shift", lambda c: c.total(_ln))
BIAS = Rule("bias counted", "one per output element of a conv or FC layer with a bias",
            lambda c: c.total(_bias))
FC_BIAS = Rule("FC bias counted", "one per output of a fully connected layer with a bias",
               lambda c: c.where(lambda ly: ly.row.kind == "linear", _bias))


def _ptflops_pool(c: Census) -> int:
    known = _known(_ptflops_table)
    return c.where(_pool, lambda ly: (ly.elements("in") if known(ly) else 0) - ly.row.macs)


PTF_POOL = Rule("pooling = input elements", "pooling counts one per input element, not per "
                "window element", _ptflops_pool)
def _ptflops_patched() -> set[str]:
    from ptflops.pytorch_engine import FUNCTIONAL_MAPPING
    names = {getattr(f, "__name__", "").lstrip("_").replace("_with_indices", "") for f in FUNCTIONAL_MAPPING}
    return names - {"linear"}


PTF_FUNCTIONAL = Rule("functionals counted (again)", "F.relu, F.*pool*, F.softmax ... count one per "
                      "input element wherever they run, also inside a layer its hook already counted",
                      lambda c: sum(n for _, op, n in c.inner if op in _ptflops_patched()))
PTF_TENSOR = Rule("torch.add / Tensor.mul counted", "one per output element of add and mul "
                  "called as functions or methods (the `+` and `*` operators are not seen)",
                  lambda c: sum(n for _, op, n in c.inner if op in ("add", "mul", "add_", "mul_")))
PTF_ACT = Rule("activations counted", "one per element of ReLU / ELU / ReLU6 / LeakyReLU / PReLU",
               lambda c: c.where(_known(_ptflops_table), lambda ly: ly.elements() if ly.row.kind == "act" else 0))


def _thop_pool(c: Census) -> int:
    known = _known(_thop_table)

    def one(ly: Layer) -> int:
        if not known(ly) or isinstance(ly.module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
            return -ly.row.macs
        if _adaptive(ly):  # window + 1 division per output
            return ly.elements() * (ly.elements("in") // max(1, ly.elements()) + 1) - ly.row.macs
        return ly.elements() - ly.row.macs  # average pool: one per output
    return c.where(_pool, one)


THOP_POOL = Rule("pooling: max not counted, average per output", "max pooling costs nothing, "
                 "average pooling one per output (+1 division when adaptive); a subclass of "
                 "torch's pool layers costs nothing", _thop_pool)

MAC_RULES: dict[str, tuple[Rule, ...]] = {
    "fvcore": (NO_POOL_BUT_ADAPTIVE, BN_X2, LN_X5),
    "ptflops (pytorch)": (BIAS, PTF_POOL, BN_X2, PTF_ACT, PTF_FUNCTIONAL, PTF_TENSOR),
    "ptflops (aten)": (NO_POOL, BIAS),
    "thop": (THOP_POOL, BN_X4),
    "calflops": (NO_POOL,),
}
AUX = Rule("auxiliary heads' params counted", "parameters of modules the inference pass does not "
           "run (e.g. GoogLeNet's auxiliary classifiers)", lambda c: c.report.unused_params)
PARAM_RULES: dict[str, tuple[Rule, ...]] = {k: () if k == "thop" else (AUX,) for k in MAC_RULES}


@dataclass
class Line:
    """One counter's figure and how cnnzoo's becomes it."""

    source: str
    params: int | None
    macs: int | None
    rules: list[tuple[str, str, int]] = field(default_factory=list)  # (name, text, amount) MACs
    param_rules: list[tuple[str, str, int]] = field(default_factory=list)
    residual_macs: int | None = None
    residual_params: int | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        def rules(rs: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
            return [{"rule": n, "what": t, "amount": a} for n, t, a in rs]
        return {"source": self.source, "params": self.params, "macs": self.macs,
                "mac_rules": rules(self.rules), "param_rules": rules(self.param_rules),
                "residual_macs": self.residual_macs, "residual_params": self.residual_params,
                "note": self.note}


def _explain(source: str, c: Census, got: _counters.Counted, mac_rules: Sequence[Rule],
             param_rules: Sequence[Rule]) -> Line:
    rules = [(r.name, r.text, int(r.amount(c))) for r in mac_rules]
    prules = [(r.name, r.text, int(r.amount(c))) for r in param_rules]
    base = c.report
    return Line(source, got.params, got.macs, [r for r in rules if r[2]], [r for r in prules if r[2]],
                got.macs - base.total_macs - sum(a for *_, a in rules),
                got.params - base.total_params - sum(a for *_, a in prules))


def counter_lines(model: nn.Module, c: Census, input_size: tuple[int, ...],
                  only: Sequence[str] | None = None) -> list[Line]:
    """Each counter's figure on `model`, explained (a missing counter: a line with the reason)."""
    lines = []
    for counter in _counters.COUNTERS:
        if only is not None and counter.name not in only:
            continue
        why = _counters.missing(counter)
        if why is not None:
            lines.append(Line(counter.name, None, None, note=why))
            continue
        try:
            got = _counters.run(counter, model, input_size)
        except Exception as err:  # a third-party tool's failure on this model: say so, go on
            lines.append(Line(counter.name, None, None, note=f"{counter.name} failed on this model: "
                              f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"))
            continue
        lines.append(_explain(counter.name, c, got, MAC_RULES[counter.name], PARAM_RULES[counter.name]))
    return lines


def check_counters(names: Sequence[str] | None) -> None:
    """An unknown counter name is bad input."""
    known = [c.name for c in _counters.COUNTERS]
    bad = [n for n in names or () if n not in known]
    if bad:
        raise InvalidArgumentError(f"unknown counter {', '.join(map(repr, bad))}; known: {', '.join(known)}")


def model_census(model: nn.Module, input_size: tuple[int, ...]) -> Census:
    with torch.no_grad():
        return census(model, input_size)


# -- published figures ---------------------------------------------------------------------------
# a zoo model whose published figure is another zoo model's: (that model, the rule's name, text)
TWINS: dict[str, tuple[str, str, str]] = {
    "resnet50": ("resnet50_v1", "v1 vs v1.5 stride placement", "the paper's ResNet (v1) strides in the "
                 "first 1x1 of a down-sampling block, torchvision's (v1.5) in the 3x3"),
    "resnet101": ("resnet101_v1", "v1 vs v1.5 stride placement", "the paper's ResNet (v1) strides in "
                  "the first 1x1 of a down-sampling block, torchvision's (v1.5) in the 3x3"),
    "resnet152": ("resnet152_v1", "v1 vs v1.5 stride placement", "the paper's ResNet (v1) strides in "
                  "the first 1x1 of a down-sampling block, torchvision's (v1.5) in the 3x3"),
    "googlenet": ("googlenet_tv", "torchvision's GoogLeNet", "torchvision's GoogLeNet has BN and a 3x3 "
                  "where the paper's branch has a 5x5 (zoo: googlenet_tv)"),
}


def _rounding(published: int, exact: int) -> int:
    """What printing `exact` to `published`'s last significant digit changed; 0 if more than that."""
    text = str(published)
    unit = 10 ** (len(text) - len(text.rstrip("0"))) if published else 1
    return published - exact if 2 * abs(published - exact) <= unit else 0


ROUNDED = "printed rounded"


def _published_line(source: str, params: int | None, macs: int | None, base_params: int, base_macs: int,
                    steps: list[tuple[str, str, int, int]], note: str = "") -> Line:
    """A published figure: cnnzoo's totals, then `steps` (name, text, MACs, params) to reach it,
    then what printing it to its last digit changed."""
    rules = [(n, t, m) for n, t, m, _ in steps if m]
    prules = [(n, t, p) for n, t, _, p in steps if p]
    line = Line(source, params, macs, rules, prules, note=note)
    if macs is not None:
        line.residual_macs = _settle(macs, base_macs, line.rules)
    if params is not None:
        line.residual_params = _settle(params, base_params, line.param_rules)
    return line


def _settle(figure: int, base: int, rules: list[tuple[str, str, int]]) -> int:
    """What `base` plus `rules` leaves of a printed `figure`: its rounding becomes a rule of its
    own (appended to `rules`), the rest is returned as unexplained."""
    exact = base + sum(a for *_, a in rules)
    r = _rounding(figure, exact)
    if r:
        rules.append((ROUNDED, "the figure is printed to its last digit", r))
    return figure - exact - r


def _steps(name: str, model: str, size: tuple[int, ...], at: tuple[int, ...],
           report: Report) -> list[tuple[str, str, int, int]]:
    """From cnnzoo's `name` at `size` to zoo model `model` at `at` (a published figure's input)."""
    steps: list[tuple[str, str, int, int]] = []
    mine = report if tuple(size) == at else analyze(name, input_size=at)
    if mine is not report:
        steps.append((f"input size {'x'.join(map(str, at))}", "the figure is for this input",
                      mine.total_macs - report.total_macs, 0))
    if model != name:
        _, rule, text = TWINS[name]
        other = analyze(model, input_size=at)
        steps.append((rule, text, other.total_macs - mine.total_macs, other.total_params - mine.total_params))
    return steps


def published_lines(name: str, input_size: tuple[int, ...], report: Report) -> list[Line]:
    """torchvision's `_ops` ("GFLOPS" in its weights' meta: multiply-adds of convs and FC layers,
    at its crop) and the papers' figures the registry records for `name` or its twin."""
    from ..hub.table import TABLE
    from ..registry import get_entry, list_models

    if name not in list_models():
        return []
    lines: list[Line] = []
    for model in [name] + ([TWINS[name][0]] if name in TWINS else []):
        for e in [e for e in TABLE.get(model, ()) if e.source == "torchvision" and e.gmacs is not None][:1]:
            at = (input_size[0], e.crop, e.crop)
            pools = -census(_meta(model), at).where(_pool, _macs)
            lines.append(_published_line(
                f"torchvision {e.publisher_name} _ops", e.params, int(round(e.gmacs * 1e9)),
                report.total_params, report.total_macs, _steps(name, model, input_size, at, report)
                + [("pooling not counted", "torchvision's _ops count convs and FC layers only", pools, 0)],
                note="torchvision's \"GFLOPS\" are multiply-adds"))
        at = tuple(get_entry(model).input_size)
        for p in get_entry(model).published:
            if p.source.startswith("torchvision") or (p.macs is None and p.params is None):
                continue
            lines.append(_published_line(
                p.source, None if p.params is None else int(p.params),
                None if p.macs is None else int(p.macs), report.total_params, report.total_macs,
                _steps(name, model, input_size, at, report)))
    return lines


def _meta(name: str) -> nn.Module:
    from ..registry import create_model

    with torch.device("meta"):
        return create_model(name)


# -- the result ----------------------------------------------------------------------------------
@dataclass
class Reconciliation:
    model: str
    input_size: tuple[int, ...]
    params: int  # cnnzoo's
    macs: int
    lines: list[Line]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "input_size": list(self.input_size),
                "cnnzoo": {"params": self.params, "macs": self.macs,
                           "convention": CONVENTION},
                "sources": [ln.as_dict() for ln in self.lines]}

    def to_text(self) -> str:
        out = [f"{self.model}, input {'x'.join(map(str, self.input_size))}: cnnzoo {self.params:,} params, "
               f"{self.macs:,} multiply-adds", f"({CONVENTION})", ""]
        w = max(len(ln.source) for ln in self.lines) if self.lines else 10
        for ln in self.lines:
            if ln.macs is None and ln.params is None:
                out.append(f"{ln.source.ljust(w)}  not run: {ln.note}")
                continue
            out.append(f"{ln.source.ljust(w)}  params {_n(ln.params):>14}  MACs {_n(ln.macs):>17}")
            for name, _, amount in ln.param_rules:
                out.append(f"    params: {name:<44} {amount:+,}")
            for name, _, amount in ln.rules:
                out.append(f"    MACs:   {name:<44} {amount:+,}")
            out.append(f"    unexplained: params {_n(ln.residual_params)}, MACs {_n(ln.residual_macs)}")
        return "\n".join(out) + "\n"

    def to_markdown(self) -> str:
        rows = ["| source | params | MACs | rules: what it counts differently | unexplained params / MACs |",
                "|---|---:|---:|---|---:|", f"| cnnzoo | {self.params:,} | {self.macs:,} | | |"]
        for ln in self.lines:
            if ln.macs is None and ln.params is None:
                rows.append(f"| {ln.source} | | | not run: {ln.note} | |")
                continue
            both = ln.rules + [("params: " + n, t, a) for n, t, a in ln.param_rules]
            rules = "; ".join(f"{n} {a:+,}" for n, _, a in both)
            rows.append(f"| {ln.source} | {_n(ln.params)} | {_n(ln.macs)} | {rules} | "
                        f"{_n(ln.residual_params)} / {_n(ln.residual_macs)} |")
        return "\n".join(rows) + "\n"


CONVENTION = ("one multiply-add per weight use in convs and FC layers, one per window element in "
              "pooling; bias, BN, activations, residual adds and softmax count nothing")


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def reconcile(model: str | nn.Module, input_size: Sequence[int] | None = None,
              counters: Sequence[str] | None = None, published: bool = True) -> Reconciliation:
    """cnnzoo's params and multiply-adds of `model` (a zoo name, `tv:NAME`, `timm:NAME` or a
    module) beside the published figures and each installed counter's, every difference
    attributed to a named rule and the rest printed as unexplained. `counters`: only these
    (names as in counters.COUNTERS); `published`: include torchvision's and the papers' figures."""
    from .compare import resolve_target

    check_counters(counters)
    if isinstance(model, nn.Module):
        if input_size is None:
            raise InvalidArgumentError("input_size is required for a module, e.g. (3, 224, 224)")
        module, label, size = model, type(model).__name__, tuple(input_size)
    else:
        target, size, label = resolve_target(model, None if input_size is None else tuple(input_size))
        if own.is_onnx(target):  # cnnzoo's figures; the counters need a PyTorch module
            rep = analyze(target, input_size=size)
            why = "the counters run PyTorch modules; an ONNX file has none"
            return Reconciliation(rep.model_name, rep.input_size, rep.total_params, rep.total_macs,
                                  [Line(c.name, None, None, note=why) for c in _counters.COUNTERS
                                   if counters is None or c.name in counters])
        module = _cpu_model(target)
        size = tuple(size) if size is not None else _default_size(target, module)
    c = model_census(module, size)
    lines = published_lines(label, size, c.report) if published and isinstance(model, str) else []
    lines += counter_lines(module, c, size, counters)
    return Reconciliation(label, size, c.report.total_params, c.report.total_macs, lines)


def _default_size(target: Any, module: nn.Module) -> tuple[int, ...]:
    from ..registry import get_entry

    if own.is_library_name(target):
        return own.default_input(module)
    if isinstance(target, str):
        return tuple(get_entry(target).input_size)
    return (3, 224, 224)


def _cpu_model(target: Any) -> nn.Module:
    """The counters run the model: a name is built on the CPU with random weights."""
    from ..registry import create_model

    if isinstance(target, nn.Module):
        return target
    return own.build(target, "cpu") if own.is_library_name(target) else create_model(target)
