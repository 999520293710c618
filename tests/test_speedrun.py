"""The speedrun recipes and nets, and `cnnzoo bench to-accuracy`.

Learning is checked on the embedded MNIST subset (10k training images: one epoch is 78 steps of
128) with a loose bound that holds on any CPU, with bf16 autocast off and on (CNNZOO_BF16) and
across seeds; the speed itself is measured in BENCHMARKS.md, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

import cnnzoo
from cnnzoo.bench.to_accuracy import format_to_accuracy, to_accuracy
from cnnzoo.cli import app
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.train import fit, get_recipe

# Measured over seeds 0-7, fp32 and bf16: one epoch on the embedded subset gave 96.3-97.8%
# test accuracy (1000 images); 90% leaves room for other CPUs and kernels.
LEARNS = 0.90


@pytest.mark.parametrize("seed", [0, 1])
def test_speedrun_learns_in_one_epoch_on_the_embedded_subset(tmp_path, seed):
    res = fit("speednet", data="embedded", out=tmp_path / "run", seed=seed)
    assert res["recipe"] == "speedrun" and res["epochs"] == 1
    assert res["val_images"] == 0 and res["kept_epoch"] == 1  # nothing selected on the fly
    assert res["test_acc_pct"] >= 100 * LEARNS, res


def test_speedrun_recipes_and_nets_go_together():
    assert cnnzoo.registry.get_entry("speednet").recipe == "speedrun"
    assert cnnzoo.registry.get_entry("speednet_cifar").recipe == "speedrun_cifar"
    r = get_recipe("speedrun")
    assert (r.epochs, r.val_split, r.keep) == (1, 0.0, "last")
    m = cnnzoo.create_model("speednet")
    assert m(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert m(torch.randn(1, 1, 56, 56)).shape == (1, 10)  # larger inputs are pooled down to 4x4
    c = cnnzoo.create_model("speednet_cifar")
    out = c(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_speednet_cifar_takes_a_training_step():
    torch.manual_seed(0)
    m = cnnzoo.create_model("speednet_cifar", num_classes=4)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 4, (8,))
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(m(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < losses[0]


def test_to_accuracy_returns_both_arms_on_a_tiny_budget():
    res = to_accuracy(data="embedded", target=20.0, max_images=512, epochs=2, seed=0)
    for key in ("ours_s", "plain_s", "ratio", "ours_acc_pct", "plain_acc_pct", "per_epoch", "machine"):
        assert key in res
    assert res["train_images"] == 512 and res["model"] == "speednet" and res["recipe"] == "speedrun"
    for arm in ("ours", "plain"):
        assert 1 <= len(res["per_epoch"][arm]) <= 2
        assert 0 <= res[f"{arm}_acc_pct"] <= 100
        if res[f"{arm}_s"] is not None:  # reached: at an epoch end, after some training
            assert res[f"{arm}_s"] > 0 and res[f"{arm}_acc_pct"] >= 20.0
    assert (res["ratio"] is None) == (res["ours_s"] is None or res["plain_s"] is None)
    # the plain loop is the tutorial's float32 loop; ours follows the recipe's precision rule
    assert res["plain_precision"] == "fp32" and res["ours_precision"] in ("fp32", "bf16")
    text = format_to_accuracy(res)
    assert "ours" in text and "plain" in text and f"ours {res['ours_precision']} and plain fp32" in text


@pytest.mark.parametrize("flags,expected", [({"_is_amx_tile_supported": True}, "amx"),
                                            ({"_is_avx512_bf16_supported": True}, "avx512_bf16"),
                                            ({}, None)])
def test_bf16_is_the_default_on_cpus_with_fast_bf16(monkeypatch, flags, expected):
    from cnnzoo import precision

    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda v=flags.get(name, False): v, raising=False)
    monkeypatch.delenv("CNNZOO_BF16", raising=False)
    assert precision.cpu_fast_bf16() == expected
    cpu = torch.device("cpu")
    assert precision.fast_low_precision(cpu) is precision.fast_low_precision(cpu, 128) is (expected is not None)
    # small steps are bound by overhead, where avx512_bf16 alone does not pay (AMX does)
    assert precision.fast_low_precision(cpu, 32) is (expected == "amx")
    for forced, on in (("off", False), ("on", True)):  # the test suite's switch wins everywhere
        monkeypatch.setenv("CNNZOO_BF16", forced)
        assert precision.fast_low_precision(torch.device("cpu")) is on


def test_speednet_pools_before_it_normalises_and_skips_the_identity_pool():
    m = cnnzoo.create_model("speednet").eval()
    kinds = [type(layer).__name__ for layer in m.features]
    assert kinds == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"] * 2
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(m.forward_features(x), m.features(x))  # 4x4 already: no pool ran
    from cnnzoo.models.speednet import SpeedNet

    bn_first = SpeedNet(pool_first=False)
    assert sum(p.numel() for p in bn_first.parameters()) == sum(p.numel() for p in m.parameters()) == 18426


def test_bench_to_accuracy_cli_json_and_bad_input():
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "to-accuracy", "10", "--data", "embedded", "--max-images", "512",
                              "--epochs", "1", "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout[res.stdout.index("{"):])
    assert {"ours_s", "plain_s", "ratio", "ours_acc_pct", "plain_acc_pct"} <= set(d)
    for args, words in ((["150", "--data", "embedded"], "0 < A <= 100"),
                        (["99", "--data", "embedded", "--epochs", "0"], "--epochs"),
                        (["99", "--data", "embedded", "--recipe", "cifar_resnet"], "augment")):
        r = runner.invoke(app, ["bench", "to-accuracy", *args])
        assert isinstance(r.exception, InvalidArgumentError) and words in str(r.exception), (args, r.output)
    for args, words in ((["99"], "--data"), (["--data", "embedded"], "ACCURACY")):  # click's: both required
        r = runner.invoke(app, ["bench", "to-accuracy", *args])
        assert r.exit_code == 2 and words in r.output, (args, r.output)


def test_bench_to_accuracy_bad_input_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "cnnzoo", "bench", "to-accuracy", "0", "--data", "embedded"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "0 < A <= 100" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_to_accuracy_refuses_a_recipe_the_plain_loop_cannot_follow():
    with pytest.raises(InvalidArgumentError, match="augmentation"):
        to_accuracy(data="embedded", target=50, model_name="lenet5_modern", recipe_name="cifar_resnet",
                    max_images=256)
    with pytest.raises(InvalidArgumentError, match="auxiliary classifiers"):  # ours trains them
        to_accuracy(data="embedded", target=10, model_name="googlenet", recipe_name="lenet",
                    max_images=32, epochs=1)


def test_the_plain_arm_is_scored_in_float32_too(monkeypatch):
    import cnnzoo.bench.to_accuracy as ta

    seen = []
    real = ta.evaluate

    def spy(model, batches, **kw):
        seen.append((kw["recipe"].amp, kw["channels_last"]))
        return real(model, batches, **kw)

    monkeypatch.setattr(ta, "evaluate", spy)
    monkeypatch.setenv("CNNZOO_BF16", "on")  # ours in bf16 on any CPU
    res = to_accuracy(data="embedded", target=99.9, max_images=256, epochs=1, seed=0)
    assert res["ours_precision"] == "bf16" and res["plain_precision"] == "fp32"
    assert seen[0] == ("auto", True) and seen[1] == ("off", False)  # ours, then plain


def test_a_resumed_run_keeps_the_precision_it_started_with(monkeypatch):
    from cnnzoo.train import plan

    auto = get_recipe("speedrun")
    kept = plan._keep_precision(auto, {"amp": "bf16", "channels_last": "on"})
    assert (kept.amp, kept.channels_last) == ("bf16", "on")
    explicit = plan._keep_precision(get_recipe("speedrun", {"amp": "off"}), {"amp": "bf16", "channels_last": "off"})
    assert (explicit.amp, explicit.channels_last) == ("off", "on")  # an explicit setting stands
    # runs saved before the record held it: the rule of that time (CUDA and AMX only)
    monkeypatch.setattr(plan, "cpu_has_amx_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    legacy = plan._keep_precision(get_recipe("lenet"), None)
    assert (legacy.amp, legacy.channels_last) == ("off", "off")


def test_eval_weighs_the_precision_rule_at_the_training_batch():
    from cnnzoo.train.evaluation import scoring_recipe

    assert scoring_recipe("auto", {"recipe": {"batch_size": 32}}, 500).batch_size == 32
    assert scoring_recipe("auto", {"recipe": {"batch_size": 256, "accum_steps": 4}}, 500).batch_size == 64
    assert scoring_recipe("auto", {}, 500).batch_size == 500  # converted or pretrained files


def test_repeated_races_report_medians():
    res = to_accuracy(data="embedded", target=20.0, max_images=256, epochs=1, seed=0, repeats=3)
    assert res["repeats"] == 3 and len(res["races"]) == 3
    for arm in ("ours", "plain"):
        each = [race[f"{arm}_s"] for race in res["races"]]
        if None not in each:
            assert res[f"{arm}_s"] == sorted(each)[1]
    ratios = [race["ratio"] for race in res["races"]]
    if None not in ratios:
        assert res["ratio"] == sorted(ratios)[1]
        assert "medians of 3 races" in format_to_accuracy(res)
    with pytest.raises(InvalidArgumentError, match="--repeats must be an integer >= 1"):
        to_accuracy(data="embedded", target=20.0, repeats=0)


def test_a_file_of_the_earlier_speednet_layout_is_refused_with_the_reason(tmp_path):
    from cnnzoo.errors import ModelFileError
    from cnnzoo.modelfile import save_model
    from cnnzoo.models.speednet import SpeedNet

    m = cnnzoo.create_model("speednet")
    m.features = SpeedNet(pool_first=False).features  # BN before the pools, as written before 2026-11-28
    save_model(tmp_path / "old.safetensors", m)
    with pytest.raises(ModelFileError, match="written for an earlier layout of speednet"):
        cnnzoo.load_model(tmp_path / "old.safetensors")


# -- Fashion-MNIST: speednet_fashion + recipe speedrun_fashion ---------------------------------------
def _fashion(tmp_path, n: int = 300) -> str:
    """A tiny Fashion-MNIST-shaped folder (random images) for the code path, not for learning."""
    from _datasets import write_fashion_mnist

    return write_fashion_mnist(tmp_path, n)


def test_speednet_fashion_and_its_recipe_go_together():
    from cnnzoo.models.speednet import speedrun_model

    entry = cnnzoo.registry.get_entry("speednet_fashion")
    assert entry.recipe == "speedrun_fashion" and entry.input_size == (1, 28, 28)
    r = get_recipe("speedrun_fashion")
    # the plain loop of `bench to-accuracy` follows it: no augmentation, no accumulation; one run,
    # nothing selected on the fly: all images train and the last weights are kept
    assert (r.augment, r.accum_steps, r.val_split, r.keep) == ("none", 1, 0.0, "last")
    m = cnnzoo.create_model("speednet_fashion")
    params = sum(p.numel() for p in m.parameters())
    assert params < 100_000  # the published row it races is "2 conv, < 100K parameters"
    assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10) and m(torch.randn(1, 1, 40, 40)).shape == (1, 10)
    assert speedrun_model("fashion-mnist") == "speednet_fashion" and speedrun_model("mnist") == "speednet"


def test_to_accuracy_races_speednet_fashion_on_fashion_mnist(tmp_path):
    res = to_accuracy(data=_fashion(tmp_path), target=5.0, max_images=256, epochs=1, seed=0)
    assert res["model"] == "speednet_fashion" and res["recipe"] == "speedrun_fashion"
    assert res["data"].startswith("fashion-mnist:") and set(res["per_epoch"]) == {"ours", "plain"}


def test_bench_to_accuracy_cli_picks_the_fashion_net(tmp_path, cli):
    code, out, _ = cli("bench", "to-accuracy", "5", "--data", _fashion(tmp_path), "--max-images", "256",
                       "--epochs", "1", "--format", "json")
    assert code in (0, None)
    d = json.loads(out[out.index("{"):])
    assert d["model"] == "speednet_fashion" and d["target_acc_pct"] == 5.0
