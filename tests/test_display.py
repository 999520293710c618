"""Notebook display: results render as HTML tables (Jupyter calls _repr_html_) and stay plain
lists and dicts for everything else."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import cnnzoo
from cnnzoo.display import Record, Table, cell, html_table


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        self._in = tag in ("td", "th")

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.rows[-1].append(data)


def _cells(markup: str) -> list[list[str]]:
    p = _Cells()
    p.feed(markup)
    return p.rows


def test_table_and_record_stay_a_list_and_a_dict():
    t = Table([{"name": "a", "params": 1234}, {"name": "b", "macs": 5.5}], caption="x")
    assert t == [{"name": "a", "params": 1234}, {"name": "b", "macs": 5.5}]
    assert json.loads(json.dumps(t)) == list(t)
    assert _cells(t._repr_html_()) == [["name", "params", "macs"], ["a", "1,234", "-"], ["b", "-", "5.5"]]
    r = Record({"input_size": [3, 224, 224], "ok": True, "err": None})
    assert json.loads(json.dumps(r)) == dict(r)
    assert _cells(r._repr_html_())[1:] == [["input_size", "3x224x224"], ["ok", "yes"], ["err", "-"]]


def test_html_is_escaped_and_numbers_right_aligned():
    markup = html_table(["<b>"], [["<script>alert(1)</script>"], ["1,234"]])
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert re.search(r'text-align:right">1,234<', markup)
    assert cell(float("nan")) == "-" and cell(0.123456) == "0.1235" and cell(12_345_678.9) == "12,345,679"


def test_a_report_shows_its_text_table_as_html():
    report = cnnzoo.analyze("lenet5")
    rows = _cells(report._repr_html_())
    text = report.to_table()
    assert rows[0][0] == "Layer" and rows[1][0] == "c1" and rows[-1][0] == "total"
    for row in rows[1:]:  # every cell of the HTML is a cell of the text table, same order
        line = next(ln for ln in text.splitlines() if ln.startswith(row[0] + " ") or ln == row[0])
        assert line.split() == [c for c in row if c]
