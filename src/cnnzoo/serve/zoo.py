"""The data of the Zoo, Model and Compare pages: the same library calls as `cnnzoo list`,
`info`, `summary` (and `--explain`) and `compare`, as JSON-ready dicts.

The Zoo page is instant: its totals at each model's native input come with the package
(zoo_table.json, written by scripts/gen_zoo_table.py, which `make docs` runs; a test keeps it
current). Everything else is computed on demand and cached per (model, input size) in a bounded
cache (REPORTS_KEPT reports, least recently used out; one computation per key, outside the lock),
so a reader trying 600 input sizes cannot grow the server without bound. A restart recomputes.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

import torch

from ..analysis import Report, analyze
from ..analysis.compare import compare as compare_models
from ..analysis.compare import compare_row, published_figure
from ..analysis.disagreements import disagreements_for
from ..analysis.explain import explain, explain_lines
from ..errors import InvalidArgumentError
from ..registry import create_model, get_entry, list_models
from . import chart
from .state import BoundedCache

TABLE_FILE = "zoo_table.json"
# densenet201's report is ~0.5 MB, the zoo's largest: at most ~20 MB of reports
REPORTS_KEPT = 32
_REPORTS: BoundedCache[tuple[str, tuple[int, ...] | None], Report] = BoundedCache(REPORTS_KEPT)
_CHARTS: BoundedCache[tuple[str, ...], list[dict[str, Any]]] = BoundedCache(4)
_SHORTCUT_NAMES = ("downsample", "shortcut", "proj", "skip")
_RESIDUAL_TYPES = re.compile(r"Basic|Bottleneck|Residual|PreAct|Res|Block35|Block17|Block8")


def report_for(name: str, input_size: Sequence[int] | None = None) -> Report:
    """analyze(name, input_size), cached; unknown names raise UnknownModelError (404)."""
    get_entry(name)
    key = (name, None if input_size is None else tuple(input_size))
    return _REPORTS.get(key, lambda: analyze(name, input_size=input_size))


_WARM = threading.Event()


def warm_up() -> None:
    """Analyse LeNet-5 once in the background: the first analysis in a process imports ~3 s of
    torch internals (torch._dynamo, through the meta kernels), which a cold server's first Model
    page would otherwise wait for. Once per process; the server answers meanwhile. Not a daemon
    thread: a process that exits meanwhile waits for it instead of aborting inside torch."""
    if not _WARM.is_set():
        _WARM.set()
        threading.Thread(target=report_for, args=("lenet5",), name="cnnzoo-warm-up").start()


def totals(name: str, report: Report) -> dict[str, Any]:
    """The analyzer's part of registered model `name`'s zoo row (what zoo_table.json keeps)."""
    row = compare_row(name, report, name)
    return {k: row[k] for k in ("input_size", "params", "macs", "memory_bytes")}


@lru_cache(maxsize=1)
def stored_table() -> dict[str, dict[str, Any]]:
    """zoo_table.json: {model: totals at its native input}; empty if the file is missing."""
    try:
        return json.loads((resources.files("cnnzoo.serve") / TABLE_FILE).read_text())["models"]
    except FileNotFoundError:
        return {}


def zoo_row(name: str) -> dict[str, Any]:
    """A registered model's row: `cnnzoo compare`'s (analysis.compare.compare_row) with its
    family, year and description; the totals from zoo_table.json where it has the model at its
    current native input, else analysed now."""
    e = get_entry(name)
    kept = stored_table().get(name)
    if kept is None or kept["input_size"] != list(e.input_size):
        kept = totals(name, report_for(name))
    return {"name": name, **kept, **published_figure(name), "family": e.family, "year": e.paper.year,
            "description": e.description}


def zoo_rows(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    return [zoo_row(n) for n in (names if names is not None else list_models())]


def zoo_charts(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The Zoo page's bubble charts, one per dataset, laid out (serve.chart)."""
    key = tuple(names if names is not None else list_models())
    return _CHARTS.get(key, lambda: chart.charts(zoo_rows(key)))


def _doc(name: str) -> str:
    """The model class's docstring: where the zoo's models state their departures."""
    with torch.device("meta"):
        model = create_model(name)
    return inspect.getdoc(type(model)) or ""


def model_detail(name: str, size: Sequence[int] | None = None) -> dict[str, Any]:
    """`cnnzoo info` + `cnnzoo summary --format json` (+ per-stage rows and the diagram)."""
    e = get_entry(name)
    report = report_for(name, size)
    d = report.to_dict(all_layers=True)
    d["stages"] = [r.as_dict() for r in report.aggregate(1).visible_rows(all_layers=False)]
    d["info"] = e.as_dict()
    d["doc"] = _doc(name)
    d["disagreements"] = [x._asdict() for x in disagreements_for(name)]
    d["text_table"] = report.to_table(rf=True)
    d["diagram"] = diagram(name, report)
    return d


def explain_layer(name: str, layer: str, size: Sequence[int] | None = None) -> dict[str, Any]:
    report = report_for(name, size)
    return {"model": name, "layer": layer, "input_size": list(report.input_size),
            "lines": [list(x) for x in explain_lines(report, layer)], "text": explain(report, layer)}


def _block(name: str, mod: torch.nn.Module, report: Report) -> dict[str, Any]:
    """One block of a stage: its type, costs, branches (parallel paths) and shortcut."""
    rows = [r for r in report.rows if r.name == name or r.name.startswith(name + ".")]
    io = report.module_io.get(name)
    first_in = io[0] if io else (rows[0].in_shape if rows else None)
    # a branch: a child whose first counted row reads the block's own input
    branches, widths = [], []
    for child, _ in mod.named_children():
        sub = [r for r in rows if r.name.startswith(f"{name}.{child}.") or r.name == f"{name}.{child}"]
        if sub and sub[0].in_shape == first_in and child not in _SHORTCUT_NAMES:
            branches.append(child)
            widths.append(sub[-1].out_shape[0] if sub[-1].out_shape else 0)
    out_c = (io[1][0] if io and io[1] else None)
    if len(branches) < 2 or sum(widths) != out_c:  # parallel paths concatenated, else a chain
        branches = []
    children = {c for c, _ in mod.named_children()}
    shortcut = bool(children & set(_SHORTCUT_NAMES)) or bool(_RESIDUAL_TYPES.search(type(mod).__name__))
    return {"name": name, "type": type(mod).__name__, "params": sum(r.params for r in rows),
            "macs": sum(r.macs for r in rows), "out_shape": list(rows[-1].out_shape) if rows else [],
            "branches": branches, "shortcut": shortcut,
            "projection": bool(children & set(_SHORTCUT_NAMES))}


def diagram(name: str, report: Report) -> list[dict[str, Any]]:
    """The architecture as drawn on the Model page, from the module tree in execution order:
    top-level modules (stages), each with its blocks; blocks with parallel branches (inception)
    and shortcuts (residual) are marked. Modules that never ran (auxiliary heads) are left out."""
    with torch.device("meta"):
        model = create_model(name, in_chans=report.input_size[0])
    tops: dict[str, torch.nn.Module] = dict(model.named_children())
    order: list[str] = []
    for r in report.rows:
        top = r.name.split(".")[0].split("#")[0]
        if top in tops and top not in order:
            order.append(top)
    out = []
    for top in order:
        mod = tops[top]
        kids = list(mod.named_children())
        is_stage = len(kids) > 1 and type(mod) in (torch.nn.Sequential, torch.nn.ModuleList)
        node = _block(top, mod, report)
        blocks = [_block(f"{top}.{k}", m, report) for k, m in kids] if is_stage else []
        node["blocks"] = [b for b in blocks if b["macs"] or b["params"] or b["branches"]]
        if node["macs"] or node["params"] or node["blocks"] or node["branches"]:
            out.append(node)
    return out


def compare(names: Sequence[str], size: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """`cnnzoo compare`'s rows (the same keys and numbers) with family, year, description and
    per-stage rows, 2 to 6 registered models (never a path: a web request names no file)."""
    if not 2 <= len(names) <= 6:
        raise InvalidArgumentError(f"compare takes 2 to 6 models, got {len(names)}")
    for n in names:
        get_entry(n)  # every unknown name fails before any work
    size = None if size is None else tuple(size)
    rows = compare_models(names, size, report=report_for)  # type: ignore[arg-type]
    out = []
    for n, row in zip(names, rows):
        e, r = get_entry(n), report_for(n, size)
        out.append({**row, "family": e.family, "year": e.paper.year, "description": e.description,
                    "stages": [{"name": s.name, "type": s.type, "params": s.params, "macs": s.macs,
                                "memory": s.memory, "out_shape": list(s.out_shape)}
                               for s in r.aggregate(1).visible_rows()]})
    return out
