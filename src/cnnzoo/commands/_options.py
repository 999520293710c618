"""Options that several verbs share, declared once: how a verb prints its result.

`--format` takes the verb's choices (typer lists them from the enum); `--json` is an eager flag
that makes `--format` json, so the two are aliases on every verb that prints data, through
click's ordinary callbacks. A verb declares both:

    def show(..., fmt: FormatOpt = Format.table, json_flag: JsonOpt = False) -> None:

(`json_flag` is never passed a value: `--json` only sets the format.) A verb with other choices
(`summary`: table, markdown, csv, json) declares `Annotated[ItsEnum, format_option()]`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer

from ._common import Format

_JSON_SEEN = "cnnzoo.json"  # ctx.meta key: --json was given


def _json_seen(ctx: typer.Context, value: bool) -> bool:
    if value:
        ctx.meta[_JSON_SEEN] = True
    return value


def _format_or_json(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """--format's value, or json where --json was given (eager, so it is seen first)."""
    if not ctx.meta.get(_JSON_SEEN):
        return value
    given = str(getattr(value, "value", value))
    if given != "json" and ctx.get_parameter_source(param.name or "").name == "COMMANDLINE":
        raise typer.BadParameter(f"--json and --format {given} disagree: give one", ctx, param)
    return type(value)("json") if isinstance(value, Enum) else "json"  # typer converted it already


def format_option(help: str = "how to print the result") -> Any:
    return typer.Option("--format", callback=_format_or_json, help=help)


FormatOpt = Annotated[Format, format_option()]
JsonOpt = Annotated[bool, typer.Option("--json", is_eager=True, expose_value=False,
                                       callback=_json_seen, help="the same as --format json")]


def choices(values: Any) -> str:
    """'a, b or c': a help string's list, written from the thing it lists."""
    values = [str(getattr(v, "value", v)) for v in values]
    return ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else "".join(values)


def combine_option() -> Any:
    """How an ensemble combines its members' outputs (eval and predict)."""
    from ..ensemble import COMBINE

    return typer.Option(help=f"ensembles: {choices(COMBINE)} (mean of the softmax is the papers' way)")


# -- bounded numbers (cnnzoo/bounds.py): checked when the option is parsed, before any work ------
def bounded(name: str) -> Any:
    """A typer callback that refuses the option's value outside bound `name` (exit 2, naming the
    option, the bound and the reason); None (an unset optional) passes."""
    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        from ..bounds import check_optional

        flag = max(param.opts, key=len) if param.opts else (param.name or name)
        return check_optional(name, value, flag)
    return check


def overwrite_option(help: str = "replace the output file if it exists (never the command's own input, "
                     "nor a training run's own files)") -> Any:
    """One --overwrite for every verb that writes a file (cnnzoo.outputs: the guard it relaxes)."""
    return typer.Option("--overwrite", help=help)


OverwriteOpt = Annotated[bool, overwrite_option()]


def check_out(path: Any, *, inputs: Any = (), overwrite: bool = False, label: str = "--out") -> Any:
    """The output guard (cnnzoo.outputs.check_output) as the CLI words it: before any work."""
    from ..outputs import check_output

    return check_output(path, inputs=inputs, overwrite=overwrite, label=label, flag="--overwrite")
