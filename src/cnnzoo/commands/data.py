"""`cnnzoo data fetch|list|verify`: the data sets cnnzoo downloads, verified, into its cache."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ._common import Format, console, print_json
from ._lazy import group
from ._options import FormatOpt, JsonOpt


def _names() -> str:
    from ..data.sources import NAMES, VARIANTS

    return ", ".join(NAMES) + "".join(f" ({n}: --variant {'|'.join(v)})" for n, v in VARIANTS.items())


def register(app: typer.Typer) -> None:
    group(app, "data", "Data sets fetched and verified against their publishers' checksums: "
          "fetch, list, verify.", {"fetch": fetch_cmd, "list": list_cmd, "verify": verify_cmd})


def fetch_cmd(
    name: str = typer.Argument(..., help=f"the data set: {_names()}"),
    folder: Optional[str] = typer.Option(None, "--dir", help="fetch into this folder instead of "
                                         "the cache (then read it with --data NAME:DIR)"),
    variant: Optional[str] = typer.Option(None, "--variant", help="which form (Imagenette: "
                                          "160px (default), 320px or full)"),
    fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Download a data set, checked against the publisher's MD5, into the cache (or --dir).

    Each file is checked against the publisher's MD5 (as the installed torchvision lists it)
    before anything reads it; archives are unpacked safely; the folder is marked verified.
    Interrupted downloads resume; a file that fails its check is deleted and named;
    $CNNZOO_DATA_MIRROR (http(s):// or file://, a folder with the publishers' file names)
    replaces the publishers' servers. Without --dir the data goes to the cache
    ($CNNZOO_CACHE/datasets) and `--data NAME` (no path) reads it; nothing else ever downloads
    data."""
    from ..cache.download import stderr_progress
    from ..data.fetch import fetch
    from ..data.sources import target

    t = target(name, variant)
    path = fetch(name, variant, folder, progress=stderr_progress())
    spec = f"{t.name}:{path}" if folder else t.spec
    if fmt is Format.json:
        print_json({"dataset": t.key, "state": "verified", "path": str(path), "data": spec})
    else:
        console.print(f"{t.key}: verified, in {path}\nuse it with --data {spec}", highlight=False,
                      soft_wrap=True)


def list_cmd(fmt: FormatOpt = Format.table, json_flag: JsonOpt = False) -> None:
    """Every data set `data fetch` knows: where it is cached, verified or not.

    The states: verified (fetched and checked: `--data NAME` reads it), absent, partial (a
    download to resume) or unverified."""
    from ..data.fetch import listing

    rows = listing()
    if fmt is Format.json:
        print_json(rows)
        return
    t = Table(title="data sets (cnnzoo data fetch NAME)")
    for col in ("data set", "state", "MiB", "path", "about"):
        t.add_column(col, justify="right" if col == "MiB" else "left", no_wrap=col != "about")
    for r in rows:
        t.add_row(r["dataset"], r["state"], f"{r['bytes'] / 2**20:.1f}" if r["bytes"] else "-",
                  r["path"], r["about"])
    console.print(t)


def verify_cmd(
    name: Optional[str] = typer.Argument(None, help="a data set (default: every one fetched)"),
    folder: Optional[str] = typer.Option(None, "--dir", help="the folder it was fetched into "
                                         "with --dir (default: the cache)"),
    variant: Optional[str] = typer.Option(None, "--variant", help="which form (Imagenette)"),
    fmt: FormatOpt = Format.table, json_flag: JsonOpt = False,
) -> None:
    """Hash the files of fetched data sets again: are they what was verified?

    Every file is compared with what was verified at fetch time (and the publisher's MD5 for
    files kept as downloaded). A damaged data set is named, unmarked (`--data NAME` refuses it)
    and the command exits 2."""
    from ..data.fetch import verify_all

    rows = verify_all(name, variant, folder)
    if fmt is Format.json:
        print_json(rows)
    elif not rows:
        console.print("no data set is fetched: cnnzoo data fetch NAME", highlight=False)
    for r in rows if fmt is not Format.json else ():
        console.print(f"{r['dataset']}: verified ({r['path']})", highlight=False, soft_wrap=True)
