"""`cnnzoo list` and `cnnzoo info`."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..registry import create_model, get_entry, list_models
from ._common import Format, console, human, print_json
from ._lazy import verb
from ._options import FormatOpt, JsonOpt

# Counts of the registered models, written by scripts/gen_param_counts.py (a test keeps it current):
# `cnnzoo list` would otherwise build every model, seconds of start-up for a table.
PARAM_COUNTS = Path(__file__).with_name("param_counts.json")


@lru_cache(maxsize=1)
def _cached_counts() -> dict[str, int]:
    try:
        return json.loads(PARAM_COUNTS.read_text())
    except (OSError, ValueError):
        return {}


def count_params(name: str) -> int:
    """Trainable parameters of a registered model at its default classes (built on the meta device)."""
    import torch

    with torch.device("meta"):  # no memory, no init cost
        model = create_model(name)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def params_of(name: str) -> int:
    """The cached count where there is one (a model registered later is counted on the meta device)."""
    cached = _cached_counts().get(name)
    return cached if cached is not None else count_params(name)


def register(app: typer.Typer) -> None:
    verb(app, "list", list_cmd)
    verb(app, "info", info_cmd)


def list_cmd(
    pattern: Annotated[str, typer.Argument(help="shell-style pattern, e.g. 'resnet*'")] = "*",
    family: Annotated[Optional[str], typer.Option(help="only this family")] = None,
    fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """List registered models: name, family, parameters, native input."""
    rows = []
    for name in list_models(pattern, family=family):
        e = get_entry(name)
        rows.append({"name": name, "family": e.family, "params": params_of(name),
                     "input_size": list(e.input_size), "description": e.description})
    if fmt is Format.json:
        print_json(rows)
        return
    t = Table(title=f"{len(rows)} models")
    for col in ("name", "family", "params", "input", "description"):
        t.add_column(col, justify="right" if col == "params" else "left")
    for r in rows:
        t.add_row(r["name"], r["family"], human(r["params"]),
                  "x".join(map(str, r["input_size"])), r["description"])
    console.print(t)


def info_cmd(name: Annotated[str, typer.Argument(help="model name")],
             fmt: FormatOpt = Format.table, json_flag: JsonOpt = False) -> None:
    """Paper, native input size and published figures of a model."""
    e = get_entry(name)
    info = e.as_dict()
    info["params"] = params_of(name)
    if fmt is Format.json:
        print_json(info)
        return
    p = e.paper
    console.print(f"[bold]{name}[/]  ({e.family})  {e.description}", highlight=False)
    console.print(f"paper:   {p.title} — {p.authors}, {p.year}. {p.url}", highlight=False)
    console.print(f"input:   {'x'.join(map(str, e.input_size))}   params: {info['params']:,}", highlight=False)
    if e.kwargs:
        console.print("arch:    " + ", ".join(f"{k}={_plain(v)}" for k, v in e.kwargs.items()), highlight=False)
    for pub in e.published:
        console.print(f"published ({pub.source}): {published_figures(pub)}", highlight=False)


def _plain(v: object) -> str:
    """(3, 4, 6, 3) -> 3-4-6-3; other values as written."""
    return "-".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)


def published_figures(pub: object) -> str:
    """A `Published` entry as a reader writes it: 'params 60,000, top-1 error 0.95%, MNIST'."""
    f = vars(pub)
    parts = []
    if f.get("params") is not None:
        parts.append(f"params {f['params']:,.0f}")
    if f.get("macs") is not None:
        parts.append(f"MACs {f['macs'] / 1e9:,.3g} G ({f['macs']:,.0f})")
    for key, label in (("top1_err", "top-1 error"), ("top5_err", "top-5 error")):
        if f.get(key) is not None:
            parts.append(f"{label} {f[key]:g}%")
    parts.append(str(f.get("dataset")))
    return ", ".join(parts)
