"""Helpers shared by CLI verbs."""

from __future__ import annotations

from enum import Enum
from typing import Any

from rich.console import Console, ConsoleDimensions

# Through a pipe (CI logs, `| less`, the docs test) a table keeps its natural width instead of
# being squeezed into 80 columns (or $COLUMNS): the same output on every machine, one line per row.
PIPE_WIDTH = 1000


class _PipeAwareConsole(Console):
    @property
    def size(self) -> ConsoleDimensions:
        if not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, 25)
        return Console.size.fget(self)  # type: ignore[attr-defined]

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


def make_console(stderr: bool = False) -> Console:
    """A rich Console that wraps to the terminal when there is one, and not at all otherwise."""
    return _PipeAwareConsole(stderr=stderr)


console = make_console()


class Format(str, Enum):
    table = "table"
    json = "json"


def print_json(obj: Any) -> None:
    # plain print: rich would wrap long lines and break machine parsing; strict JSON (no NaN)
    from ..results import to_json

    print(to_json(obj))


def human(n: float | None, unit: str = "") -> str:
    """12345678 -> '12.3M'."""
    if n is None:
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suffix}{unit}"
    return f"{n:g}{unit}"
