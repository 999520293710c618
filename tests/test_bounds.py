"""The bounds table (cnnzoo/bounds.py) through the Python API: every library entry point that
takes a bounded number refuses it before allocating; recipes read floats as users write them;
model and ONNX records are validated by the same rules; JSON output is strict; EXIF orientation
is applied when an image is decoded. The CLI's cases are in tests/test_catalogue_bounds.py."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnzoo
from cnnzoo.bounds import BOUNDS, BoundError, check, check_size, problem, table, yaml_depth
from cnnzoo.errors import CnnzooError, InvalidArgumentError, ModelFileError
from cnnzoo.train.recipes import get_recipe

DOCS = Path(__file__).resolve().parents[1] / "docs" / "training.md"


# -- the table ---------------------------------------------------------------------------------
def test_every_bound_has_a_range_and_a_reason():
    for b in BOUNDS.values():
        assert b.low <= b.high and b.why, b
        assert problem(b.name, b.low) is None and problem(b.name, b.high if b.high < math.inf else 1e300) is None


def test_a_value_outside_is_refused_naming_value_bound_and_reason():
    with pytest.raises(BoundError) as err:
        check("threads", 100000, "--threads")
    assert isinstance(err.value, InvalidArgumentError) and err.value.exit_code == 2
    text = str(err.value)
    assert "--threads" in text and "100000" in text and "1024" in text and "thread limit" in text
    for bad in (True, 64.5, "8", None, math.nan, -1, 0):
        assert problem("batch_size", bad) is not None, bad
    assert check("batch_size", 64.0) == 64 and type(check("batch_size", 64.0)) is int
    assert problem("tolerance", math.inf) and problem("tolerance", -1e-9) and check("tolerance", 0.0) == 0.0


def test_sizes_are_bounded_side_by_side_and_in_total():
    assert check_size((3, 224, 224)) == (3, 224, 224)
    for size in [(1, 10**23, 9), (5000, 8, 8), (3, 16384, 16384), (0, 8, 8), ()]:
        with pytest.raises(BoundError):
            check_size(size)


def test_yaml_nesting_is_bounded_without_recursing():
    nested: list = []
    for _ in range(10000):
        nested = [nested]
    with pytest.raises(BoundError, match="nested more than 32"):
        yaml_depth({"a": nested}, "x.yaml")
    yaml_depth({"milestones": [1, 2], "betas": [0.9, 0.99]}, "ok.yaml")


def test_the_docs_table_is_the_bounds_table():
    text = DOCS.read_text()
    section = text[text.index("## Bounds"):]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", section, re.M)
    assert [(n, lo.strip(), hi.strip(), why.strip()) for n, lo, hi, why in rows] == \
        [(r["name"], r["min"], r["max"], r["why"]) for r in table()]


# -- library entry points ----------------------------------------------------------------------
def test_library_entry_points_refuse_before_allocating():
    from cnnzoo.analysis import analyze
    from cnnzoo.deploy.export import export_model
    from cnnzoo.transfer.core import train_linear_probe

    t = time.perf_counter()
    with pytest.raises(BoundError, match="num_classes"):
        cnnzoo.create_model("lenet5", num_classes=10**9)
    with pytest.raises(BoundError, match="in_chans"):
        cnnzoo.create_model("lenet5", in_chans=10**6)
    with pytest.raises(BoundError, match="side"):
        analyze("lenet5", input_size=(1, 10**20, 9))
    with pytest.raises(BoundError, match="batch_size"):
        analyze("lenet5", batch_size=10**20)
    with pytest.raises(BoundError, match="label"):
        train_linear_probe(torch.ones(2, 3), torch.tensor([0, 10**9]))
    with pytest.raises(BoundError, match="atol"):
        export_model(cnnzoo.create_model("lenet5"), "never.onnx", atol=math.nan)
    assert time.perf_counter() - t < 20  # nothing of those sizes was made


def test_fit_refuses_a_seed_torch_cannot_hold(tmp_path):
    from cnnzoo.train import fit

    for seed in (-1, 2**40):
        with pytest.raises(BoundError, match="seed"):
            fit("lenet5", seed=seed, out=tmp_path / "r", epochs=1)
    assert not (tmp_path / "r").exists()


def test_predict_top_k_is_bounded_and_at_most_the_classes(tmp_path):
    from cnnzoo.deploy.predict import predict

    model = cnnzoo.create_model("lenet5").eval()
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(img)
    assert len(predict(model, [img], topk=1000)[0]["top"]) == 10
    with pytest.raises(BoundError, match="topk"):
        predict(model, [img], topk=10**7)


def test_features_labels_and_values_are_checked():
    from cnnzoo.transfer.core import train_linear_probe
    from cnnzoo.transfer.featfile import check_features

    with pytest.raises(InvalidArgumentError, match="finite"):
        train_linear_probe(torch.tensor([[math.nan, 1.0], [0.0, 1.0]]), torch.tensor([0, 1]), epochs=1)
    with pytest.raises(BoundError, match="label"):
        check_features(torch.ones(2, 2), torch.tensor([-1, 0]))
    with pytest.raises(InvalidArgumentError, match="not below its 2 classes"):
        check_features(torch.ones(2, 2), torch.tensor([0, 2]), 2)
    with pytest.raises(InvalidArgumentError, match="integer"):
        check_features(torch.ones(2, 2), torch.tensor([0.0, 1.0]))
    check_features(torch.ones(2, 2), torch.tensor([0, 1]), 2)


def test_calibration_images_must_have_the_models_channels(tmp_path):
    from cnnzoo.deploy.quantize import check_calibration_channels

    for cls in ("a", "b"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "train" / cls / "0.png")
    with pytest.raises(InvalidArgumentError, match="3-channel images and the model takes 1"):
        check_calibration_channels(f"folder:{tmp_path}", 1)
    check_calibration_channels(f"folder:{tmp_path}", 3)
    check_calibration_channels("embedded", 1)  # MNIST is gray


# -- recipes: floats as users write them, integers as integers ---------------------------------
@pytest.mark.parametrize("key,text,value", [
    ("lr", "1e-3", 1e-3), ("lr", "1E-3", 1e-3), ("weight_decay", "5e-4", 5e-4), ("lr", ".5", 0.5),
    ("lr", "1e3", 1000.0), ("lr", "+2.5e-2", 0.025), ("betas", "[0.9, 1e-3]", (0.9, 1e-3)),
    ("batch_size", "64.0", 64), ("milestones", "[1e3, 2000]", [1000, 2000]), ("name", "1e-3", "1e-3"),
])
def test_set_reads_numbers_as_users_write_them(key, text, value):
    assert getattr(get_recipe("lenet", {key: text}), key) == value


@pytest.mark.parametrize("key,text", [("batch_size", "true"), ("batch_size", "64.5"), ("epochs", "1e26"),
                                      ("val_split", "1"), ("val_split", "1.0"), ("workers", "100000"),
                                      ("lr", "nan"), ("accum_steps", "0")])
def test_set_refuses(key, text):
    with pytest.raises(InvalidArgumentError, match=key.split("_")[0]):
        get_recipe("lenet", {key: text})


def test_config_files_read_floats_and_refuse_deep_nesting(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text("lr: 1e-3\nweight_decay: 5E-4\nwarmup_epochs: .5\n")
    r = get_recipe("lenet", None, ok)
    assert (r.lr, r.weight_decay, r.warmup_epochs) == (1e-3, 5e-4, 0.5)
    deep = tmp_path / "deep.yaml"
    deep.write_text("lr: " + "[" * 10000 + "]" * 10000)
    with pytest.raises(BoundError, match="nested"):
        get_recipe("lenet", None, deep)


def test_val_split_leaves_a_training_and_a_validation_image():
    from cnnzoo.data.datasets import val_count

    assert val_count(0.5, 10) == 5 and val_count(2, 10) == 2
    for split in (10, 0.99999):
        with pytest.raises(InvalidArgumentError, match="at least one image on each side"):
            val_count(split, 10)


# -- records ------------------------------------------------------------------------------------
def _record(**pre) -> dict:
    return {"model": "lenet5", "num_classes": 10, "in_chans": 1,
            "preprocess": {"input_size": [1, 32, 32], "mean": [0.5], "std": [0.25], **pre}}


@pytest.mark.parametrize("pre,words", [
    ({"std": [0.0]}, "std must be finite numbers > 0"), ({"std": [-1.0]}, "> 0"),
    ({"std": [math.inf]}, "std"), ({"mean": [math.nan]}, "mean must be finite"),
    ({"mean": [0.1, 0.2]}, "2 values for 1 channels"), ({"input_size": [1, 100000, 100000]}, "side"),
    ({"input_size": [1, 10**30, 8]}, "side"), ({"input_size": [3, 32, 32], "mean": [0.5]}, "1 values for 3"),
    ({"std": [True]}, "list of numbers"),
])
def test_model_record_refuses_what_would_divide_by_zero_or_allocate(pre, words):
    from cnnzoo.modelfile import check_record

    with pytest.raises(ModelFileError, match=re.escape(words)):
        check_record(_record(**pre), "m.safetensors")
    check_record(_record(), "m.safetensors")


def test_onnx_record_is_validated_like_a_model_record(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from cnnzoo.deploy.predict import load_onnx, read_onnx_record

    def write(record: dict) -> Path:
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
        proto = helper.make_model(graph)
        proto.metadata_props.add(key="cnnzoo.record", value=json.dumps(record))
        path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.onnx"
        onnx.save(proto, str(path))
        return path

    assert read_onnx_record(write(_record()))["model"] == "lenet5"
    with pytest.raises(ModelFileError, match="side"):
        load_onnx(write(_record(input_size=[1, 100000, 100000])))
    with pytest.raises(ModelFileError, match="std"):
        load_onnx(write(_record(std=[0])))
    with pytest.raises(ModelFileError, match="num_classes"):
        load_onnx(write({**_record(), "num_classes": 10**12}))


# -- strict JSON ----------------------------------------------------------------------------------
def _strict(text: str):
    def refuse(name: str):
        raise AssertionError(f"{name} in JSON output")
    return json.loads(text, parse_constant=refuse)


def test_json_writer_turns_non_finite_numbers_into_null():
    from cnnzoo.results import to_json

    out = _strict(to_json({"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": np.float32("nan"),
                           "d": torch.tensor(2.0), "e": Path("x")}))
    assert out == {"a": None, "b": [None, None, 1.5], "c": None, "d": 2.0, "e": "x"}


def test_predict_json_of_a_diverged_model_is_strict_json(tmp_path, cli):
    from cnnzoo.modelfile import save_model

    model = cnnzoo.create_model("lenet5")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(math.nan)
    save_model(tmp_path / "nan.safetensors", model)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    r = cli("predict", tmp_path / "nan.safetensors", tmp_path / "a.png", "--format", "json")
    assert r.code == 0, r.err
    assert "NaN" not in r.out
    probs = [t["prob"] for t in _strict(r.out)[0]["top"]]
    assert probs and all(p is None for p in probs)


# -- EXIF orientation ------------------------------------------------------------------------------
def _sideways(tmp_path: Path) -> tuple[Path, Path]:
    """A phone photo stored sideways with Orientation=6 (rotate 90 degrees clockwise to view),
    and the same picture stored upright."""
    arr = np.zeros((32, 48, 3), np.uint8)
    arr[:, :16] = 255  # stored: white band on the left
    stored = Image.fromarray(arr)
    exif = stored.getexif()
    exif[0x0112] = 6
    tagged = tmp_path / "phone.jpg"
    stored.save(tagged, exif=exif, quality=95)
    upright = tmp_path / "upright.png"
    stored.transpose(Image.Transpose.ROTATE_270).save(upright)
    return tagged, upright


def test_exif_orientation_is_applied_when_an_image_is_decoded(tmp_path):
    from cnnzoo.data.fastjpeg import read_encoded
    from cnnzoo.data.images import load_image

    tagged, upright = _sideways(tmp_path)
    img, want = load_image(tagged), load_image(upright)
    assert img.size == want.size == (32, 48)
    a, b = np.asarray(img, np.float32), np.asarray(want, np.float32)
    assert np.abs(a - b).mean() < 8  # the same picture (JPEG's loss aside)
    enc = read_encoded(tagged)  # the fast loader leaves a turned JPEG to PIL, which turns it
    assert enc.data is None and tuple(enc.pixels.shape) == (3, 48, 32)


def test_predict_sees_a_tagged_photo_upright(tmp_path):
    from cnnzoo.deploy.predict import predict

    tagged, upright = _sideways(tmp_path)
    model = cnnzoo.create_model("lenet5").eval()
    a, b = predict(model, [tagged, upright], topk=3)
    assert [t["index"] for t in a["top"]] == [t["index"] for t in b["top"]]


def test_bound_errors_are_cnnzoo_errors():
    assert issubclass(BoundError, CnnzooError)


def test_cli_set_takes_floats_as_written_and_trains(tmp_path, cli):
    r = cli("train", "lenet5", "--set", "lr=1e-3", "--set", "weight_decay=5E-4", "--set", "limit_train=64",
            "--val-split", "0", "--epochs", "1", "--out", tmp_path / "r", "--no-progress", "--format", "json")
    assert r.code == 0, r.err
    from cnnzoo.modelfile import read_record

    recipe = read_record(tmp_path / "r")["recipe"]
    assert (recipe["lr"], recipe["weight_decay"]) == (1e-3, 5e-4)


def test_cli_top_k_above_the_classes_shows_every_class(tmp_path, cli):
    from cnnzoo.modelfile import save_model

    save_model(tmp_path / "m.safetensors", cnnzoo.create_model("lenet5"))
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    r = cli("predict", tmp_path / "m.safetensors", tmp_path / "a.png", "--top", "1000000", "--json")
    assert r.code == 0, r.err
    assert len(r.json()[0]["top"]) == 10
