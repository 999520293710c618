import json

import numpy as np
import pytest
import torch
from PIL import Image

import cnnzoo
from _hostile import png_header_only
from _zoo_testmodels import ensure_registered
from cnnzoo.data.images import ImageError, load_image
from cnnzoo.data.preprocess import Preprocess
from cnnzoo.deploy.predict import get_preprocess, predict

ensure_registered()

CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PP_GRAY = {"input_size": [1, 28, 28], "resize": None, "mean": [0.1307], "std": [0.3081],
           "grayscale": True}


@pytest.fixture(scope="module")
def gray_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "gray.safetensors"
    cnnzoo.save_model(path, cnnzoo.create_model("_small_cnn_test", num_classes=10, in_chans=1), classes=CLASSES,
                      preprocess=PP_GRAY)
    return path


def _images(d):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)
    files = {"rgb.jpg": Image.fromarray(rgb), "gray.png": Image.fromarray(rgb[..., 0]),
             "rgba.png": Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA"),
             "palette.gif": Image.fromarray(rgb).convert("P"),
             "big16.png": Image.fromarray(rng.integers(0, 65535, (300, 20), dtype=np.uint16)),
             "bw.bmp": Image.fromarray(rgb[..., 0] > 128)}
    for name, img in files.items():
        img.save(d / name)
    return [d / n for n in files]


def test_top5_follows_the_recorded_preprocessing(gray_file, tmp_path):
    model, record = cnnzoo.load_model(gray_file)
    paths = _images(tmp_path)
    res = predict(model, paths, record)
    assert [r["image"] for r in res] == [str(p) for p in paths]
    for r, p in zip(res, paths):
        assert len(r["top"]) == 5
        probs = [c["prob"] for c in r["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert all(c["class"] == CLASSES[c["index"]] for c in r["top"])
        # the same numbers as preprocessing by hand: gray, 28x28, MNIST statistics
        img = Image.open(p)
        img = img.convert("RGBA") if img.mode in ("RGBA", "P") else img
        if img.mode == "RGBA":
            bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(bg, img)
        if img.mode == "I;16" or img.mode == "I":
            arr = np.asarray(img, dtype=np.float32) / 65535 * 255
            img = Image.fromarray(arr.astype(np.uint8))
        x = torch.from_numpy(np.asarray(img.convert("L"), np.float32) / 255)[None, None]
        x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", antialias=True)
        x = (x - 0.1307) / 0.3081
        with torch.no_grad():
            expect = model(x).softmax(1)[0]
        torch.testing.assert_close(torch.tensor(probs), expect.sort(descending=True).values[:5],
                                   atol=1e-5, rtol=0)


def test_mnist_record_pads_28_to_32_like_the_trainer():
    # the trainer's record for MNIST in LeNet-5: shorter side 28, a 32x32 centre crop = 2 px of
    # zero padding per side (zero before normalisation: black)
    pp = {"input_size": [1, 32, 32], "resize": 28, "mean": [0.1307], "std": [0.3081],
          "grayscale": True, "pad": 2}
    digit = np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8)
    x = Preprocess.from_record(pp).prepare_image(Image.fromarray(digit))
    assert x.shape == (1, 32, 32)
    torch.testing.assert_close(x[0, 2:30, 2:30], (torch.from_numpy(digit / 255).float() - 0.1307) / 0.3081)
    torch.testing.assert_close(x[0, :2], torch.full((2, 32), -0.1307 / 0.3081))


def test_rgb_defaults_resize_and_centre_crop(tmp_path):
    # no recorded preprocessing: native size + ImageNet statistics, shorter side 256, crop 224
    model = cnnzoo.create_model("_tv_resnet18_test", num_classes=3)
    pp = get_preprocess({}, model).to_record()
    assert pp == {"input_size": [3, 224, 224], "resize": 256, "mean": [0.485, 0.456, 0.406],
                  "std": [0.229, 0.224, 0.225], "grayscale": False}
    img = Image.fromarray(np.full((100, 400), 200, np.uint8))  # gray into an RGB model
    x = Preprocess.from_record(pp).prepare_image(img)
    assert x.shape == (3, 224, 224)
    torch.testing.assert_close(x[:, 0, 0], (200 / 255 - torch.tensor(pp["mean"])) / torch.tensor(pp["std"]))


def test_predict_cli_json(gray_file, tmp_path, cli):
    paths = _images(tmp_path)[:2]
    r = cli("predict", str(gray_file), *map(str, paths), "--json", "--top", "3")
    assert r.code == 0
    res = r.json()
    assert len(res) == 2 and [len(r["top"]) for r in res] == [3, 3]
    r = cli("predict", str(gray_file), str(paths[0]))
    assert r.code == 0 and "probability" in r.out


def test_decompression_bombs_are_refused_before_decoding(tmp_path, gray_file, cli):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(100_000, 100_000))  # 10 gigapixels claimed
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(bomb)
    medium = tmp_path / "medium.png"
    medium.write_bytes(png_header_only(8000, 6000))  # 48 MP: under PIL's limit, over ours
    with pytest.raises(ImageError, match=r"8000x6000 = 48,000,000 pixels exceeds the limit of "
                                         r"40,000,000 \(a decompression bomb"):
        load_image(medium)
    Image.new("L", (30, 30)).save(tmp_path / "ok.png")
    with pytest.raises(ImageError, match="exceeds the limit of 100"):
        load_image(tmp_path / "ok.png", max_pixels=100)
    r = cli("predict", str(gray_file), str(bomb))
    assert r.code == 2 and "decompression bomb" in r.err


def test_missing_model_file_is_a_clear_error(tmp_path, cli):
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    r = cli("predict", str(tmp_path / "nothere"), str(tmp_path / "x.png"))
    assert r.code == 2 and "no such model file, and not a model name" in r.err


def test_corrupt_and_missing_images(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"definitely not a jpeg")
    with pytest.raises(ImageError, match="not an image file PIL can read"):
        load_image(tmp_path / "junk.jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(tmp_path / "cut.png")
    with pytest.raises(ImageError, match="no such image file"):
        load_image(tmp_path / "absent.png")


def _onnx_export_with_record(model_file, dest, record_keys=("model", "num_classes", "in_chans",
                                                            "preprocess", "classes")):
    """What `cnnzoo export` writes: the graph plus the model file's record in metadata_props."""
    import onnx

    model, record = cnnzoo.load_model(model_file)
    x = torch.zeros(1, *record["preprocess"]["input_size"])
    torch.onnx.export(model.eval(), (x,), str(dest), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    proto = onnx.load(str(dest))
    prop = proto.metadata_props.add()
    prop.key, prop.value = "cnnzoo.record", json.dumps({k: record.get(k) for k in record_keys})
    onnx.save(proto, str(dest))


def test_predict_on_an_onnx_export_gives_the_model_files_top5(gray_file, tmp_path, cli):
    dest = tmp_path / "gray.onnx"
    _onnx_export_with_record(gray_file, dest)
    paths = [str(p) for p in _images(tmp_path)]
    results = {}
    for src in (gray_file, dest):
        r = cli("predict", str(src), *paths, "--format", "json")
        assert r.code == 0
        results[src.suffix] = r.json()
    for a, b in zip(results[".safetensors"], results[".onnx"]):
        assert [t["class"] for t in a["top"]] == [t["class"] for t in b["top"]]
        assert [t["prob"] for t in a["top"]] == pytest.approx([t["prob"] for t in b["top"]], abs=1e-4)
    assert results[".onnx"][0]["top"][0]["class"] in CLASSES
    # an ONNX file without the record: a clear error, exit 2
    import onnx

    proto = onnx.load(str(dest))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    r = cli("predict", str(tmp_path / "bare.onnx"), paths[0])
    assert r.code == 2 and "cnnzoo.record" in r.err
    # verbs that need the torch model say so instead of failing inside
    for argv in (["export", str(dest), "--int8-mode", "dynamic", "--out", str(tmp_path / "q.onnx")],
                 ["visualize", "gradcam", str(dest), paths[0], "--out", str(tmp_path / "g.png")]):
        r = cli(*argv)
        assert r.code == 2 and "ONNX export" in r.err, argv
