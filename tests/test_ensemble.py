"""Model ensembles: members must agree; the combined prediction is the members' mean softmax."""

from __future__ import annotations

import pytest
import torch

import cnnzoo
from cnnzoo.ensemble import Ensemble, combine_logits, ensemble
from cnnzoo.errors import InvalidArgumentError


def test_mean_softmax_logits_and_vote():
    logits = torch.tensor([[[2.0, 0.0, 0.0]], [[0.0, 3.0, 0.0]], [[2.5, 0.0, 0.0]]])  # 3 members, 1 image
    mean = combine_logits(logits, "mean").exp()
    torch.testing.assert_close(mean, logits.softmax(-1).mean(0))
    assert combine_logits(logits, "vote").argmax(-1).item() == 0  # two votes for class 0
    torch.testing.assert_close(combine_logits(logits, "logits"), logits.mean(0))


def test_members_must_agree_and_the_module_exports(tmp_path):
    a, b = cnnzoo.create_model("lenet5_modern"), cnnzoo.create_model("lenet5_modern")
    with pytest.raises(InvalidArgumentError, match="num_classes"):
        Ensemble([a, cnnzoo.create_model("lenet5_modern", num_classes=5)])
    with pytest.raises(InvalidArgumentError, match="at least 2"):
        Ensemble([a])
    with pytest.raises(InvalidArgumentError, match="combine"):
        Ensemble([a, b], combine="max")
    e = ensemble([a, b])
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        want = (a.eval()(x).softmax(1) + b.eval()(x).softmax(1)) / 2
        torch.testing.assert_close(e(x).exp(), want)
    from cnnzoo.deploy.export import export_model

    report = export_model(e, tmp_path / "e.onnx", fmt="onnx", input_size=(1, 32, 32))
    assert report["max_abs_diff"] < 1e-4


def test_files_with_different_class_names_are_refused(tmp_path):
    m = cnnzoo.create_model("lenet5_modern")
    cnnzoo.save_model(tmp_path / "a.safetensors", m, classes=[str(i) for i in range(10)])
    cnnzoo.save_model(tmp_path / "b.safetensors", m, classes=[f"c{i}" for i in range(10)])
    with pytest.raises(InvalidArgumentError, match="class names.*b.safetensors"):
        ensemble([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])


def test_cli_predict_with_several_model_files_is_an_ensemble(tmp_path, cli):
    import numpy as np
    from PIL import Image

    names = [str(i) for i in range(10)]
    for seed in range(3):
        torch.manual_seed(seed)
        cnnzoo.save_model(tmp_path / f"m{seed}.safetensors", cnnzoo.create_model("lenet5_modern"), classes=names)
    Image.fromarray(np.full((28, 28), 128, dtype=np.uint8)).save(tmp_path / "x.png")
    files = [str(tmp_path / f"m{s}.safetensors") for s in range(3)]
    r = cli("predict", *files, tmp_path / "x.png", "--format", "json")
    assert r.code == 0
    res = r.json()
    assert len(res) == 1 and len(res[0]["members"]) == 3 and len(res[0]["top"]) == 5
    cnnzoo.save_model(tmp_path / "other.safetensors", cnnzoo.create_model("lenet5_modern"),
                      classes=[f"c{i}" for i in range(10)])
    r = cli("predict", files[0], tmp_path / "other.safetensors", tmp_path / "x.png")
    assert r.code == 2 and "class names" in r.err


# -- cnnzoo eval A B C: members x crops on real data ----------------------------------------
def test_member_summaries_combine_like_all_members_x_crops():
    from cnnzoo.ensemble import combine_summaries, member_summary

    torch.manual_seed(0)
    logits = torch.randn(3, 10, 6, 5)  # members, crops, images, classes
    flat = logits.flatten(0, 1)
    for how in ("mean", "logits", "vote"):
        together = combine_summaries(torch.stack([member_summary(m, how) for m in logits]), how)
        want = combine_logits(flat, how)
        assert torch.equal(together.argmax(-1), want.argmax(-1)), how
        if how != "vote":
            torch.testing.assert_close(together, want)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Three short real runs on the embedded MNIST subset: two seeds of a 28x28 net and a net
    that takes 32x32 (its own preprocessing: zero-padded)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import _train_models  # noqa: F401  (registers tiny_cnn, tiny32)
    from cnnzoo.train.run import fit

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("members")
    quick = {"optimizer": "sgd", "lr": 0.05, "schedule": "constant", "batch_size": 64, "limit_train": 2000}
    for name, seed in (("tiny_cnn", 0), ("tiny_cnn", 1), ("tiny32", 2)):
        fit(name, recipe="lenet", epochs=1, seed=seed, out=root / f"{name}-{seed}", overrides=quick)
    return sorted(root.iterdir())


def test_ensemble_beats_its_members_mean_on_real_mnist(members):
    from cnnzoo.train.ensemble_eval import evaluate_ensemble

    res = evaluate_ensemble(members)
    errs = [m["top1_err_pct"] for m in res["members"]]
    assert res["images"] == 1000 and len(errs) == 3 and res["combine"] == "mean"
    # measured (tiny nets, 1 epoch on 2,000 digits): members 16-43%, ensemble ~16%, bf16 on and off
    assert res["ensemble"]["top1_err_pct"] <= res["members_mean_top1_err_pct"] == pytest.approx(sum(errs) / 3, abs=1e-3)
    ten = evaluate_ensemble(members, combine="logits", ten_crop=True, allow_mirror=True)  # digits: forced
    assert ten["view"] == "10-crop" and ten["ensemble"]["top1_err_pct"] <= ten["members_mean_top1_err_pct"]


def test_cli_eval_several_files_table_and_json(members, cli):
    r = cli("eval", *members, "--combine", "vote", "--format", "json")
    res = r.json()
    assert r.code == 0 and res["combine"] == "vote" and len(res["members"]) == 3
    assert set(res["ensemble"]) == {"top1_err_pct", "top5_err_pct"}  # the CLI names the unit
    r = cli("eval", *members)
    out = r.out
    assert r.code == 0 and "ensemble" in out and "members' mean top-1 error" in out


def test_cli_eval_refuses_members_with_other_classes(members, tmp_path, cli):
    from cnnzoo.modelfile import read_record, save_model
    from cnnzoo.registry import load_model

    model, rec = load_model(members[0] / "model.safetensors")
    odd = tmp_path / "odd.safetensors"
    save_model(odd, model, classes=[f"digit{i}" for i in range(10)], preprocess=rec["preprocess"],
               data=rec["data"])
    assert read_record(odd)["classes"][0] == "digit0"
    r = cli("eval", members[0], odd)
    err = r.err
    assert r.code == 2 and "odd.safetensors" in err and "'digit0'" in err
    five = cnnzoo.create_model("tiny_cnn", num_classes=5)
    save_model(tmp_path / "five.safetensors", five, classes=list("abcde"), preprocess=rec["preprocess"])
    r = cli("eval", members[0], tmp_path / "five.safetensors")
    assert r.code == 2 and "five.safetensors has 5" in r.err
