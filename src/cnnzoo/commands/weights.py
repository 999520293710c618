"""`cnnzoo weights`: which zoo models have published ImageNet weights, and fetching them."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ._common import Format, console, print_json
from ._lazy import verb
from ._options import FormatOpt, JsonOpt


def _pct(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:.2f}{unit}"


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def register(app: typer.Typer) -> None:
    verb(app, "weights", weights_cmd)


def weights_cmd(
    model: Optional[str] = typer.Argument(None, help="a model name: its weights in detail"),
    download: bool = typer.Option(False, "--download",
                                  help="fetch MODEL's weights into the cache (verified)"),
    tag: Optional[str] = typer.Option(None, "--tag", help="only these weights (tv, timm or a "
                                       "tag); with --download: which to fetch"),
    fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """List published ImageNet-1k weights: model, tag, source, the publisher's top-1/top-5
    (ImageNet val, single crop; "-" where our table has none), file size in MB. The cache is
    $CNNZOO_CACHE/weights (default ~/.cache/cnnzoo/weights); $CNNZOO_WEIGHTS_MIRROR fetches the
    same file names from a mirror."""
    from ..hub import details, listing
    from ..registry import get_entry

    if model is None and download:
        raise typer.BadParameter("--download needs a MODEL")
    if model is not None:
        get_entry(model)  # an unknown name: the registry's message, with the closest names
    rows = listing() if model is None else details(model, tag, download)
    if fmt is Format.json:
        print_json(rows)
    elif model is None:
        _print_listing(rows)
    else:
        _print_details(rows)


def _print_listing(rows: list[dict]) -> None:
    t = Table(title=f"published weights for {len({r['model'] for r in rows})} models (first = default)")
    for col in ("model", "tag", "source", "top-1 %", "top-5 %", "MB"):
        t.add_column(col, justify="left" if col in ("model", "tag", "source") else "right", no_wrap=True)
    for r in rows:
        t.add_row(r["model"], r["tag"], r["source"], _pct(r["top1_acc_pct"]), _pct(r["top5_acc_pct"]),
                  _mb(r["size_mb"]))
    console.print(t)


def _print_details(rows: list[dict]) -> None:
    for d in rows:
        acc = (f"top-1 {_pct(d['top1_acc_pct'], '%')}, top-5 {_pct(d['top5_acc_pct'], '%')}"
               if d["top1_acc_pct"] is not None else "no published accuracy in our table")
        console.print(f"{d['model']} {d['tag']} ({d['source']}): {acc}", highlight=False)
        console.print(f"  url     {d['url']}\n  sha256  {d['sha256'] or '(none published)'}"
                      f"\n  input   resize {d['resize']}, centre crop {d['crop']}, "
                      f"{d['interpolation']}, mean {d['mean']}, std {d['std']}"
                      f"\n  cache   {d['cache_path']} ({'present' if d['cached'] else 'absent'})",
                      highlight=False, soft_wrap=True)
