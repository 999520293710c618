"""`cnnzoo list` and `cnnzoo info`."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ..registry import create_model, get_entry, list_models
from ._common import Format, console, human, print_json


def count_params(name: str) -> int:
    import torch

    with torch.device("meta"):  # no memory, no init cost
        model = create_model(name)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def register(app: typer.Typer) -> None:
    @app.command("list")
    def list_cmd(
        pattern: str = typer.Argument("*", help="shell-style pattern, e.g. 'resnet*'"),
        family: Optional[str] = typer.Option(None, help="only this family"),
        fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
    ) -> None:
        """List registered models: name, family, parameters, native input."""
        rows = []
        for name in list_models(pattern, family=family):
            e = get_entry(name)
            rows.append({"name": name, "family": e.family, "params": count_params(name),
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

    @app.command("info")
    def info_cmd(
        name: str = typer.Argument(..., help="model name"),
        fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
    ) -> None:
        """Paper, native input size and published figures of a model."""
        e = get_entry(name)
        info = e.as_dict()
        info["params"] = count_params(name)
        if fmt is Format.json:
            print_json(info)
            return
        p = e.paper
        console.print(f"[bold]{name}[/]  ({e.family})  {e.description}")
        console.print(f"paper:   {p.title} — {p.authors}, {p.year}. {p.url}")
        console.print(f"input:   {'x'.join(map(str, e.input_size))}   params: {info['params']:,}")
        if e.kwargs:
            console.print(f"arch:    {e.kwargs}")
        for pub in e.published:
            figs = [f"{k}={v}" for k, v in vars(pub).items() if k != "source" and v is not None]
            console.print(f"published ({pub.source}): " + ", ".join(figs))
