"""Training: recipes, schedules, the engine on real (embedded MNIST) data, the GPU fast path
exercised on the CPU, eval and the model record, progress reports. Faults are in
test_train_faults.py, option checks in test_train_options.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn, tiny_bn, tiny_aux, tiny32)
from _train_models import SGD, _one_thread, _step_ctx, _weights  # noqa: F401  (shared fixture and helpers)
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.modelfile import read_record
from cnnzoo.registry import (
    create_model,
    load_model,
)
from cnnzoo.train.engine import loss_fn, lr_factor, train_one_epoch
from cnnzoo.train.evaluation import evaluate_file
from cnnzoo.train.recipes import RECIPES, Recipe, get_recipe
from cnnzoo.train.run import fit


# -- recipes --------------------------------------------------------------------------------
def test_paper_recipes_hold_the_papers_numbers():
    a = RECIPES["alexnet"]
    assert (a.optimizer, a.momentum, a.lr, a.weight_decay, a.batch_size, a.schedule, a.gamma) == \
        ("sgd", 0.9, 0.01, 5e-4, 128, "plateau", 0.1)
    c = RECIPES["cifar_resnet"]
    assert (c.lr, c.batch_size, c.weight_decay, c.milestones, c.iterations, c.augment) == \
        (0.1, 128, 1e-4, [32000, 48000], 64000, "cifar")
    assert RECIPES["googlenet"].aux_weight == 0.3
    assert RECIPES["vgg"].augment == "vgg" and RECIPES["alexnet"].augment == "alexnet"
    f = RECIPES["fast"]
    assert f.schedule == "onecycle" and f.label_smoothing > 0 and f.amp == "auto"


def test_overrides_from_set_and_yaml(tmp_path):
    cfg = tmp_path / "r.yaml"
    cfg.write_text(yaml.safe_dump({"lr": 0.3, "milestones": [1, 2], "augment": "cifar"}))
    r = get_recipe("alexnet", {"lr": "0.05", "grad_clip": "2", "nesterov": "true"}, config=cfg)
    assert r.lr == 0.05 and r.milestones == [1, 2] and r.grad_clip == 2.0 and r.nesterov is True
    with pytest.raises(InvalidArgumentError, match="did you mean lr"):
        get_recipe("fast", {"lrr": "1"})
    with pytest.raises(InvalidArgumentError, match="takes float"):
        get_recipe("fast", {"lr": "fast"})
    with pytest.raises(InvalidArgumentError, match="augment must be one of"):
        get_recipe("fast", {"augment": "mixup"})
    with pytest.raises(InvalidArgumentError, match="unknown recipe 'alexnett'"):
        get_recipe("alexnett")


def test_a_field_declaration_drives_coercion_range_choices_and_resume(monkeypatch):
    """One declaration per field (recipes._field): a new field needs no other edit to be coerced
    from its default's type, range-checked, listed and resumable."""
    import dataclasses

    from cnnzoo.train import plan, recipes

    spec = recipes.spec("patience")
    assert (spec["kind"], spec["rule"], spec["resume"]) == (int, ">= 0", False)
    assert get_recipe("fast", {"patience": "4.0"}).patience == 4  # coerced to int, the default's type
    with pytest.raises(InvalidArgumentError, match="patience must be >= 0"):
        get_recipe("fast", {"patience": "-1"})
    assert get_recipe("fast", {"warmup_epochs": "2"}).warmup_epochs == 2.0
    assert recipes.spec("augment")["choices"] == recipes.AUGMENTATIONS
    assert set(plan.RESUME_MAY_CHANGE) == {f.name for f in dataclasses.fields(Recipe)
                                           if f.metadata["resume"]}
    rows = {r["field"]: r for r in recipes.fields_table()}
    assert rows.keys() == {f.name for f in dataclasses.fields(Recipe)}
    assert all(r["meaning"] for r in rows.values())
    assert "one of " + ", ".join(recipes.OPTIMIZERS) in rows["optimizer"]["meaning"]
    assert "in [0, 1)" in rows["momentum"]["meaning"] and "a resume may change it" in rows["lr"]["meaning"]
    recipes.check_field("lr", 0.1)
    with pytest.raises(InvalidArgumentError, match="lr must be > 0, got 0"):
        recipes.check_field("lr", 0.0)


def test_every_registered_model_names_an_existing_recipe():
    from cnnzoo.registry import get_entry, list_models, register

    for name in list_models():
        assert get_entry(name).recipe in RECIPES, name
    assert get_entry("resnet20").recipe == "cifar_resnet" and get_entry("resnet50").recipe == "resnet"
    assert get_entry("alexnet").recipe == "alexnet" and get_entry("mobilenet_v2").recipe == "fast"
    assert register.__kwdefaults__["recipe"] == "fast"  # the rule for a model that names none


def test_cifar_resnet_schedule_divides_at_32k_and_48k():
    r = RECIPES["cifar_resnet"]
    f = lr_factor(r, steps_per_epoch=391, total_steps=64000)
    assert [f(s) for s in (0, 31999, 32000, 47999, 48000, 63999)] == \
        pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    # the same run in epochs keeps the milestones at 50% and 75%
    r2 = Recipe(schedule="multistep", milestones=[5.0, 7.5], epochs=10)
    f2 = lr_factor(r2, 100, 1000)
    assert f2(499) == 1 and f2(500) == pytest.approx(0.1) and f2(750) == pytest.approx(0.01)
    oc = lr_factor(Recipe(schedule="onecycle", pct_start=0.25), 10, 100)
    assert oc(0) == pytest.approx(0.04) and oc(25) == pytest.approx(1.0) and oc(99) < 0.01


def test_aux_loss_uses_the_models_weight():
    m = create_model("tiny_aux", num_classes=10, in_chans=1).train()
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    out = m(x)
    loss, logits = loss_fn(out, y, Recipe())
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(loss, ce(out.logits, y) + 0.3 * ce(out.aux[0], y))
    loss2, _ = loss_fn(out, y, Recipe(aux_weight=1.0))
    torch.testing.assert_close(loss2, ce(out.logits, y) + ce(out.aux[0], y))


# -- the engine on real data ------------------------------------------------------------------
def test_trains_on_embedded_mnist_and_writes_everything(tmp_path):
    res = fit("tiny32", recipe="fast", epochs=3, out=tmp_path, overrides={"batch_size": 64, "limit_train": 4000})
    assert res["test_acc_pct"] > 85  # chance is 10%; 186 steps on 4000 real digits
    assert res["input"].startswith("28x28 images zero-padded by 2")
    for f in ("model.safetensors", "checkpoint.safetensors", "metrics.csv", "training_curves.png"):
        assert (tmp_path / f).is_file(), f
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,lr,train_loss") and len(rows) == 4
    rec = read_record(tmp_path / "model.safetensors")
    assert rec["model"] == "tiny32" and rec["data"] == "embedded" and rec["recipe"]["name"] == "fast"
    assert rec["classes"] == [str(i) for i in range(10)]
    pre = rec["preprocess"]
    assert pre["input_size"] == [1, 32, 32] and pre["resize"] == 28 and pre["grayscale"] is True
    assert pre["mean"][0] == pytest.approx(0.13, abs=0.01) and pre["std"][0] == pytest.approx(0.31, abs=0.01)
    assert rec["metrics"]["test_acc_pct"] == pytest.approx(res["test_acc_pct"])
    # eval agrees with the run's own test accuracy; 10-crop and the confusion matrix work
    ev = evaluate_file(tmp_path / "model.safetensors")
    assert ev["top1_err_pct"] == pytest.approx(res["test_top1_err_pct"], abs=0.5)  # eval scores in the precision the run trained in
    assert sum(map(sum, ev["confusion"])) == 1000 and len(ev["per_class_acc_pct"]) == 10
    ten = evaluate_file(tmp_path, ten_crop=True, allow_mirror=True)  # digits: the mirror rule refuses it unforced
    assert ten["view"] == "10-crop" and ten["top1_err_pct"] < 50


def test_fast_path_on_cpu_bf16_channels_last_fused_accum_aux(tmp_path):
    res = fit("tiny_aux", recipe="lenet", epochs=1, out=tmp_path,
              overrides={**SGD, "label_smoothing": 0.1, "no_decay_norm_bias": True, "amp": "bf16", "channels_last": "on", "fused": "on", "accum_steps": 2,
                         "batch_size": 64, "grad_clip": 5.0, "log_every": 10})
    assert res["test_acc_pct"] > 80
    m, _ = load_model(tmp_path / "model.safetensors")
    assert all(torch.isfinite(p).all() for p in m.parameters())


def test_gradient_accumulation_matches_the_full_batch(tmp_path):
    common = {**SGD, "batch_size": 64, "limit_train": 640, "schedule": "constant", "eval_every": 5}
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path / "a", overrides=common)
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path / "b", overrides={**common, "accum_steps": 4})
    a, b = _weights(tmp_path / "a/model.safetensors"), _weights(tmp_path / "b/model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=2e-5, rtol=1e-4)


def test_cli_train_and_eval_json(tmp_path, cli):
    # the lenet recipe with plain SGD: 0.65-0.75 test accuracy over seeds 0-4 with bf16 off
    # and on (the default recipe for this tiny net diverged on some seeds)
    r = cli("train", "tiny_cnn", "--epochs", "1", "--out", tmp_path, "--format", "json",
            "--recipe", "lenet", "--set", "optimizer=sgd", "--set", "momentum=0.9", "--lr", "0.05",
            "--set", "limit_train=1024", "--batch-size", "32", "--no-progress")
    assert r.code == 0
    res = r.json()
    assert res["model"] == "tiny_cnn" and res["test_acc_pct"] > 50  # percent, the unit in the key
    png = tmp_path / "cm.png"
    r = cli("eval", tmp_path / "model.safetensors", "--plot-confusion", png, "--format", "json")
    ev = r.json()
    assert r.code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    assert ev["top1_err_pct"] == pytest.approx(res["test_top1_err_pct"], abs=0.5)  # eval scores in the precision the run trained in
    r = cli("train", "tiny_cnn", "--set", "lr=abc", "--out", tmp_path / "x")
    assert r.code == 2


def test_torch_compile_path_trains_on_cpu(tmp_path):
    """--compile (inductor on the CPU) trains and gives a model file that loads uncompiled."""
    res = fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path,
              overrides={**SGD, "compile": True, "batch_size": 64, "limit_train": 1280})
    assert res["test_acc_pct"] > 50
    m, rec = load_model(tmp_path / "model.safetensors")
    assert rec["recipe"]["compile"] is True and not hasattr(m, "_orig_mod")


# -- progress reports -------------------------------------------------------------------------
def test_slow_steps_still_report_progress_on_time(monkeypatch):
    """log_every counts steps; when they are slow, a report still comes every PROGRESS_SECONDS
    (here 0: every step) so a run without a terminal never goes quiet."""
    from torch import nn

    import cnnzoo.train.engine as engine

    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    ctx = _step_ctx(m)
    ctx.recipe = Recipe(**{**SGD, "batch_size": 8, "log_every": 10_000})
    seen: list[int] = []
    ctx.on_progress = lambda done, metrics: seen.append(done)
    batches = [(torch.randn(8, 1, 2, 2), torch.randint(0, 2, (8,))) for _ in range(3)]
    train_one_epoch(m, batches, ctx, 0, 0)
    assert seen == []  # 3 fast steps, log_every 10,000: nothing before the epoch ends
    monkeypatch.setattr(engine, "PROGRESS_SECONDS", 0.0)
    train_one_epoch(m, batches, ctx, 0, 3)
    assert seen == [1, 2, 3]


def test_without_a_terminal_progress_lines_come_every_ten_seconds_with_the_run_eta(monkeypatch):
    import io

    from rich.console import Console

    import cnnzoo.commands._progress as prog

    clock = iter([0.0, 1.0, 4.0, 6.0, 11.0, 12.0, 22.5])
    monkeypatch.setattr(prog.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    rep = prog.ConsoleReporter(Console(file=out, width=200), progress=False)
    rep.epoch_begins(epoch=1, epochs=3, steps=100, done=0)
    m = {"loss": 1.0, "acc": 0.5, "img_s": 100.0}
    for done in (5, 20, 30, 55, 60, 100):
        rep.epoch_progress(done=done, metrics=m)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("estimated time left:")  # once, after the first timed steps
    steps = [ln for ln in lines if "step " in ln]
    assert [ln.split("step ")[1].split("/")[0] for ln in steps] == ["55", "100"]  # at >= 10 s intervals
    assert all("run ETA" in ln for ln in steps)
