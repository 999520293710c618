"""`cnnzoo experiment`: the catalogue, exact analyzer numbers, every experiment's path end to end
at the smoke size (seconds), the ensemble's claim on real MNIST, and the CLI's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnzoo.experiments import EXPERIMENTS, ensemble_errors, run_experiment
from cnnzoo.experiments.common import Budget, Context, train

NAMES = ("inception-reduction", "stacked-3x3", "degradation", "ensemble", "lrn", "aux-heads")
STATUSES = {"reproduced", "partly", "not shown", "contradicted"}
KEYS = {"name", "claim", "source", "runs", "paper_figure", "kind", "paper", "measured", "verdict",
        "plot", "size", "data", "device", "seconds", "machine", "date"}


def test_list_shows_every_experiment(cli):
    assert set(NAMES) <= set(EXPERIMENTS)
    code, out, _ = cli("experiment", "--list", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == list(EXPERIMENTS)
    for r in rows:
        assert all(r[k] for k in ("claim", "source", "runs", "paper_figure")) and r["kind"] in ("analyzer", "training")
    code, out, _ = cli("experiment", "--list")
    assert code == 0 and "inception" in out and "degradation" in out


def test_unknown_name_exits_2_with_close_matches(cli, tmp_path):
    code, _, err = cli("experiment", "degradaton", "--out", str(tmp_path / "x"))
    assert code == 2 and "did you mean: degradation" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
    code, _, err = cli("experiment")
    assert code == 2 and "--list" in err


def test_inception_reduction_counts_are_the_analyzers_exactly(cli, tmp_path):
    code, out, _ = cli("experiment", "inception-reduction", "--out", str(tmp_path), "--format", "json")
    r = json.loads(out)
    assert code == 0 and KEYS <= set(r) and (tmp_path / "inception-reduction.png").stat().st_size > 0
    assert json.loads((tmp_path / "inception-reduction.json").read_text())["measured"] == r["measured"]
    red, naive = r["measured"]["reduced"], r["measured"]["naive"]
    hw = 28 * 28
    # 192 in: 1x1 64; 1x1 96 -> 3x3 128; 1x1 16 -> 5x5 32; pool -> 1x1 32 (seed 001: 128M)
    weights = 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32
    assert red["conv_weights"] == weights == 163_328 and red["conv_macs"] == weights * hw == 128_049_152
    assert red["params"] == weights + 64 + 96 + 128 + 16 + 32 + 32
    assert naive["conv_macs"] == (192 * 64 + 192 * 128 * 9 + 192 * 32 * 25) * hw == 303_464_448
    assert red["out_shape"] == [256, 28, 28] and naive["out_shape"] == [416, 28, 28]
    assert r["verdict"]["status"] == "reproduced" and abs(r["measured"]["reduced_vs_paper_macs_pct"]) < 0.1


def _smoke(name: str, tmp_path: Path) -> dict:
    r = run_experiment(name, size="smoke", out=tmp_path)
    assert KEYS <= set(r) and r["size"] == "smoke" and r["name"] == name
    assert r["verdict"]["status"] in STATUSES and r["verdict"]["tolerance"] and r["verdict"]["text"]
    assert (tmp_path / r["plot"]).stat().st_size > 1000 and r["plot"] == f"{name}.png"
    assert json.loads((tmp_path / f"{name}.json").read_text())["verdict"] == r["verdict"]
    return r


def test_stacked_3x3_counts_exact_and_trains(tmp_path):
    r = _smoke("stacked-3x3", tmp_path)
    c = r["measured"]["counts"]
    C, H, W = c["C"], c["H"], c["W"]
    assert c["one_5x5"]["params"] == 25 * C * C and c["two_3x3"]["params"] == 18 * C * C
    assert c["one_5x5"]["macs"] == 25 * C * C * H * W and c["two_3x3"]["macs"] == 18 * C * C * H * W
    assert c["one_5x5"]["receptive_field"] == c["two_3x3"]["receptive_field"] == [5, 5]
    assert set(r["measured"]["runs"]) == {"5x5", "3x3"}


@pytest.mark.parametrize("name", ["degradation", "ensemble", "lrn", "aux-heads"])
def test_training_experiment_smoke_path(name, tmp_path):
    r = _smoke(name, tmp_path)
    runs = r["measured"]["runs"]
    runs = runs if isinstance(runs, list) else list(runs.values())
    assert runs and all(run["train_err_pct"] and run["test_err_pct"] is not None for run in runs)
    if name == "degradation":
        assert {"plain20", "plain56", "resnet20", "resnet56"} == set(r["measured"]["runs"])
        assert all(len(run["train_err_pct"]) == 2 for run in runs)  # a curve: one point per epoch


def test_aux_head_net_returns_aux_outputs_in_training_only():
    import torch

    from cnnzoo.contract import AuxOutputs
    from cnnzoo.experiments.nets import SmallGoogLeNet

    on, off = SmallGoogLeNet(aux=True), SmallGoogLeNet(aux=False)
    x = torch.randn(2, 1, 28, 28)
    assert isinstance(on.train()(x), AuxOutputs) and on.eval()(x).shape == (2, 10)
    assert off.train()(x).shape == (2, 10)


def test_ensemble_is_no_worse_than_its_members_mean_on_real_mnist(real_mnist_dir, tmp_path):
    # 3 lenet5 members, 1,000 images x 1 epoch each: measured over 3 seed groups with
    # CNNZOO_BF16=off and =on before choosing this test (docs/experiments.md)
    ctx = Context(size="quick", out=tmp_path, data=f"mnist:{real_mnist_dir}", device="cpu")
    runs = [train(ctx, "lenet5", tag=f"s{i}", recipe="lenet", budget=Budget(1000, 1, 32), seed=i)
            for i in range(3)]
    e = ensemble_errors([Path(r["out"]) / "model.safetensors" for r in runs], runs[0]["data"])
    assert len(e["members_err_pct"]) == 3 and max(e["members_err_pct"]) < 75  # the members learned (chance: 90)
    assert e["ensemble_err_pct"] <= e["member_mean_err_pct"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_quick_size_end_to_end(name, tmp_path, cli):
    # the faster tests of the same path: test_training_experiment_smoke_path and the two above
    code, out, _ = cli("experiment", name, "--quick", "--out", str(tmp_path), "--format", "json")
    r = json.loads(out)
    assert code == 0 and r["size"] == "quick" and r["verdict"]["status"] in STATUSES
    assert (tmp_path / r["plot"]).exists()
