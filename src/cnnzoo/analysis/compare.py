"""Models side by side: totals from the analyzer beside each model's published figure, the rows
of `cnnzoo compare` and of serve's Zoo and Compare pages (one function, one set of keys:
docs/results.md). Also what names the models: a registered name, a model file or run folder,
and an input size written CxHxW."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Sequence

from torch import nn

from ..bounds import check_size
from ..display import Table
from ..errors import InvalidArgumentError
from ..registry import get_entry, list_models, load_model
from ..results import published
from . import own
from .core import analyze
from .report import Report

Size = tuple[int, int, int]


def parse_input(spec: str) -> Size:
    """'3x227x227' -> (3, 227, 227); anything else is a clear error."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*[xX,]\s*(\d+)\s*", spec or "")
    if not m or any(int(v) < 1 for v in m.groups()):
        raise InvalidArgumentError(
            f"--input must be three positive integers CxHxW, e.g. 3x224x224; got {spec!r}")
    return check_size((int(v) for v in m.groups()), "--input")  # type: ignore[return-value]


def published_figure(name: str) -> dict[str, Any]:
    """The figure a comparison shows for registered model `name`: its first published figure
    with a top-1 error (else its first), with the top-1 accuracy beside the error; every key
    None where the model has none."""
    pubs = get_entry(name).published if name in list_models() else ()  # tv:, timm:, .onnx: none
    pub = next((p for p in pubs if p.top1_err is not None), pubs[0] if pubs else None)
    if pub is None:
        return {"top1_err_pct": None, "top5_err_pct": None, "top1_acc_pct": None,
                "published_params": None, "published_macs": None, "dataset": None, "source": None}
    d = published(pub)
    top1 = d["top1_err_pct"]
    return {"top1_err_pct": top1, "top5_err_pct": d["top5_err_pct"],
            "top1_acc_pct": None if top1 is None else 100 - top1, "published_params": d["params"],
            "published_macs": d["macs"], "dataset": d["dataset"], "source": d["source"]}


def resolve_target(arg: str, size: Size | None = None) -> tuple[str | nn.Module, tuple[int, ...] | None, str]:
    """A registered name, or a model file / run folder: (what `analyze` takes, the input size,
    the registry name whose published figure applies). A model file is measured at `size`,
    else at the input it was trained on, else at its architecture's native input."""
    if own.is_own(arg):  # one home for tv:NAME, timm:NAME and .onnx files
        return arg, size, arg
    if arg in list_models() or not Path(arg).exists():
        get_entry(arg)  # an unknown name: the registry's message
        return arg, size, arg
    model, record = load_model(arg)
    native = (record.get("preprocess") or {}).get("input_size")
    model.model_name = f"{record['model']} ({arg})"
    return model, size or (tuple(native) if native else get_entry(record["model"]).input_size), record["model"]


def compare_row(label: str, report: Report, name: str) -> dict[str, Any]:
    """One model's row: the analyzer's totals (params, multiply-adds, activation bytes) and the
    published figure of registered model `name`."""
    return {"name": label, "input_size": list(report.input_size), "params": report.total_params,
            "macs": report.total_macs, "memory_bytes": report.total_memory, **published_figure(name)}


def compare(models: Sequence[str], size: Size | None = None, *,
            report: Callable[..., Report] = analyze) -> list[dict[str, Any]]:
    """`compare_row` for each of `models` (names, model files or run folders), all at `size`
    or each at its own input. Every name is checked before any work. `report` analyses one
    target (serve passes its cached `analyze`)."""
    targets = [resolve_target(m, size) for m in models]
    return Table([compare_row(label, report(target, input_size=tsize), name)
                  for label, (target, tsize, name) in zip(models, targets)], "cnnzoo compare")
