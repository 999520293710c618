"""`cnnzoo experiment leaderboard`: at the smoke size (a tiny copy of the data, two members, two
short epochs) the table, the chart, the published rows beside the measured ones, the epoch
chosen on validation and the test set scored once; the quick size (about an hour) is slow-marked."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from _cli import run_cli
from cnnzoo.experiments import EXPERIMENTS, run_experiment
from cnnzoo.experiments.leaderboard import MEMBERS, PUBLISHED, PUBLISHED_BY, SMOKE_MEMBERS, markdown_table
from cnnzoo.results import KEYS
from conftest import MNIST_DIR

FASHION = Path(os.environ.get("CNNZOO_FASHION_MNIST", MNIST_DIR.parent / "fashion-mnist"))


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("board")
    res = run_cli(["experiment", "leaderboard", "--size", "smoke", "--out", out, "--format", "json"])
    assert res.code in (0, None)
    return json.loads((out / "leaderboard.json").read_text()), out


def test_the_leaderboard_is_in_the_catalogue_with_every_family():
    assert EXPERIMENTS["leaderboard"].kind == "training"
    families = {m.family for m in MEMBERS}
    assert {"lenet", "vgg", "nin", "googlenet", "resnet_cifar", "densenet", "mobilenet", "shufflenet",
            "squeezenet"} <= families
    labels = {m.label for m in MEMBERS}
    assert {"ResNet-20", "ResNet-56", "plain-20"} <= labels and set(SMOKE_MEMBERS) <= labels


def test_smoke_run_writes_the_table_the_chart_and_the_json(board):
    result, out = board
    assert (out / "leaderboard.json").is_file() and (out / "leaderboard.md").is_file()
    assert (out / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = result["measured"]["rows"]
    assert [r["model"] for r in rows] == list(SMOKE_MEMBERS)
    for r in rows:  # result keys carry their units; every metric key is one results.py knows
        assert {"test_acc_pct", "val_acc_pct", "params", "macs", "train_time_s"} <= set(r)
        assert r["params"] > 0 and r["macs"] > 0 and r["train_time_s"] > 0
        assert {k for k in r if k.endswith("_pct")} <= set(KEYS)
    assert result["verdict"]["status"] in {"reproduced", "not reproduced"}
    assert result["verdict"]["text"].startswith("smoke size")


def test_the_published_rows_stand_beside_ours_marked_with_their_source(board):
    result, out = board
    published = result["measured"]["published"]
    assert [(p["name"], p["test_acc_pct"]) for p in published] == [(p["name"], p["test_acc_pct"]) for p in PUBLISHED]
    assert {p["test_acc_pct"] for p in published} == {92.5, 93.5, 93.7, 94.9, 95.0, 95.4, 95.9, 96.7}
    assert all(p["source"] == "published" and "Fashion-MNIST README" in p["by"] for p in published)
    table = (out / "leaderboard.md").read_text()
    assert table.count("published (Fashion-MNIST README)") == len(PUBLISHED)
    assert table.count("| measured |") == len(SMOKE_MEMBERS) and PUBLISHED_BY in table
    ordered = [float(line.split("|")[3]) for line in table.splitlines() if line.startswith("| ") and
               line.split("|")[3].strip()[:1].isdigit()]
    assert ordered == sorted(ordered, reverse=True)  # one table, by test accuracy


def test_each_member_is_selected_on_validation_and_tested_once(board):
    result, out = board
    for r in result["measured"]["rows"]:
        run = Path(r["run"])
        assert run.parent == out / "runs"
        history = list(csv.DictReader((run / "metrics.csv").open()))
        assert len(history) == r["epochs"] == 2
        val = [float(h["val_acc"]) for h in history]
        assert r["kept_epoch"] == 1 + val.index(max(val))  # the best validation epoch is kept
        assert r["val_images"] == 20 and r["test_images"] == 100


def test_markdown_table_marks_published_rows_and_orders_by_accuracy():
    ours = {"model": "tiny", "family": "lenet", "test_acc_pct": 93.0, "val_acc_pct": 92.0, "params": 5000,
            "macs": 1e6, "images": None, "epochs": 3, "kept_epoch": 2, "train_time_s": 4.0, "source": "measured"}
    pub = [{**p, "source": "published"} for p in PUBLISHED[:2]]
    lines = [ln for ln in markdown_table([ours], pub).splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert [ln.split("|")[1].strip() for ln in lines] == ["VGG16", "tiny", "2 conv, <100K params"]
    assert "all x 3 (2)" in lines[1] and "published" in lines[0]


@pytest.mark.slow
def test_quick_leaderboard_on_fashion_mnist(tmp_path, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("about an hour on 2 CPU cores: run with -m slow")
    if not (FASHION / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST not found at {FASHION}")
    res = run_experiment("leaderboard", size="quick", out=tmp_path, data=f"fashion-mnist:{FASHION}")
    rows = res["measured"]["rows"]
    assert len(rows) == len(MEMBERS) and all(r["test_images"] == 10000 for r in rows)
    assert max(r["test_acc_pct"] for r in rows) > 85
