"""The `cnnzoo` command: a thin layer over the library.

Each module in cnnzoo/commands/ defines `register(app)` and adds its verbs; this file only
assembles them and turns library errors into clear messages and exit codes:
    0 success, 1 the job ran but failed (JobFailedError: a check did not pass, a NaN loss),
    2 bad input (any other CnnzooError: unknown model, bad shape or file, bad option),
    130 interrupted.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import typer
from rich.console import Console
from rich.markup import escape

from .errors import CnnzooError

app = typer.Typer(
    name="cnnzoo",
    help="The landmark CNNs: build, analyze, train, evaluate, transfer and deploy them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _load_commands() -> None:
    from . import commands

    for mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        if not mod.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{mod}").register(app)


def _unwrap_help() -> None:
    """Join the hard-wrapped lines of each verb's docstring into paragraphs: the help panel
    re-wraps text to the terminal itself and would otherwise keep the source's line breaks."""
    import inspect
    import re

    for info in app.registered_commands:
        doc = info.help or inspect.getdoc(info.callback) or ""
        info.help = "\n\n".join(re.sub(r"\s*\n\s*", " ", para).strip()
                                  for para in doc.split("\n\n"))


_load_commands()
_unwrap_help()


def _usage_and_abort_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """click's usage errors and Abort, and those of the click that recent typer vendors."""
    import click

    usage: tuple[type, ...] = (click.exceptions.ClickException,)
    abort: tuple[type, ...] = (click.exceptions.Abort, typer.Abort)
    try:
        from typer._click import exceptions as vendored

        usage += (vendored.ClickException,)
        abort += tuple(x for x in (getattr(vendored, "Abort", None),) if x is not None)
    except ImportError:
        pass
    return usage, abort


def main(argv: list[str] | None = None) -> None:
    try:
        rc = app(args=argv, standalone_mode=False)
    except CnnzooError as err:  # bad input (2) or a job that ran and failed (1): no traceback
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as err:
        usage, abort = _usage_and_abort_errors()
        if isinstance(err, usage):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, abort):  # click turns Ctrl-C into Abort
            err_console.print("interrupted")
            sys.exit(130)
        raise
    # standalone_mode=False hands back typer.Exit's code instead of exiting with it
    code = rc if isinstance(rc, int) else 0
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and code == 0:
        # A torchrun worker that finished: its files are written (atomically, fsynced) and its
        # process group destroyed. Skip interpreter finalisation, where gloo's worker threads
        # could still abort the process ("terminate called without an active exception").
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    sys.exit(code)
