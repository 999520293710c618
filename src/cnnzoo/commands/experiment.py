"""`cnnzoo experiment`: the lectures' claims as experiments anyone can rerun (docs/experiments.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..data.kinds import spec_help
from ..errors import InvalidArgumentError
from ._common import Format, console, print_json
from ._lazy import verb
from ._options import FormatOpt, JsonOpt, bounded, choices, overwrite_option

DATA_HELP = spec_help(default_note="Fashion-MNIST, found as docs/experiments.md says")


def register(app: typer.Typer) -> None:
    verb(app, "experiment", experiment_cmd)


def _size_help() -> str:
    from ..experiments import SIZES

    return f"{choices(SIZES)} (default: full; --quick = --size quick)"


def experiment_cmd(
    name: Annotated[Optional[str], typer.Argument(help="experiment name (see --list)")] = None,
    list_all: Annotated[bool, typer.Option("--list", help="show the catalogue")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="the CPU size: up to about 15 minutes on 2 cores")] = False,
    size: Annotated[Optional[str], typer.Option(help=_size_help())] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="folder for NAME.json and NAME.png "
                                                "(default: experiments/NAME)")] = None,
    overwrite: Annotated[bool, overwrite_option("run again into an --out that holds this experiment's "
                                                "results, replacing them and its runs")] = False,
    data: Annotated[Optional[str], typer.Option(help=DATA_HELP)] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 (default: auto)")] = None,
    seed: Annotated[int, typer.Option(help="the first run's seed", callback=bounded("seed"))] = 0,
    seeds: Annotated[Optional[int], typer.Option(help="seeds per arm: SEED, SEED+1, ... (default 3)")] = None,
    fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Rerun a claim from the lectures: plain vs residual depth (degradation), ensembles,
    LRN, two 3x3 vs one 5x5, 1x1 reductions, auxiliary heads, NiN's 1x1 layers, depthwise
    separable convs, the width multiplier, batch norm. Each arm trains with --seeds seeds; the
    verdict (reproduced / not reproduced / contradicted) is computed from their spread. Without
    --data: Fashion-MNIST from $CNNZOO_FASHION_MNIST, the cache or shared/data/fashion-mnist
    (docs/experiments.md). Writes NAME.json and the paper-style plot NAME.png into --out."""
    from ..experiments import EXPERIMENTS, get_experiment, run_experiment
    from ..outputs import check_output_folder

    if list_all:
        return _show_list([e.as_dict() for e in EXPERIMENTS.values()], fmt)
    if name is None:
        raise InvalidArgumentError("name an experiment, or --list to see them: " + ", ".join(EXPERIMENTS))
    get_experiment(name)  # an unknown name fails here, before any folder is made
    if quick and size not in (None, "quick"):
        raise InvalidArgumentError(f"--quick and --size {size} disagree: give one")
    out = check_output_folder(out or Path("experiments") / name, [f"{name}.json"], overwrite=overwrite,
                              label="--out", flag="--overwrite")
    say = (lambda text: None) if fmt == Format.json else (lambda text: console.print(f"[dim]{text}[/]"))
    result = run_experiment(name, size="quick" if quick else (size or "full"),
                            out=out, data=data, device=device, seed=seed, seeds=seeds, say=say,
                            overwrite=overwrite)
    print_json(result) if fmt == Format.json else _show_result(result)


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
    color = {"reproduced": "green", "not reproduced": "yellow"}.get(
        v["status"], "red")
    console.print(f"[bold]{r['name']}[/] ({r['size']} size, {r['seconds']} s): {r['claim']}")
    console.print(f"  source:    {r['source']}")
    console.print(f"  ran:       {r['runs']}")
    console.print(f"  paper:     {r['paper_figure']}")
    console.print(f"  measured:  {v['text']}")
    console.print(f"  verdict:   [bold {color}]{v['status']}[/] (tolerance: {v['tolerance']})")
    console.print(f"  wrote:     {Path(r['out']) / (r['name'] + '.json')}, {Path(r['out']) / r['plot']}")
