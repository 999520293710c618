"""The run folder's one home (cnnzoo.runfolder): its file names, metrics.csv written and read with
one set of types for every reader (serve, experiments), and no file name written elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnnzoo import runfolder
from cnnzoo.runfolder import METRICS_FILE, MODEL_FILE, STATE_FILE, is_run_folder, read_metrics, write_metrics

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnzoo"

HISTORY = [
    {"epoch": 1, "step": 10, "lr": 0.1, "train_loss": 2.3, "train_acc": 0.1, "val_loss": 2.0, "val_acc": 0.3,
     "img_per_s": 1234.5, "epoch_time_s": 1.25},
    {"epoch": 2, "step": 20, "lr": 0.01, "train_loss": 1.5, "train_acc": 0.5, "val_loss": 1.2, "val_acc": 0.6,
     "test_loss": 1.1, "test_acc": 0.65, "test_top5": 0.95, "img_per_s": 2000.0, "epoch_time_s": 1.0,
     "not_a_column": "dropped"},
]


def test_metrics_round_trip_with_one_set_of_types(tmp_path):
    path = write_metrics(tmp_path, HISTORY)
    assert path == tmp_path / METRICS_FILE
    rows = read_metrics(tmp_path)
    assert [list(r) for r in rows] == [list(runfolder.METRICS_FIELDS)] * 2  # every column in every row
    assert rows[0]["epoch"] == 1 and type(rows[0]["epoch"]) is int and type(rows[1]["step"]) is int
    assert type(rows[0]["train_loss"]) is float and type(rows[1]["img_per_s"]) is float
    assert rows[1]["img_per_s"] == 2000.0 and rows[0]["lr"] == 0.1
    assert rows[0]["test_acc"] is None and rows[1]["test_acc"] == 0.65  # test: the kept epoch only


def test_a_float_column_stays_float_even_when_whole(tmp_path):
    (tmp_path / METRICS_FILE).write_text("epoch,step,lr,train_acc\n3,30,1,1\n")
    row = read_metrics(tmp_path)[0]
    assert row == {"epoch": 3, "step": 30, "lr": 1.0, "train_acc": 1.0}
    assert type(row["lr"]) is float and type(row["epoch"]) is int


def test_no_metrics_yet_reads_as_no_rows(tmp_path):
    assert read_metrics(tmp_path) == [] and not is_run_folder(tmp_path)
    (tmp_path / MODEL_FILE).write_bytes(b"x")
    assert is_run_folder(tmp_path)


def test_serve_and_experiments_read_metrics_through_the_run_folder_module(tmp_path):
    from cnnzoo.experiments import common
    from cnnzoo.serve import runs

    write_metrics(tmp_path / "r", HISTORY)
    assert common.read_metrics is read_metrics and runs.read_metrics is read_metrics
    listed = runs.list_runs(tmp_path)
    assert listed[0]["epochs"] == 2 and listed[0]["last"] == read_metrics(tmp_path / "r")[-1]
    assert common.train_err(read_metrics(tmp_path / "r")[1]) == 50.0


def test_the_two_kinds_of_file_are_told_apart():
    # a model file (weights + record) and the training state (--resume) have their own names
    assert MODEL_FILE != STATE_FILE and {MODEL_FILE, STATE_FILE} <= set(runfolder.RUN_FILES)
    assert MODEL_FILE == "model.safetensors" and STATE_FILE == "checkpoint.safetensors"  # on disk as before


@pytest.mark.parametrize("name", [runfolder.MODEL_FILE, runfolder.STATE_FILE, runfolder.METRICS_FILE,
                                  runfolder.CURVES_FILE, runfolder.LOCK_FILE])
def test_a_run_folder_file_name_is_written_only_in_its_home(name):
    literal = re.compile(rf"""["']{re.escape(name)}["']""")
    found = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if literal.search(p.read_text())]
    assert found == ["runfolder.py"], f"{name} written outside cnnzoo/runfolder.py: {found}"
