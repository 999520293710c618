"""`cnnzoo experiment`: the lectures' claims as experiments anyone can rerun (docs/experiments.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..data.kinds import spec_help
from ..errors import InvalidArgumentError
from ._common import Format, console, print_json

DATA_HELP = spec_help()


def register(app: typer.Typer) -> None:
    @app.command("experiment")
    def experiment_cmd(
        name: Optional[str] = typer.Argument(None, help="experiment name (see --list)"),
        list_all: bool = typer.Option(False, "--list", help="show the catalogue"),
        quick: bool = typer.Option(False, "--quick", help="the CPU size: a few minutes on 2 cores"),
        size: Optional[str] = typer.Option(None, "--size", help="smoke, quick or full (default: full; "
                                           "--quick = --size quick)"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for NAME.json and NAME.png "
                                           "(default: experiments/NAME)"),
        data: Optional[str] = typer.Option(None, "--data", help=DATA_HELP),
        device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 (default: auto)"),
        seed: int = typer.Option(0, "--seed", help="the first run's seed"),
        fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
    ) -> None:
        """Rerun a claim from the lectures: plain vs residual depth (degradation), ensembles,
        LRN, two 3x3 vs one 5x5, 1x1 reductions, auxiliary heads. Writes NAME.json (the paper's
        figure, the measured one, a verdict with its tolerance) and the paper-style plot
        NAME.png into --out and prints a summary. --list shows the catalogue."""
        from ..experiments import EXPERIMENTS, get_experiment, run_experiment

        if list_all or name is None:
            if not list_all:
                raise InvalidArgumentError("name an experiment, or --list to see them: "
                                           + ", ".join(EXPERIMENTS))
            _show_list([e.as_dict() for e in EXPERIMENTS.values()], fmt)
            return
        get_experiment(name)  # an unknown name fails here, before any folder is made
        if quick and size not in (None, "quick"):
            raise InvalidArgumentError(f"--quick and --size {size} disagree: give one")
        chosen = "quick" if quick else (size or "full")
        say = (lambda text: None) if fmt == Format.json else (lambda text: console.print(f"[dim]{text}[/]"))
        result = run_experiment(name, size=chosen, out=out or Path("experiments") / name, data=data,
                                device=device, seed=seed, say=say)
        if fmt == Format.json:
            print_json(result)
        else:
            _show_result(result)


def _show_list(rows: list[dict[str, Any]], fmt: Format) -> None:
    if fmt == Format.json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="cnnzoo experiments (run one: cnnzoo experiment NAME --quick)", show_lines=True)
    for col in ("name", "claim", "source", "paper's figure", "kind"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["claim"], r["source"], r["paper_figure"], r["kind"])
    console.print(table)


def _show_result(r: dict[str, Any]) -> None:
    v = r["verdict"]
    color = {"reproduced": "green", "exact": "green", "partly": "yellow", "not shown": "yellow"}.get(
        v["status"], "red")
    console.print(f"[bold]{r['name']}[/] ({r['size']} size, {r['seconds']} s): {r['claim']}")
    console.print(f"  source:    {r['source']}")
    console.print(f"  ran:       {r['runs']}")
    console.print(f"  paper:     {r['paper_figure']}")
    console.print(f"  measured:  {v['text']}")
    console.print(f"  verdict:   [bold {color}]{v['status']}[/] (tolerance: {v['tolerance']})")
    console.print(f"  wrote:     {Path(r['out']) / (r['name'] + '.json')}, {Path(r['out']) / r['plot']}")
