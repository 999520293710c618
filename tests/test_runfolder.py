"""The run folder's one home (cnnzoo.runfolder): its file names, metrics.csv written and read with
one set of types for every reader (serve, experiments), and no file name written elsewhere; a
run folder is never overwritten by accident, is locked while training, and stands for its model
file wherever a model file is asked for."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn and friends)
import cnnzoo
from _train_models import TINY, TINY_ARGS, Messages, _one_thread  # noqa: F401  (shared fixture and settings)
from cnnzoo import runfolder
from cnnzoo.runfolder import (
    LOCK_FILE,
    METRICS_FILE,
    MODEL_FILE,
    STATE_FILE,
    RunFolderError,
    is_run_folder,
    read_metrics,
    write_metrics,
)
from cnnzoo.train.run import fit

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


# -- no silent overwrite, a lock while training -----------------------------------------------
def test_a_finished_run_is_refused_unless_resume_or_overwrite(tmp_path, cli):
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=TINY)
    before = {f: (tmp_path / f).read_bytes() for f in ("model.safetensors", "checkpoint.safetensors")}
    with pytest.raises(RunFolderError, match="already holds a run"):
        fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=TINY)
    code, _, err = cli("train", "tiny_cnn", "--epochs", "1", "--out", tmp_path, *TINY_ARGS)
    assert code == 2 and "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert {f: (tmp_path / f).read_bytes() for f in before} == before  # untouched
    code, _, _ = cli("train", "tiny_cnn", "--epochs", "1", "--seed", "1", "--out", tmp_path, "--overwrite",
                     *TINY_ARGS)
    assert code == 0 and (tmp_path / "model.safetensors").read_bytes() != before["model.safetensors"]
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_live_lock_is_refused_and_a_stale_one_taken_over(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    owner = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / LOCK_FILE).write_text(f"{owner.pid}\n")
        with pytest.raises(RunFolderError, match=f"in use by another training \\(pid {owner.pid}"):
            fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=TINY)
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(owner.pid)  # not taken
    finally:
        owner.kill()
        owner.wait()
    rep = Messages()  # the owner is gone: its lock is stale
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=TINY, reporter=rep)
    assert any("stale lock" in m and str(owner.pid) in m for m in rep.lines)
    assert (tmp_path / "model.safetensors").is_file() and not (tmp_path / LOCK_FILE).exists()


def test_out_under_a_regular_file_is_refused_before_training(tmp_path, cli):
    (tmp_path / "file").write_text("x")
    code, out, err = cli("train", "tiny_cnn", "--out", tmp_path / "file" / "run", *TINY_ARGS)
    assert code == 2 and "which is a file" in err and "epoch" not in out
    code, out, err = cli("train", "tiny_cnn", "--out", tmp_path / "file", *TINY_ARGS)
    assert code == 2 and "is a file, not a folder" in err and "epoch" not in out


# -- a run folder stands for its model file ---------------------------------------------------
def test_a_run_folder_is_its_model_file_and_the_training_state_is_redirected(tmp_path, cli):
    run = tmp_path / "run"
    run.mkdir()
    cnnzoo.save_model(run / "model.safetensors", cnnzoo.create_model("lenet5_modern"))
    (run / "checkpoint.safetensors").write_bytes(b"state")
    model, record = cnnzoo.load_model(run)
    assert record["model"] == "lenet5_modern"
    r = cli("summary", str(run / "checkpoint.safetensors"))
    assert r.code == 2
    assert "model.safetensors" in r.err
    r = cli("compare", str(run), "lenet5_modern", "--json")
    rows = r.json()
    assert rows[0]["params"] == rows[1]["params"] == 61706
