"""Training options: every value is checked before anything is written (command line, --set,
YAML config, eval), every recipe field is explained, a resumed run applies what may change and
refuses the rest, and a run with nothing to do is an error, not a saved model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn and friends)
from _train_models import TINY, TINY_ARGS, _one_thread  # noqa: F401  (shared fixture and settings)
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.train import state as ckpt
from cnnzoo.train.recipes import Recipe
from cnnzoo.train.run import fit


# -- option values ----------------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["--lr", "nan"], "lr must be a finite number"), (["--lr", "inf"], "lr must be a finite number"),
    (["--lr", "-1"], "lr must be > 0"), (["--set", "betas=[2,3]"], "betas must be two numbers in [0, 1)"),
    (["--set", "betas=5"], "betas takes two numbers (beta1, beta2)"), (["--set", "momentum=-1"], "momentum must be in [0, 1)"),
    (["--set", "limit_train=-5"], "limit_train must be >= 1"), (["--set", "ckpt_every=-1"], "ckpt_every must be >= 0"),
    (["--set", "weight_decay=-1"], "weight_decay must be >= 0"), (["--set", "eval_every=0"], "eval_every must be >= 1"),
    (["--set", "lrr=1"], "did you mean lr"), (["--set", "lr=[1]"], "lr takes float"),
    (["--device", "banana"], "unknown device 'banana'"), (["--config", "."], "is a directory, not a YAML file"),
])
def test_bad_option_values_are_refused_clearly(tmp_path, cli, args, words):
    code, out, err = cli("train", "tiny_cnn", "--out", tmp_path / "o", *TINY_ARGS, *args)
    assert code == 2 and words in err and "epoch" not in out
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_for_train_and_eval(tmp_path, cli):
    code, _, err = cli("train", "tiny_cnn", "--device", "cuda", "--out", tmp_path / "o", *TINY_ARGS)
    assert code == 2 and "sees no CUDA GPU" in err
    code, _, err = cli("eval", tmp_path / "none.safetensors", "--device", "cuda")
    assert code == 2 and "sees no CUDA GPU" in err


def test_yaml_config_values_are_validated_too(tmp_path):
    cfg = tmp_path / "r.yaml"
    cfg.write_text("momentum: 1.5\n")
    with pytest.raises(InvalidArgumentError, match="momentum must be in"):
        fit("tiny_cnn", config=str(cfg), out=tmp_path / "o", overrides=TINY)
    with pytest.raises(InvalidArgumentError, match="weight_decay must be >= 0"):
        fit("tiny_cnn", recipe=Recipe(weight_decay=-1.0), out=tmp_path / "o")


@pytest.mark.parametrize("bs", ["0", "-5"])
def test_eval_batch_size_must_be_positive(tmp_path, cli, bs):
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides=TINY)
    code, _, err = cli("eval", tmp_path, "--batch-size", bs)
    assert code == 2 and "batch size must be an integer >= 1" in err


def test_every_recipe_field_is_explained(cli):
    r = cli("train", "--list-fields", "--json")
    rows = r.json()
    assert {"lr", "label_smoothing", "augment", "val_split"} <= {r["field"] for r in rows}
    assert all(r["meaning"] and r["type"] for r in rows)


# -- resume and nothing to do -----------------------------------------------------------------
def test_nothing_to_do_is_an_error_not_a_saved_model(tmp_path, cli):
    code, out, err = cli("train", "tiny_cnn", "--epochs", "0", "--out", tmp_path / "zero", *TINY_ARGS)
    assert code == 2 and "epochs must be >= 1" in err and "model saved" not in out
    assert not (tmp_path / "zero").exists()
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path / "done", overrides=TINY)
    stamp = (tmp_path / "done/model.safetensors").stat().st_mtime_ns
    code, out, err = cli("train", "--resume", tmp_path / "done", "--no-progress")
    assert code == 2 and "already complete at epoch 1" in err and "--epochs M, M > 1" in err
    assert "model saved" not in out and (tmp_path / "done/model.safetensors").stat().st_mtime_ns == stamp
    assert fit(resume=tmp_path / "done", epochs=2)["steps"] == 4  # extending works


def test_resume_applies_what_may_change_and_refuses_the_rest(tmp_path, cli):
    fit("tiny_cnn", recipe="lenet", epochs=1, out=tmp_path, overrides={**TINY, "schedule": "constant"})
    for args, word in ((["--batch-size", "32"], "batch_size (64 -> 32)"), (["--set", "augment=shift"], "augment"),
                       (["--data", "mnist:/"], "keeps its data"), (["--recipe", "fast"], "keeps its recipe")):
        code, _, err = cli("train", "--resume", tmp_path, "--epochs", "2", *args)
        assert code == 2 and word in err, (args, err)
    code, out, _ = cli("train", "--resume", tmp_path, "--epochs", "2", "--lr", "0.01", "--set", "log_every=7",
                       "--no-progress")
    line = " ".join(out.split())
    assert code == 0 and "applied epochs 1 -> 2, lr 0.05 -> 0.01, log_every 50 -> 7" in line
    _, state = ckpt.read_training_state(tmp_path)
    assert state["run"]["recipe"]["lr"] == 0.01 and state["optimizer"]["param_groups"][0]["lr"] == 0.01
