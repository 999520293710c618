"""The `cnnzoo` command: a thin layer over the library.

The verbs are listed in `commands/_verbs.py` (name, module, one-line help, examples); a verb's
module is imported only when that verb runs or shows its own help, so `cnnzoo --help` and
`cnnzoo --version` import neither torch nor the models. This file turns library errors into
clear messages and exit codes:
    0 success, 1 the job ran but failed (JobFailedError: a check did not pass, a NaN loss),
    2 bad input (any other CnnzooError: unknown model, bad shape or file, bad option),
    128 + the signal's number when a stop signal ended it: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
    (cnnzoo.signals; training saves its state first).
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


def _stopped(err: BaseException | None) -> int:
    """The exit code of a command a stop signal ended (128 + its number), said in one line."""
    import signal

    from .signals import name, stopped_by

    while err is not None and not hasattr(err, "signum") and err.__cause__ is not None:
        err = err.__cause__  # click wraps a KeyboardInterrupt in Abort
    signum = getattr(err, "signum", None) or stopped_by() or signal.SIGINT
    try:
        print("interrupted" if signum == signal.SIGINT else f"stopped by {name(signum)}", file=sys.stderr)
    except OSError:  # SIGHUP: the terminal may be gone
        pass
    return 128 + signum


def main(argv: list[str] | None = None) -> None:
    from .signals import cli_handlers

    with cli_handlers():  # SIGTERM and SIGHUP unwind like Ctrl-C (signals.py)
        code = _run(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and code in (0, 129, 130, 143):
        # A torchrun worker that finished or was stopped: its files are written (atomically,
        # fsynced) and its process group destroyed. Skip interpreter finalisation, where gloo's
        # worker threads could still abort the process ("terminate called without an active
        # exception").
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    """Run the command; its exit code."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except CnnzooError as err:  # bad input (2) or a job that ran and failed (1): no traceback
        _error(str(err))
        return err.exit_code
    except KeyboardInterrupt as err:
        return _stopped(err)
    except SystemExit:
        raise
    except Exception as err:
        usage, abort = _usage_and_abort_errors()
        if isinstance(err, usage):
            err.show()
            return err.exit_code
        if isinstance(err, abort):  # click turns Ctrl-C into Abort
            return _stopped(err)
        raise
    # standalone_mode=False hands back typer.Exit's code instead of exiting with it (typer turns
    # a KeyboardInterrupt into Exit(130), losing which signal it was)
    code = rc if isinstance(rc, int) else 0
    return _stopped(None) if code == 130 else code
