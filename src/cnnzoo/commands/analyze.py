"""`cnnzoo summary` (the lecture's per-layer cost table) and `cnnzoo compare` (totals side by side
and the "comparing complexity" chart)."""

from __future__ import annotations

import csv
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from ..analysis import analyze
from ..analysis.compare import compare, parse_input, resolve_target
from ..analysis.explain import explain
from ..analysis.memory import OPTIMIZER_STATES
from ..analysis.plots import check_plot_path, plot_compare, plot_layers
from ..errors import InvalidArgumentError
from ._common import print_json
from ._lazy import verb
from ._options import JsonOpt, OverwriteOpt, bounded, check_out, choices, format_option


class RecFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    json = "json"


class TableFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


TableFormatOpt = Annotated[TableFormat, format_option()]


def _opt(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def register(app: typer.Typer) -> None:
    verb(app, "summary", summary_cmd)
    verb(app, "compare", compare_cmd)
    verb(app, "reconcile", reconcile_cmd)


Depth = Annotated[Optional[int], typer.Option("--depth", callback=bounded("depth"),
                                              help="group rows by the first N parts of "
                                              "their names (1: blocks/stages)")]
Plot = Annotated[Optional[Path], typer.Option("--plot", help="bar charts of memory, params and operations "
                                              "per layer (.png or .svg)")]
AllLayers = Annotated[bool, typer.Option("--all-layers", help="also show activation, dropout and identity "
                                         "rows (no params, MACs or memory)")]
TrainMemory = Annotated[Optional[str], typer.Option("--train-memory", help="also estimate training memory "
                                                    f"with this optimizer: {choices(OPTIMIZER_STATES)}")]
Explain = Annotated[Optional[str], typer.Option("--explain", help="one layer's arithmetic with its numbers, "
                                                "instead of the table")]


def summary_cmd(
    model: Annotated[str, typer.Argument(help="registered model name (`cnnzoo list`), model file or run folder")],
    input: Annotated[Optional[str], typer.Option(help="CxHxW, e.g. 3x227x227 (default: the model's native "
                                                 "input)")] = None,
    depth: Depth = None, fmt: TableFormatOpt = TableFormat.table, json_flag: JsonOpt = False,
    flops: Annotated[bool, typer.Option("--flops", help="show FLOPs = 2 x multiply-adds")] = False,
    plot: Plot = None,
    batch_size: Annotated[int, typer.Option(callback=bounded("batch_size"), help="images per batch")] = 1,
    all_layers: AllLayers = False,
    rf: Annotated[bool, typer.Option("--rf", help="add receptive field and effective stride")] = False,
    optimizer: TrainMemory = None, explain_layer: Explain = None, overwrite: OverwriteOpt = False,
) -> None:
    """Per-layer table: input/output C, H/W, kernel, stride, pad, memory (KB), params (k),
    multiply-adds (M), then totals; computed from shapes on the meta device (seed 003 rules)."""
    size = parse_input(input) if input is not None else None
    if plot is not None:
        check_out(check_plot_path(plot), inputs=[model], overwrite=overwrite, label="--plot")  # before the work
    target, size, _ = resolve_target(model, size)
    report = analyze(target, input_size=size, batch_size=batch_size)
    if explain_layer is not None:
        return print(explain(report, explain_layer), end="")
    if depth is not None:
        report = report.aggregate(depth)
    train = report.training_memory(optimizer=optimizer) if optimizer else None
    if fmt is TableFormat.json:
        d = report.to_dict(all_layers=True)
        if train is not None:
            d["training_memory"] = train.as_dict()
        print_json(d)
    elif fmt is TableFormat.csv:
        print(report.to_csv(), end="")
    elif fmt is TableFormat.markdown:
        print(report.to_markdown(flops=flops, all_layers=all_layers, rf=rf), end="")
    else:
        print(report.to_table(flops=flops, all_layers=all_layers, rf=rf), end="")
    if train is not None and fmt in (TableFormat.table, TableFormat.markdown):
        print(train)
    if plot is not None:
        plot_layers(report, plot, flops=flops, all_layers=all_layers)
        typer.echo(f"wrote {plot}", err=True)



def compare_cmd(
    models: List[str] = typer.Argument(..., help="two or more registered model names, model files or run folders"),
    input: Optional[str] = typer.Option(None, "--input", help="CxHxW for every model "
                                        "(default: each model's native input)"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="accuracy vs operations "
                                        "bubble chart, area ~ params (.png or .svg)"),
    fmt: TableFormatOpt = TableFormat.table, json_flag: JsonOpt = False, overwrite: OverwriteOpt = False,
) -> None:
    """Totals side by side (params, multiply-adds, activation memory, published top-1/top-5)
    and the lectures' "comparing complexity" chart."""
    if len(models) < 2:
        raise InvalidArgumentError(f"compare takes two or more models, got {len(models)} ({', '.join(models)}): "
                                   f"`cnnzoo summary {models[0]}` describes one")
    size = parse_input(input) if input is not None else None
    if plot is not None:
        check_out(check_plot_path(plot), inputs=models, overwrite=overwrite, label="--plot")
    items = compare(models, size)
    _print_compare(items, fmt)
    if plot is not None:
        plot_compare(items, plot)
        typer.echo(f"wrote {plot}", err=True)

def _print_compare(items: list[dict[str, Any]], fmt: TableFormat) -> None:
    if fmt is TableFormat.json:
        print_json(items)
        return
    head = ["model", "input", "params (M)", "MACs (M)", "act. memory (MB)", "top-1 err (%)",
            "top-5 err (%)", "dataset", "published params (M)", "published MACs (M)", "source"]
    rows = [[i["name"], "x".join(map(str, i["input_size"])), f"{i['params'] / 1e6:.2f}",
             f"{i['macs'] / 1e6:,.1f}", f"{i['memory_bytes'] / 2**20:.2f}",
             _opt(i["top1_err_pct"], ".2f"), _opt(i["top5_err_pct"], ".2f"), i["dataset"] or "-",
             _opt(None if i["published_params"] is None else i["published_params"] / 1e6, ".2f"),
             _opt(None if i["published_macs"] is None else i["published_macs"] / 1e6, ",.1f"),
             i["source"] or "-"] for i in items]
    if fmt is TableFormat.csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerows([head] + rows)
        return
    if fmt is TableFormat.markdown:
        print("| " + " | ".join(head) + " |")
        print("|---" + "|---:" * (len(head) - 2) + "|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(r[k]) for r in [head] + rows) for k in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) if k in (0, len(head) - 1) else c.rjust(w)
                        for k, (c, w) in enumerate(zip(r, widths))).rstrip())


Counters = Annotated[Optional[str], typer.Option(
    "--counters", metavar="NAMES", help="only these counters, comma-separated: fvcore, "
    "'ptflops (pytorch)', 'ptflops (aten)', thop, calflops (default: every installed one)")]


def reconcile_cmd(
    model: Annotated[str, typer.Argument(help="registered model name, tv:NAME, timm:NAME, .onnx file "
                                         "or model file")],
    input: Annotated[Optional[str], typer.Option(help="CxHxW (default: the model's native input)")] = None,
    counters: Counters = None,
    fmt: Annotated[RecFormat, format_option()] = RecFormat.table, json_flag: JsonOpt = False,
) -> None:
    """cnnzoo's params and multiply-adds beside torchvision's published _ops, the paper's figure
    and fvcore, ptflops (both backends), thop and calflops where installed (pip install
    'cnnzoo[counters]'); each difference attributed to a named rule (pooling, BN, bias,
    activations counted or not, v1 vs v1.5, input size, rounding), with what is left unexplained."""
    from ..analysis.reconcile import reconcile

    size = parse_input(input) if input is not None else None
    only = [c.strip() for c in counters.split(",") if c.strip()] if counters is not None else None
    result = reconcile(model, size, counters=only)
    if fmt is RecFormat.json:
        print_json(result.to_dict())
    elif fmt is RecFormat.markdown:
        print(result.to_markdown(), end="")
    else:
        print(result.to_text(), end="")
