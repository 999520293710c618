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


def test_the_library_returns_tables_and_records(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import _train_models  # noqa: F401  (registers tiny_cnn)
    from cnnzoo import hub
    from cnnzoo.analysis.compare import compare
    from cnnzoo.train import PrintReporter, fit

    rows = compare(["lenet5", "alexnet"])
    assert isinstance(rows, Table) and [r["name"] for r in rows] == ["lenet5", "alexnet"]
    assert _cells(rows._repr_html_())[1][0] == "lenet5"
    info = cnnzoo.model_info("resnet50")
    assert isinstance(info, Record) and ["name", "resnet50"] in _cells(info._repr_html_())
    assert isinstance(hub.listing(), Table) and isinstance(hub.details("resnet50"), Table)
    res = fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path / "run",
              overrides={"batch_size": 64, "limit_train": 256, "log_every": 1},
              reporter=PrintReporter(every=0))
    printed = capsys.readouterr().out  # plain lines a notebook cell shows: messages and progress
    assert "training tiny_cnn" in printed and "epoch 1/1: step 1/" in printed and "[" not in printed
    assert isinstance(res, Record) and "test_acc_pct" in _cells(res._repr_html_())[1 + list(res).index("test_acc_pct")]


def test_the_committed_notebooks_are_the_generators():
    """notebooks/*.ipynb are written by scripts/gen_notebooks.py (.ci/run executes them)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "scripts" / "gen_notebooks.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list((root / "notebooks").glob("*.ipynb"))) == 5
