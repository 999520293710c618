"""The `cnnzoo` command: a thin layer over the library.

The verbs are listed in `commands/_verbs.py` (name, module, one-line help, examples); a verb's
module is imported only when that verb runs or shows its own help, so `cnnzoo --help` and
`cnnzoo --version` import neither torch nor the models. This file turns library errors into
clear messages and exit codes:
    0 success, 1 the job ran but failed (JobFailedError: a check did not pass, a NaN loss),
    2 bad input (any other CnnzooError: unknown model, bad shape or file, bad option),
    130 interrupted.
"""

from __future__ import annotations

import os
import sys

import typer

from .commands._lazy import LazyGroup
from .errors import CnnzooError

app = typer.Typer(
    name="cnnzoo",
    cls=LazyGroup,
    help="The landmark CNNs: build, analyze, train, evaluate, transfer and deploy them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from .version import __version__

        print(f"cnnzoo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """The landmark CNNs: build, analyze, train, evaluate, transfer and deploy them."""


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


def _error(message: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    try:
        rc = app(args=argv, standalone_mode=False)
    except CnnzooError as err:  # bad input (2) or a job that ran and failed (1): no traceback
        _error(str(err))
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as err:
        usage, abort = _usage_and_abort_errors()
        if isinstance(err, usage):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, abort):  # click turns Ctrl-C into Abort
            print("interrupted", file=sys.stderr)
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
