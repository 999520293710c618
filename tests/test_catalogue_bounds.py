"""A catalogue of numbers out of bounds and inputs that must not be believed (issue 29, classes
4, 7 and 8), run through the command line as a careless or hostile user would: huge, negative,
zero, fractional and boolean values for every bounded option across the verbs, and files whose
records declare what nothing may allocate. Each case ends in a clear message naming the value
(exit 2), never a traceback, and nothing is allocated first (each case takes well under a
second where an unbounded one took minutes or 40 GB).

Each row: (id, argv with {model}/{img}/{bad}/{tmp} placeholders, exit code, words the message
must contain). The files are made in `files` below."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _cli import fill

HUGE = "99999999999999999999999"  # beyond int64
E26 = "100000000000000000000000000"

CASES: list[tuple[str, list[str], int, list[str]]] = [
    # sizes and batches (summary, compare, eval)
    ("summary input beyond int64", ["summary", "lenet5", "--input", f"1x{HUGE}x9"], 2, ["--input", "16_384"]),
    ("summary input of 805M elements", ["summary", "lenet5", "--input", "3x16384x16384"], 2,
     ["input_elements", "1 GiB"]),
    ("summary 5000 channels", ["summary", "lenet5", "--input", "5000x32x32"], 2, ["channels", "1024"]),
    ("summary batch beyond int64", ["summary", "lenet5", "--batch-size", HUGE], 2, ["--batch-size", "65_536"]),
    ("summary batch 0", ["summary", "lenet5", "--batch-size", "0"], 2, ["--batch-size", "positive"]),
    ("summary depth 0", ["summary", "lenet5", "--depth", "0"], 2, ["--depth", "positive"]),
    ("compare huge input", ["compare", "lenet5", "lenet5_modern", "--input", "1x99999x99999"], 2, ["side"]),
    ("compare one model", ["compare", "lenet5"], 2, ["two or more", "cnnzoo summary lenet5"]),
    ("eval batch beyond int64", ["eval", "{model}", "--batch-size", HUGE], 2, ["batch_size", "65_536"]),
    # seeds, threads, epochs and recipe fields (train)
    ("train seed beyond 2^32", ["train", "lenet5", "--seed", "9999999999999", "--out", "{tmp}/r"], 2,
     ["--seed", "4_294_967_295"]),
    ("train negative seed", ["train", "lenet5", "--seed", "-1", "--out", "{tmp}/r"], 2, ["--seed", "zero or more"]),
    ("train threads 0", ["train", "lenet5", "--threads", "0", "--out", "{tmp}/r"], 2, ["--threads", "positive"]),
    ("train threads -3", ["train", "lenet5", "--threads", "-3", "--out", "{tmp}/r"], 2, ["--threads"]),
    ("train threads 100000", ["train", "lenet5", "--threads", "100000", "--out", "{tmp}/r"], 2,
     ["--threads", "1024", "thread limit"]),
    ("train epochs 10^26", ["train", "lenet5", "--epochs", E26, "--out", "{tmp}/r"], 2, ["epochs", "100_000"]),
    ("train --set epochs=1e26", ["train", "lenet5", "--set", "epochs=1e26", "--out", "{tmp}/r"], 2,
     ["epochs", "100_000"]),
    ("train batch beyond int64", ["train", "lenet5", "--batch-size", HUGE, "--out", "{tmp}/r"], 2, ["--batch-size"]),
    ("train accum 0", ["train", "lenet5", "--accum-steps", "0", "--out", "{tmp}/r"], 2, ["--accum-steps"]),
    ("train --set batch_size=true", ["train", "lenet5", "--set", "batch_size=true", "--out", "{tmp}/r"], 2,
     ["batch_size", "True"]),
    ("train --set batch_size=64.5", ["train", "lenet5", "--set", "batch_size=64.5", "--out", "{tmp}/r"], 2,
     ["batch_size", "64.5"]),
    ("train --set workers=100000", ["train", "lenet5", "--set", "workers=100000", "--out", "{tmp}/r"], 2,
     ["workers", "256"]),
    ("train --set milestones past int64", ["train", "lenet5", "--set", "milestones=[1,1e20]", "--out", "{tmp}/r"],
     2, ["milestones"]),
    ("train --set limit_train huge", ["train", "lenet5", "--set", f"limit_train={HUGE}", "--out", "{tmp}/r"], 2,
     ["limit_train"]),
    ("train --set val_split=1", ["train", "lenet5", "--set", "val_split=1", "--out", "{tmp}/r"], 2,
     ["val_split 1", "every training image"]),
    ("train --val-split 1", ["train", "lenet5", "--val-split", "1", "--out", "{tmp}/r"], 2, ["val_split 1"]),
    ("train val_split of 10^12 images", ["train", "lenet5", "--set", "val_split=1e12", "--out", "{tmp}/r"], 2,
     ["val_split", "1_000_000_000"]),
    ("train config nested 10000 deep", ["train", "lenet5", "--config", "{bad}/deep.yaml", "--out", "{tmp}/r"], 2,
     ["nested", "32"]),
    ("train config nested 40 deep", ["train", "lenet5", "--config", "{bad}/deep40.yaml", "--out", "{tmp}/r"], 2,
     ["nested", "32"]),
    ("train config epochs 1e26", ["train", "lenet5", "--config", "{bad}/epochs.yaml", "--out", "{tmp}/r"], 2,
     ["epochs", "100_000"]),
    # predict: top-k and the records it believes
    ("predict top 0", ["predict", "{model}", "{img}", "--top", "0"], 2, ["--top", "positive"]),
    ("predict top 10^7", ["predict", "{model}", "{img}", "--top", "10000000"], 2, ["--top", "1_000_000"]),
    ("record with std 0", ["predict", "{bad}/std0.safetensors", "{img}"], 2, ["std", "> 0"]),
    ("record with NaN mean", ["predict", "{bad}/nanmean.safetensors", "{img}", "--format", "json"], 2,
     ["mean", "finite"]),
    ("record with 2 stds for 1 channel", ["predict", "{bad}/std2.safetensors", "{img}"], 2, ["2 values", "1 channels"]),
    ("record declares 100000x100000", ["predict", "{bad}/huge_input.safetensors", "{img}"], 2, ["side", "16_384"]),
    ("onnx record declares 100000x100000", ["predict", "{bad}/huge_input.onnx", "{img}"], 2, ["side", "16_384"]),
    ("onnx record with std 0", ["predict", "{bad}/std0.onnx", "{img}"], 2, ["std"]),
    ("onnx record without a model", ["predict", "{bad}/nomodel.onnx", "{img}"], 2, ["model"]),
    # export's tolerances and image counts
    ("export atol nan", ["export", "{model}", "--atol", "nan", "--out", "{tmp}/m.onnx"], 2, ["--atol", "finite"]),
    ("export atol -1", ["export", "{model}", "--atol", "-1", "--out", "{tmp}/m.onnx"], 2, ["--atol", "zero or more"]),
    ("export atol inf", ["export", "{model}", "--atol", "inf", "--out", "{tmp}/m.onnx"], 2, ["--atol", "finite"]),
    ("export calib images 0", ["export", "{model}", "--int8", "--calibrate", "embedded", "--calib-images", "0"], 2,
     ["--calib-images", "positive"]),
    ("int8 calibration on RGB for a gray model", ["export", "{model}", "--int8", "--calibrate",
                                                  "folder:{bad}/rgb_folder", "--out", "{tmp}/q.onnx"], 2,
     ["3-channel", "1-channel"]),
    # convert: classes and channels
    ("convert 10^9 classes", ["convert", "{bad}/none.pth", "{tmp}/c.safetensors", "-m", "lenet5",
                              "--num-classes", "1000000000"], 2, ["--num-classes", "1_000_000"]),
    ("convert 0 channels", ["convert", "{bad}/none.pth", "{tmp}/c.safetensors", "-m", "lenet5", "--in-chans", "0"],
     2, ["--in-chans", "positive"]),
    # transfer: classes, per-class, limits, seeds, labels
    ("features per-class huge", ["features", "lenet5", "--per-class", HUGE, "--out", "{tmp}/f.safetensors"], 2,
     ["per_class", "1_000_000"]),
    ("features limit 0", ["features", "lenet5", "--limit", "0", "--out", "{tmp}/f.safetensors"], 2,
     ["limit", "positive"]),
    ("finetune classes ''", ["finetune", "lenet5", "--classes", "", "--per-class", "2"], 2, ["--classes"]),
    ("finetune classes 0-10^11", ["finetune", "lenet5", "--classes", "0-99999999999", "--per-class", "2"], 2,
     ["label", "999_999"]),
    ("finetune negative seed", ["finetune", "lenet5", "--classes", "0-4", "--seed", "-1"], 2, ["--seed"]),
    ("finetune epochs 10^26", ["finetune", "lenet5", "--classes", "0-4", "--epochs", E26], 2, ["epochs", "100_000"]),
    ("linear-probe on NaN features", ["linear-probe", "{bad}/nan_features.safetensors"], 2, ["finite", "NaN"]),
    ("linear-probe label 10^9", ["linear-probe", "{bad}/huge_label.safetensors"], 2, ["label", "999_999"]),
    ("linear-probe negative label", ["linear-probe", "{bad}/negative_label.safetensors"], 2, ["label"]),
    ("linear-probe label past its classes", ["linear-probe", "{bad}/label_past_classes.safetensors"], 2,
     ["not below its 2 classes"]),
    ("linear-probe epochs 0", ["linear-probe", "{bad}/nan_features.safetensors", "--epochs", "0"], 2,
     ["--epochs", "positive"]),
    # bench and experiment
    ("bench threads 0", ["bench", "models", "--threads", "0"], 2, ["--threads", "positive"]),
    ("bench batch huge", ["bench", "models", "--batch", HUGE], 2, ["--batch"]),
    ("bench to-accuracy seed huge", ["bench", "to-accuracy", "99", "--seed", HUGE], 2, ["--seed"]),
    ("bench loader workers 100000", ["bench", "loader", "folder:{tmp}", "--workers", "100000"], 2, ["--workers"]),
    ("experiment negative seed", ["experiment", "inception-reduction", "--seed", "-5"], 2, ["--seed"]),
]


def _record_file(path: Path, edit) -> None:
    """A real lenet5 model file whose record `edit` changes."""
    from safetensors.torch import save_file

    import cnnzoo
    from cnnzoo.modelfile import RECORD_KEY, model_record

    model = cnnzoo.create_model("lenet5")
    record = model_record(model, preprocess={"input_size": [1, 32, 32], "mean": [0.5], "std": [0.25]})
    edit(record)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={RECORD_KEY: json.dumps(record)})


def _onnx_file(path: Path, record: dict) -> None:
    """A one-node ONNX graph carrying `record` as cnnzoo.record: predict must refuse the record
    before the graph runs (or anything is sized from it)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["logits"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 10])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])])
    proto = helper.make_model(graph)
    proto.metadata_props.add(key="cnnzoo.record", value=json.dumps(record))
    onnx.save(proto, str(path))


def _features(path: Path, features, labels, classes: list[str] | None = None) -> None:
    from cnnzoo.transfer.featfile import save_features

    save_features(path, features, labels, classes=classes or [str(i) for i in range(10)])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    import numpy as np
    import torch
    from PIL import Image

    import cnnzoo
    from cnnzoo.modelfile import save_model

    root = tmp_path_factory.mktemp("bounds")
    model = root / "lenet5.safetensors"
    save_model(model, cnnzoo.create_model("lenet5"))
    img = root / "digit.png"
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(img)
    bad = root / "bad"
    bad.mkdir()
    (bad / "deep.yaml").write_text("epochs: " + "[" * 10000 + "]" * 10000 + "\n")
    (bad / "deep40.yaml").write_text("milestones: " + "[" * 40 + "1" + "]" * 40 + "\n")
    (bad / "epochs.yaml").write_text("epochs: 1e26\n")
    pre = lambda **kw: lambda r: r["preprocess"].update(kw)  # noqa: E731
    _record_file(bad / "std0.safetensors", pre(std=[0.0]))
    _record_file(bad / "nanmean.safetensors", pre(mean=[math.nan]))
    _record_file(bad / "std2.safetensors", pre(std=[0.2, 0.3]))
    _record_file(bad / "huge_input.safetensors", pre(input_size=[1, 100000, 100000]))
    good = {"model": "lenet5", "num_classes": 10, "in_chans": 1,
            "preprocess": {"input_size": [1, 32, 32], "mean": [0.5], "std": [0.25]}}
    _onnx_file(bad / "huge_input.onnx", {**good, "preprocess": {**good["preprocess"],
                                                                 "input_size": [1, 100000, 100000]}})
    _onnx_file(bad / "std0.onnx", {**good, "preprocess": {**good["preprocess"], "std": [0]}})
    _onnx_file(bad / "nomodel.onnx", {"num_classes": 10})
    _features(bad / "nan_features.safetensors", torch.full((4, 3), math.nan), torch.tensor([0, 1, 0, 1]))
    _features(bad / "huge_label.safetensors", torch.ones(4, 3), torch.tensor([0, 1, 0, 10**9]), classes=[])
    _features(bad / "negative_label.safetensors", torch.ones(4, 3), torch.tensor([0, -1, 0, 1]), classes=[])
    _features(bad / "label_past_classes.safetensors", torch.ones(4, 3), torch.tensor([0, 1, 0, 5]),
              classes=["a", "b"])
    for cls in ("a", "b"):
        folder = bad / "rgb_folder" / "train" / cls
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((12, 12, 3), 40 * i, dtype=np.uint8), "RGB").save(folder / f"{i}.png")
    return {"model": model, "img": img, "bad": bad}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_out_of_bounds_ends_in_a_clear_error(case, files, tmp_path, cli):
    name, argv, code, words = case
    subs = {"{model}": str(files["model"]), "{img}": str(files["img"]), "{bad}": str(files["bad"]),
            "{tmp}": str(tmp_path)}
    args = fill(argv, subs)
    r = cli(*args)
    text = r.out + r.err
    assert r.code == code, (r.code, text[-2000:])
    assert "Traceback" not in text
    for w in words:
        assert w.lower() in text.lower(), (w, text[-2000:])
    assert not (tmp_path / "r").exists(), "a refused run made its folder"


def test_catalogue_counts():
    assert len(CASES) >= 20
    assert len({c[0] for c in CASES}) == len(CASES)


def test_main_catalogue_is_not_repeated_here():
    """These rows are new: none repeats one of tests/test_catalogue.py's argv."""
    from test_catalogue import CASES as MAIN

    assert not {tuple(c[1]) for c in CASES} & {tuple(c[1]) for c in MAIN}
