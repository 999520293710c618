"""A catalogue of bad inputs and faults, run through the command line as a careless or hostile
user would: each case must end in a clear message, the right exit code (2 bad input, 1 a job
that ran and failed), no traceback, and leave a finished run's files untouched.

Each row: (id, argv with {run}/{tmp}/{img}/{bad} placeholders, exit code, words the message
must contain). Cases that need files make them in `files` below.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn and friends)
from _cli import fill, run_cli
from _hostile import Reduce

CASES: list[tuple[str, list[str], int, list[str]]] = [
    # names and options
    ("unknown model", ["info", "resnet51"], 2, ["unknown model", "resnet50"]),
    ("unknown model in summary", ["summary", "vgg61"], 2, ["unknown model"]),
    ("bad --input", ["summary", "alexnet", "--input", "3x0x0"], 2, ["--input", "CxHxW"]),
    ("input too small", ["summary", "alexnet", "--input", "3x32x32"], 2, ["too small", "at least"]),
    ("unknown option", ["train", "tiny_cnn", "--banana", "1"], 2, ["No such option"]),
    ("unknown verb", ["trian"], 2, ["No such command"]),
    ("unknown recipe", ["train", "tiny_cnn", "--recipe", "nope", "--out", "{tmp}/r"], 2, ["unknown recipe"]),
    ("bad --set value", ["train", "tiny_cnn", "--set", "lr=abc", "--out", "{tmp}/r"], 2, ["lr"]),
    ("unknown --set key", ["train", "tiny_cnn", "--set", "banana=1", "--out", "{tmp}/r"], 2, ["banana"]),
    ("bench bad device", ["bench", "models", "--device", "banana"], 2, ["device"]),
    ("bench cuda without gpu", ["bench", "models", "--device", "cuda", "--models", "lenet5_modern"], 2, ["cuda"]),
    ("bench bad modes", ["bench", "models", "--modes", "fly"], 2, ["infer"]),
    ("bench old spelling", ["bench", "--quick"], 2, ["cnnzoo bench models"]),
    # transfer options
    ("features per-class 0", ["features", "lenet5", "--per-class", "0", "--out", "{tmp}/f.safetensors"],
     2, ["per_class", "positive"]),
    ("features bogus split", ["features", "lenet5", "--split", "bogus", "--out", "{tmp}/f.safetensors"],
     2, ["split", "train or test"]),
    ("features negative limit", ["features", "lenet5", "--limit", "-3", "--out", "{tmp}/f.safetensors"],
     2, ["limit"]),
    ("features bad pool", ["features", "lenet5", "--pool", "banana", "--out", "{tmp}/f.safetensors"],
     2, ["pool"]),
    ("features unknown layer", ["features", "lenet5", "--layer", "c9", "--out", "{tmp}/f.safetensors"],
     2, ["no layer named", "c5"]),
    ("finetune negative epochs", ["finetune", "lenet5", "--classes", "0-4", "--per-class", "2",
                                  "--epochs", "-1"], 2, ["epochs", "positive"]),
    ("finetune nan lr", ["finetune", "lenet5", "--classes", "0-4", "--per-class", "2", "--lr", "nan"],
     2, ["lr", "finite"]),
    ("finetune batch 0", ["finetune", "lenet5", "--classes", "0-4", "--per-class", "2",
                          "--batch-size", "0"], 2, ["batch_size"]),
    ("finetune classes out of range", ["finetune", "lenet5", "--classes", "7-12", "--per-class", "2"],
     2, ["classes"]),
    ("linear-probe missing file", ["linear-probe", "{tmp}/nothere.safetensors"], 2, ["not a features file"]),
    # model files and images
    ("eval missing file", ["eval", "{tmp}/nothere.safetensors"], 2, ["no such model file"]),
    ("eval a text file", ["eval", "{bad}/notes.safetensors"], 2, ["not a readable safetensors"]),
    ("predict missing image", ["predict", "{run}/model.safetensors", "{tmp}/none.png"], 2, ["no such image"]),
    ("predict a text file as image", ["predict", "{run}/model.safetensors", "{bad}/notes.png"], 2,
     ["not an image"]),
    ("predict unknown model", ["predict", "nothere", "{img}"], 2, ["no such model file"]),
    ("predict truncated png", ["predict", "{run}/model.safetensors", "{bad}/truncated.png"], 2,
     ["image"]),
    ("visualize unknown model", ["visualize", "filters", "nothere", "-o", "{tmp}/f.png"], 2,
     ["no such model file"]),
    ("visualize a text file", ["visualize", "gradcam", "{run}/model.safetensors", "{bad}/notes.png",
                               "-o", "{tmp}/g.png"], 2, ["not an image"]),
    ("malicious torch checkpoint", ["eval", "{bad}/evil.pt"], 2, ["refusing to load"]),
    ("export failed check", ["export", "{run}/model.safetensors", "--to", "onnx", "--out",
                             "{tmp}/t.onnx", "--atol", "1e-12"], 1, ["differs", "not kept"]),
    ("train resume of a non-run", ["train", "--resume", "{bad}"], 2, ["no training checkpoint"]),
    # training runs and their options
    ("train into a finished run", ["train", "tiny_cnn", "--epochs", "1", "--out", "{run}"], 2,
     ["--resume", "--overwrite"]),
    ("train --out under a file", ["train", "tiny_cnn", "--out", "{bad}/notes.png/run"], 2, ["out"]),
    ("train zero epochs", ["train", "tiny_cnn", "--epochs", "0", "--out", "{tmp}/r"], 2, ["epochs"]),
    ("resume already complete", ["train", "--resume", "{run}", "--epochs", "1"], 2, ["already complete"]),
    ("resume with another batch size", ["train", "--resume", "{run}", "--epochs", "3", "--batch-size", "7"],
     2, ["batch"]),
    ("train nan lr", ["train", "tiny_cnn", "--lr", "nan", "--out", "{tmp}/r"], 2, ["lr"]),
    ("train negative lr", ["train", "tiny_cnn", "--lr", "-1", "--out", "{tmp}/r"], 2, ["lr"]),
    ("train bad betas", ["train", "tiny_cnn", "--set", "betas=[2,3]", "--out", "{tmp}/r"], 2, ["betas"]),
    ("train negative momentum", ["train", "tiny_cnn", "--set", "momentum=-1", "--out", "{tmp}/r"], 2,
     ["momentum"]),
    ("train negative limit_train", ["train", "tiny_cnn", "--set", "limit_train=-5", "--out", "{tmp}/r"], 2,
     ["limit_train"]),
    ("train negative ckpt_every", ["train", "tiny_cnn", "--set", "ckpt_every=-1", "--out", "{tmp}/r"], 2,
     ["ckpt_every"]),
    ("train negative weight decay", ["train", "tiny_cnn", "--set", "weight_decay=-0.1", "--out", "{tmp}/r"],
     2, ["weight_decay"]),
    ("train device banana", ["train", "tiny_cnn", "--device", "banana", "--out", "{tmp}/r"], 2, ["device"]),
    ("train cuda without a gpu", ["train", "tiny_cnn", "--device", "cuda", "--out", "{tmp}/r"], 2, ["cuda"]),
    ("train --config is a folder", ["train", "tiny_cnn", "--config", "{bad}", "--out", "{tmp}/r"], 2,
     ["directory"]),
    ("eval batch size 0", ["eval", "{run}/model.safetensors", "--batch-size", "0"], 2, ["batch"]),
    ("eval negative batch size", ["eval", "{run}/model.safetensors", "--batch-size", "-5"], 2, ["batch"]),
    ("eval device banana", ["eval", "{run}/model.safetensors", "--device", "banana"], 2, ["device"]),
    # hostile and corrupt files
    ("record claims 10^12 classes", ["predict", "{bad}/huge.safetensors", "{img}"], 2, ["num_classes"]),
    ("record is a list", ["predict", "{bad}/list.safetensors", "{img}"], 2, ["record"]),
    ("record without a model", ["eval", "{bad}/nomodel.safetensors"], 2, ["model"]),
    ("mnist with flipped gzip bytes", ["eval", "{run}/model.safetensors", "--data", "mnist:{bad}/mnist"], 2,
     ["corrupt"]),
    ("folder of corrupt images only", ["train", "tiny_rgb", "--data", "folder:{bad}/corrupt_folder",
                                       "--out", "{tmp}/r", "--set", "workers=0", "--batch-size", "2", "--recipe", "lenet"],
     2, ["could be read", "nothing to train"]),
    ("folder train/val class names differ", ["train", "tiny_rgb", "--data", "folder:{bad}/names_folder",
                                             "--out", "{tmp}/r"], 2, ["only in"]),
]


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A finished run (whose files no case may touch), an image, and a folder of bad files."""
    from PIL import Image

    root = tmp_path_factory.mktemp("catalogue")
    run = root / "run"
    main_ok(["train", "tiny_cnn", "--epochs", "1", "--out", str(run), "--set", "limit_train=640",
             "--no-progress"])
    img = root / "digit.png"
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(img)
    bad = root / "bad"
    bad.mkdir()
    (bad / "notes.safetensors").write_text("not a model")
    (bad / "notes.png").write_text("not an image")
    (bad / "truncated.png").write_bytes(img.read_bytes()[:40])
    import pickle

    (bad / "evil.pt").write_bytes(pickle.dumps({"model": Reduce(print, ("this must never run",))}))
    _hostile_model_files(run / "model.safetensors", bad)
    mnist = bad / "mnist"
    mnist.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        data = bytearray(gzip.compress(b"\x00\x00\x08\x03" + bytes(range(256)) * 40))
        data[30:40] = bytes(b ^ 0xFF for b in data[30:40])  # flipped bytes inside the stream
        (mnist / f"{name}.gz").write_bytes(bytes(data))
    for split in ("train", "val"):
        d = bad / "corrupt_folder" / split / "a"
        d.mkdir(parents=True)
        (d / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        (bad / "corrupt_folder" / split / "b").mkdir()
        (bad / "corrupt_folder" / split / "b" / "y.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    for split, classes in (("train", ("cat", "dog")), ("val", ("cat", "emu"))):
        for c in classes:
            d = bad / "names_folder" / split / c
            d.mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(d / "0.png")
    return {"run": run, "img": img, "bad": bad, "root": root}


def _hostile_model_files(good: Path, bad: Path) -> None:
    """Copies of a good model file whose record lies: 10^12 classes, a list, no model name."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(good), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        record = json.loads(f.metadata()["cnnzoo"])
    for name, rec in (("huge", {**record, "num_classes": 10**12}), ("list", [record]),
                      ("nomodel", {k: v for k, v in record.items() if k != "model"})):
        save_file(tensors, str(bad / f"{name}.safetensors"), metadata={"cnnzoo": json.dumps(rec)})


def main_ok(argv: list[str]) -> None:
    assert run_cli(argv).code == 0, argv


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_ends_in_a_clear_error(case, files, tmp_path, cli):
    name, argv, code, words = case
    if "without a gpu" in name or "without gpu" in name:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    subs = {"{run}": str(files["run"]), "{img}": str(files["img"]), "{bad}": str(files["bad"]),
            "{tmp}": str(tmp_path)}
    args = fill(argv, subs)
    before = _hashes(files["run"])
    r = cli(*args)  # anything but SystemExit escaping main() is a traceback
    out, err = r.out, r.err
    text = out + err
    assert r.code == code, (r.code, text[-2000:])
    assert "Traceback" not in text
    for w in words:
        assert w.lower() in text.lower(), (w, text[-2000:])
    assert _hashes(files["run"]) == before, "a finished run's files changed"
    assert not list(tmp_path.glob("**/.*.tmp")), "a temporary file was left behind"


def test_catalogue_counts(capsys):
    """The counts the closing note reports (cases, by exit code)."""
    by_code: dict[int, int] = {}
    for _, _, code, _ in CASES:
        by_code[code] = by_code.get(code, 0) + 1
    print(json.dumps({"cases": len(CASES), "by_exit_code": by_code}))
    assert len(CASES) >= 30
