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
    from cnnzoo.export import export_model

    report = export_model(e, tmp_path / "e.onnx", fmt="onnx", input_size=(1, 32, 32))
    assert report["max_abs_diff"] < 1e-4


def test_files_with_different_class_names_are_refused(tmp_path):
    m = cnnzoo.create_model("lenet5_modern")
    cnnzoo.save_model(tmp_path / "a.safetensors", m, classes=[str(i) for i in range(10)])
    cnnzoo.save_model(tmp_path / "b.safetensors", m, classes=[f"c{i}" for i in range(10)])
    with pytest.raises(InvalidArgumentError, match="class names.*b.safetensors"):
        ensemble([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])


def test_cli_predict_with_several_model_files_is_an_ensemble(tmp_path, capsys):
    import json

    import numpy as np
    from PIL import Image

    from cnnzoo.cli import main

    names = [str(i) for i in range(10)]
    for seed in range(3):
        torch.manual_seed(seed)
        cnnzoo.save_model(tmp_path / f"m{seed}.safetensors", cnnzoo.create_model("lenet5_modern"), classes=names)
    Image.fromarray(np.full((28, 28), 128, dtype=np.uint8)).save(tmp_path / "x.png")
    files = [str(tmp_path / f"m{s}.safetensors") for s in range(3)]
    with pytest.raises(SystemExit) as ex:
        main(["predict", *files, str(tmp_path / "x.png"), "--format", "json"])
    assert ex.value.code == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res) == 1 and len(res[0]["members"]) == 3 and len(res[0]["top"]) == 5
    cnnzoo.save_model(tmp_path / "other.safetensors", cnnzoo.create_model("lenet5_modern"),
                      classes=[f"c{i}" for i in range(10)])
    with pytest.raises(SystemExit) as ex:
        main(["predict", files[0], str(tmp_path / "other.safetensors"), str(tmp_path / "x.png")])
    assert ex.value.code == 2 and "class names" in capsys.readouterr().err
