"""Helpers shared by CLI verbs."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from rich.console import Console

console = Console()


class Format(str, Enum):
    table = "table"
    json = "json"


def print_json(obj: Any) -> None:
    # plain print: rich would wrap long lines and break machine parsing
    print(json.dumps(obj, indent=2, default=str))


def human(n: float | None, unit: str = "") -> str:
    """12345678 -> '12.3M'."""
    if n is None:
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suffix}{unit}"
    return f"{n:g}{unit}"
