"""The `cnnzoo` command: a thin layer over the library.

Each module in cnnzoo/commands/ defines `register(app)` and adds its verbs; this file only
assembles them and turns library errors into clear messages and exit codes:
    0 success, 1 the job ran but failed (e.g. a check did not pass, a NaN loss),
    2 bad input (unknown model, bad shape or file, bad option), 130 interrupted.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import typer
from rich.console import Console

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


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=False)
    except CnnzooError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as err:  # click's usage errors
        import click

        usage = (click.exceptions.ClickException,)
        try:  # recent typer vendors its own click: its usage errors are not click's
            from typer._click.exceptions import ClickException as TyperClickException

            usage += (TyperClickException,)
        except ImportError:
            pass
        if isinstance(err, usage):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(130)
        raise
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A torchrun worker that finished: its files are written (atomically, fsynced) and its
        # process group destroyed. Skip interpreter finalisation, where gloo's worker threads
        # could still abort the process ("terminate called without an active exception").
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    sys.exit(0)
