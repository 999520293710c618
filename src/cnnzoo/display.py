"""Results that read well in a notebook: HTML tables in Jupyter, the plain list or dict elsewhere.

`Table` (a list of row dicts) and `Record` (a dict) are the library's own types with an
`_repr_html_` that Jupyter calls; everything else sees an ordinary list or dict (json.dumps,
equality, indexing and printing are unchanged). The ground floor: no torch, no numpy.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any, Iterable, Sequence

MAX_ROWS = 500  # a notebook cell stays usable; the data itself is never cut
_NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?%?")


def cell(value: Any) -> str:
    """One value as table text: counts with thousands separators, floats to 4 significant
    digits, lists joined, None and NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return "x".join(map(str, value)) if len(value) in (2, 3, 4) else ", ".join(map(str, value))
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {cell(v)}" for k, v in value.items())
    return str(value)


def html_table(head: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "",
               footer: str = "") -> str:
    """An escaped HTML table; numbers right-aligned."""
    rows = list(rows)
    out = ['<table class="cnnzoo">']
    if caption:
        out.append(f"<caption style=\"caption-side:top;text-align:left\">{html.escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in head) + "</tr></thead><tbody>")
    for row in rows[:MAX_ROWS]:
        tds = []
        for v in row:
            text = v if isinstance(v, str) else cell(v)
            align = "right" if _NUMBER.fullmatch(text) else "left"
            tds.append(f'<td style="text-align:{align}">{html.escape(text)}</td>')
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    if len(rows) > MAX_ROWS:
        footer = f"{len(rows) - MAX_ROWS:,} more rows not shown. " + footer
    if footer:
        out.append(f"<p><small>{html.escape(footer)}</small></p>")
    return "".join(out)


class Table(list):
    """Rows (dicts) shown as one HTML table in a notebook; columns in first-seen key order."""

    def __init__(self, rows: Iterable[dict[str, Any]] = (), caption: str = "") -> None:
        super().__init__(rows)
        self.caption = caption

    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self:
            seen.update(dict.fromkeys(row))
        return list(seen)

    def _repr_html_(self) -> str:
        cols = self.columns()
        return html_table(cols, ([row.get(c) for c in cols] for row in self), self.caption)


class Record(dict):
    """One result (a model's facts, a training run's outcome) as a two-column HTML table."""

    def __init__(self, data: dict[str, Any] | None = None, caption: str = "") -> None:
        super().__init__(data or {})
        self.caption = caption

    def _repr_html_(self) -> str:
        return html_table(("key", "value"), ((k, v) for k, v in self.items()), self.caption)
