"""Honest evaluation: validation held out of the training set (stratified, fixed seed, kept by
resume), the schedule and the kept weights reading validation only, the test set scored once."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn, tiny_rgb)
from _train_models import _one_thread, _weights  # noqa: F401
from cnnzoo.data.datasets import load_split, parse_spec, stratified_split, val_count
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.results import pct
from cnnzoo.train import loop
from cnnzoo.train import state as ckpt
from cnnzoo.train.feed import Feed, load_data
from cnnzoo.train.recipes import get_recipe
from cnnzoo.train.reporter import Reporter
from cnnzoo.train.run import fit

# constant lr: the first k epochs of a longer run are the same as a k-epoch run
QUICK = {"optimizer": "sgd", "lr": 0.05, "schedule": "constant", "batch_size": 64, "limit_train": 640}


class Messages(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def _rows(out: Path) -> list[dict]:
    with open(out / "metrics.csv") as f:
        return list(csv.DictReader(f))


# -- the split ------------------------------------------------------------------------------
def test_split_is_stratified_disjoint_and_deterministic():
    labels = load_split(parse_spec("embedded"), "train").labels
    train, val = stratified_split(labels, val_count(0.1, len(labels)))
    assert len(val) == 1000 and len(train) == 9000
    assert not set(train.tolist()) & set(val.tolist()) and len(set(train.tolist()) | set(val.tolist())) == 10000
    assert torch.bincount(labels[val], minlength=10).tolist() == [100] * 10  # 1,000 of each digit
    again = stratified_split(labels, 1000)
    assert torch.equal(again[1], val)
    odd = stratified_split(labels[:997], 101)[1]  # proportional, by largest remainders
    want = torch.bincount(labels[:997], minlength=10) * 101 / 997
    assert len(odd) == 101 and ((torch.bincount(labels[:997][odd], minlength=10) - want).abs() < 1).all()
    assert val_count(250, 10000) == 250 and val_count(0, 10000) == 0
    for bad in (10000, 0.00001):
        with pytest.raises(InvalidArgumentError, match="val-split"):
            val_count(bad, 10000)


def test_run_data_keeps_validation_out_of_training():
    spec, train, val, test, split = load_data("embedded", get_recipe("lenet"))
    full = load_split(spec, "train")
    assert len(train) + len(val) == len(full) == 10000 and len(test) == 1000
    idx = split["val_index"]
    assert torch.equal(val.images, full.images[idx]) and torch.equal(val.labels, full.labels[idx])
    kept = torch.ones(len(full), dtype=torch.bool)
    kept[idx] = False
    assert torch.equal(train.images, full.images[kept])
    # limit_train takes training images after the split: the held-out ones never move
    _, small, val2, _, _ = load_data("embedded", get_recipe("lenet", {"limit_train": 100}))
    assert len(small) == 100 and torch.equal(val2.images, val.images)
    _, _, none, _, split0 = load_data("embedded", get_recipe("lenet", {"val_split": 0}))
    assert none is None and "--val-split 0" in split0["note"]


def test_recipe_field_is_checked():
    assert get_recipe("lenet").val_split == 0.1 and get_recipe("vgg").keep == "best"
    with pytest.raises(InvalidArgumentError, match="val_split"):
        get_recipe("lenet", {"val_split": -0.1})
    with pytest.raises(InvalidArgumentError, match="val_split"):
        get_recipe("lenet", {"val_split": 2.5})
    with pytest.raises(InvalidArgumentError, match="keep"):
        get_recipe("lenet", {"keep": "worst"})


# -- what reads which split -----------------------------------------------------------------
@pytest.fixture
def spy(monkeypatch):
    """Records every evaluation during training: the split, the images, the weights scored;
    validation accuracy can be scripted (`spy.val_accs`), the plateau's readings too."""
    class Spy:
        calls: list[tuple[str, int]] = []
        weights: list[dict] = []
        val_accs: list[float] = []
        plateau: list[float] = []
        results: list[dict] = []

    s = Spy()
    s.calls, s.weights, s.val_accs, s.plateau, s.results = [], [], [], [], []
    real_batches, real_eval = Feed.eval_batches, loop.evaluate
    current = {}

    def eval_batches(self, split="val"):
        current["split"] = split
        return real_batches(self, split)

    def evaluate(model, batches, **kw):
        res = real_eval(model, batches, **kw)
        split = current.pop("split")
        s.calls.append((split, res["n"]))
        inner = ckpt.unwrap(model)
        s.weights.append({k: v.detach().clone() for k, v in inner.state_dict().items()})
        if split == "val" and s.val_accs:
            res = {**res, "acc": s.val_accs.pop(0)}
        s.results.append(res)
        return res

    real_step = torch.optim.lr_scheduler.ReduceLROnPlateau.step

    def plateau_step(self, metrics, *a, **kw):
        s.plateau.append(float(metrics))
        return real_step(self, metrics, *a, **kw)

    monkeypatch.setattr(Feed, "eval_batches", eval_batches)
    monkeypatch.setattr(loop, "evaluate", evaluate)
    monkeypatch.setattr(torch.optim.lr_scheduler.ReduceLROnPlateau, "step", plateau_step)
    return s


def test_no_test_image_reaches_the_schedule_or_the_selection(tmp_path, spy):
    rep = Messages()
    res = fit("tiny_cnn", recipe="lenet", epochs=3, out=tmp_path, reporter=rep,
              overrides={**QUICK, "schedule": "plateau", "val_split": 300})
    # validation (300 held-out training images) after each epoch, the test set (1,000) once, last
    assert spy.calls == [("val", 300)] * 3 + [("test", 1000)]
    assert spy.plateau == [r["acc"] for r in spy.results[:3]]  # the schedule read validation only
    assert res["test_acc_pct"] == pct(spy.results[-1]["acc"]) and res["test_images"] == 1000
    assert res["val_images"] == 300 and res["val_acc_pct"] is not None
    rows = _rows(tmp_path)
    assert [r["val_acc"] != "" for r in rows] == [True] * 3
    assert [r["test_acc"] != "" for r in rows].count(True) == 1  # the kept epoch's row only
    assert any("held out of the 10000 training images" in m for m in rep.lines)
    assert any(m.startswith("test (scored once") for m in rep.lines)


def test_keep_best_keeps_the_best_validation_epoch(tmp_path, spy):
    spy.val_accs = [0.5, 0.9, 0.7]  # epoch 2 is the best by validation
    res = fit("tiny_cnn", recipe="lenet", epochs=3, out=tmp_path, overrides=QUICK)
    kept = _weights(tmp_path / "model.safetensors")
    for k, v in kept.items():
        assert torch.equal(v, spy.weights[1][k]), k  # epoch 2's weights ...
        assert torch.equal(v, spy.weights[3][k]), k  # ... are the ones the test set scored
    assert not all(torch.equal(v, spy.weights[2][k]) for k, v in kept.items())
    assert res["kept_epoch"] == 2 and res["val_acc_pct"] == 90
    rec = json.loads(json.dumps(__import__("cnnzoo.modelfile").modelfile.read_record(tmp_path / "model.safetensors")))
    m = rec["metrics"]
    assert m["kept_epoch"] == 2 and m["val_acc_pct"] == 90 and m["test_acc_pct"] == res["test_acc_pct"] and m["epochs"] == 3
    assert rec["split"]["source"] == "held out" and rec["split"]["val_index"] == 1000
    rows = _rows(tmp_path)
    assert rows[1]["test_acc"] != "" and rows[0]["test_acc"] == rows[2]["test_acc"] == ""
    # keep=last: the last epoch's weights, whatever validation says
    spy.val_accs = [0.5, 0.9, 0.7]
    last = fit("tiny_cnn", recipe="lenet", epochs=3, out=tmp_path / "last", overrides={**QUICK, "keep": "last"})
    assert last["kept_epoch"] == 3
    for k, v in _weights(tmp_path / "last/model.safetensors").items():
        assert torch.equal(v, spy.weights[6][k]), k


def test_resume_reuses_the_split_and_the_best_epoch(tmp_path, spy, monkeypatch):
    from cnnzoo.data import datasets

    spy.val_accs = [0.9, 0.5]
    fit("tiny_cnn", recipe="lenet", epochs=2, out=tmp_path, overrides=QUICK)
    first_index = ckpt.read_training_state(tmp_path)[1]["split"]["val_index"]
    # a changed split seed would draw other images: the resumed run must not look at it
    monkeypatch.setattr(datasets, "SPLIT_SEED", 7)
    spy.val_accs = [0.6]
    res = fit(resume=tmp_path, epochs=3)
    state = ckpt.read_training_state(tmp_path)[1]
    assert torch.equal(state["split"]["val_index"], first_index)
    assert state["best"]["epoch"] == 1 and res["kept_epoch"] == 1  # 0.9 at epoch 1 still the best
    for k, v in _weights(tmp_path / "model.safetensors").items():
        assert torch.equal(v, spy.weights[0][k]), k


def test_resume_continues_exactly_with_validation(tmp_path):
    whole = fit("tiny_cnn", recipe="lenet", epochs=2, out=tmp_path / "a", overrides=QUICK)
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path / "b", overrides=QUICK)
    resumed = fit(resume=tmp_path / "b", epochs=2)
    assert resumed["val_acc_pct"] == whole["val_acc_pct"] and resumed["test_acc_pct"] == whole["test_acc_pct"]
    a, b = _weights(tmp_path / "a/model.safetensors"), _weights(tmp_path / "b/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_val_split_0_says_so_and_refuses_the_plateau(tmp_path, spy):
    rep = Messages()
    res = fit("tiny_cnn", recipe="lenet", epochs=2, out=tmp_path, reporter=rep, overrides={**QUICK, "val_split": 0})
    assert spy.calls == [("test", 1000)] and res["kept_epoch"] == 2 and res["val_acc_pct"] is None
    assert any("--val-split 0" in m for m in rep.lines)
    with pytest.raises(InvalidArgumentError, match="plateau.*validation"):
        fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path / "p",
            overrides={**QUICK, "val_split": 0, "schedule": "plateau"})


def test_cli_val_split(tmp_path, cli):
    r = cli("train", "tiny_cnn", "--epochs", "1", "--out", tmp_path, "--val-split", "200", "--format",
            "json", "--set", "limit_train=640", "--batch-size", "64", "--no-progress")
    res = r.json()
    assert r.code == 0 and res["val_images"] == 200 and res["kept_epoch"] == 1
    for bad in ("abc", "1.5", "-1"):
        r = cli("train", "tiny_cnn", "--val-split", bad, "--out", tmp_path / "x")
        assert r.code == 2
        assert "--val-split" in r.err


# -- image folders --------------------------------------------------------------------------
def _folder(root: Path, splits: tuple[str, ...], n: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in splits:
        for c, colour in enumerate(("red", "blue")):
            d = root / split / colour
            d.mkdir(parents=True)
            for i in range(n):
                px = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)
                px[..., 0 if c == 0 else 2] += 180
                Image.fromarray(px).save(d / f"{i}.png")
    return root


def test_folder_layouts(tmp_path):
    recipe = get_recipe("lenet")
    full = _folder(tmp_path / "full", ("train", "val", "test"))
    _, train, val, test, split = load_data(f"folder:{full}", recipe)
    assert val.root.name == "val" and test.root.name == "test" and len(train) == 24
    assert split["source"] == "folder" and "test: test/" in split["note"]
    imagenet = _folder(tmp_path / "imagenet", ("train", "val"))
    _, train, val, test, split = load_data(f"folder:{imagenet}", recipe)
    assert val.root.name == test.root.name == "val" and "both val/" in split["note"]
    only_test = _folder(tmp_path / "only_test", ("train", "test"))
    _, train, val, test, split = load_data(f"folder:{only_test}", recipe)
    assert split["source"] == "held out" and len(val) == 2 and len(train) == 22 and test.root.name == "test"
    assert sorted(y for _, y in val.samples) == [0, 1]  # stratified: one of each class
    assert not {p for p, _ in val.samples} & {p for p, _ in train.samples}


def test_folder_with_train_and_val_only_says_val_is_both(tmp_path):
    root = _folder(tmp_path / "d", ("train", "val"))
    rep = Messages()
    res = fit("tiny_rgb", data=f"folder:{root}", recipe="lenet", epochs=1, out=tmp_path / "run", reporter=rep,
              overrides={"batch_size": 8, "workers": 0})
    assert res["val_split"] == "folder" and res["val_images"] == res["test_images"] == 24
    assert any("validation and test are both val/" in m for m in rep.lines)
