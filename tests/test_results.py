"""One result vocabulary: the library makes the keys (percent, the unit in the key), the Python
API and every `--format json` give the same ones, serve's Compare agrees with `cnnzoo compare`,
and docs/results.md lists every metric key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import _train_models  # noqa: F401  (registers tiny_cnn)
from _cli import run_cli
from _train_models import _one_thread  # noqa: F401  (shared fixture)
from cnnzoo.analysis.compare import compare, parse_input, published_figure
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.hub import TABLE
from cnnzoo.registry import model_info
from cnnzoo.results import KEYS, PCT, PTS, err_pct, pct, scores
from cnnzoo.train.evaluation import evaluate_file
from cnnzoo.train.run import fit

DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def _keys(result: Any, pick) -> set[str]:
    """Every key of a result (nested dicts and lists) that `pick` chooses."""
    if isinstance(result, dict):
        return {k for k in result if isinstance(k, str) and pick(k)}.union(
            *(_keys(v, pick) for v in result.values()))
    if isinstance(result, (list, tuple)):
        return set().union(*(_keys(v, pick) for v in result))
    return set()


def metric_keys(result: Any) -> set[str]:
    """Every key with a unit suffix (`_pct`, `_pts`)."""
    return _keys(result, lambda k: k.endswith((PCT, PTS)))


def unitless_keys(result: Any) -> set[str]:
    """Keys that name an accuracy or error without a unit: the old spellings, which no result may use."""
    return _keys(result, lambda k: k.endswith(("_acc", "_err")) or k in ("top1", "top5", "acc"))


def _cli_json(capsys, argv: list[str]):
    r = run_cli(argv, capsys)
    assert r.code == 0, r.out
    return r.json()


def _in_vocabulary(result) -> None:
    assert metric_keys(result) <= set(KEYS), metric_keys(result) - set(KEYS)
    assert not unitless_keys(result), unitless_keys(result)


def test_the_helpers_round_as_every_result():
    assert pct(0.9712) == 97.12 and err_pct(0.9712) == 2.88 and pct(None) is err_pct(None) is None
    assert scores("val", None, None) == {"val_acc_pct": None, "val_top1_err_pct": None, "val_top5_err_pct": None}
    assert scores("", 0.5, 1.0) == {"acc_pct": 50.0, "top1_err_pct": 50.0, "top5_err_pct": 0.0}
    assert unitless_keys({"a": [{"test_acc": 1}], "top1": 2, "test_acc_pct": 3}) == {"test_acc", "top1"}


def test_docs_schema_lists_every_key_with_its_meaning():
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \| (?:percent|points) \|$", DOC.read_text(), re.M))
    assert rows == KEYS


def test_fit_eval_and_the_model_record_match_their_json(tmp_path, capsys):
    overrides = {"optimizer": "sgd", "lr": 0.05, "batch_size": 64, "limit_train": 256}
    res = fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path / "api", overrides=overrides)
    cli = _cli_json(capsys, ["train", "tiny_cnn", "--recipe", "lenet", "--epochs", "1", "--out",
                             str(tmp_path / "cli"), "--set", "optimizer=sgd", "--lr", "0.05",
                             "--batch-size", "64", "--set", "limit_train=256", "--no-progress",
                             "--format", "json"])
    assert list(cli) == list(res)  # the same keys, in the same order
    assert cli["test_acc_pct"] == res["test_acc_pct"] == pytest.approx(100 - res["test_top1_err_pct"])
    _in_vocabulary(res)
    from cnnzoo.modelfile import read_record

    metrics = read_record(tmp_path / "api" / "model.safetensors")["metrics"]
    _in_vocabulary(metrics)
    assert metrics["test_acc_pct"] == res["test_acc_pct"]
    ev = evaluate_file(tmp_path / "api")
    assert _cli_json(capsys, ["eval", str(tmp_path / "api"), "--format", "json"]) == ev
    _in_vocabulary(ev)
    assert set(ev["per_class_acc_pct"]) == set(ev["classes"])


def test_compare_info_and_weights_match_their_json(capsys):
    names = ["lenet5", "alexnet", "googlenet"]
    rows = compare(names)
    assert _cli_json(capsys, ["compare", *names, "--format", "json"]) == rows
    _in_vocabulary(rows)
    g = rows[2]  # GoogLeNet's registry entry has a top-5 error only
    assert g["top1_err_pct"] is None and g["top1_acc_pct"] is None and g["top5_err_pct"] is not None
    assert rows[0]["top1_acc_pct"] == 100 - rows[0]["top1_err_pct"]
    assert published_figure("lenet5")["top1_err_pct"] == 0.95
    info = _cli_json(capsys, ["info", "alexnet", "--format", "json"])
    assert info["published"] == model_info("alexnet")["published"]
    _in_vocabulary(info)
    weights = _cli_json(capsys, ["weights", "--format", "json"])
    assert weights == [e.as_dict() for n in sorted(TABLE) for e in TABLE[n]]
    _in_vocabulary(weights)


def test_parse_input_is_the_library_s():
    assert parse_input(" 3x227,227 ") == (3, 227, 227)
    with pytest.raises(InvalidArgumentError, match="CxHxW"):
        parse_input("3x0x4")


def test_serve_compare_agrees_with_cnnzoo_compare(tmp_path, capsys):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from cnnzoo.serve import create_app

    cli = _cli_json(capsys, ["compare", "alexnet", "resnet18", "--input", "3x224x224", "--format", "json"])
    with TestClient(create_app(tmp_path, models=["alexnet", "resnet18"], cache=tmp_path / "cache")) as client:
        api = client.get("/api/compare", params={"models": "alexnet,resnet18", "input": "3x224x224"}).json()
        zoo = {r["name"]: r for r in client.get("/api/zoo").json()}
    for c, a in zip(cli, api):
        assert {k: a[k] for k in c} == c  # every key of the CLI's row, with the same value
        _in_vocabulary(a)
    native = _cli_json(capsys, ["compare", "alexnet", "resnet18", "--format", "json"])
    for c in native:
        assert {k: zoo[c["name"]][k] for k in c} == c
