"""A catalogue of outputs that must not be written (issue 29, class 2 and its neighbours), run
through the command line as a careless user would: each verb's output onto its own input, onto a
training run's own files (this run's or another's), over a user's file without --overwrite, onto
a folder, a device, under a file, with a name the file system refuses. Each case must end in exit
2 with a message that says why, no traceback, and every file it pointed at byte-identical.

Each row: (id, argv with {run}/{run2}/{user}/{tmp} placeholders, exit code, words the message
must contain). The files are made once in `files` below.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn)
from _cli import fill, run_cli

LONG = "n" * 240
CASES: list[tuple[str, list[str], int, list[str]]] = [
    # onto the verb's own input
    ("export onto its model file", ["export", "{user}/m.safetensors", "--to", "torchscript", "--out",
                                    "{user}/m.safetensors", "--overwrite"], 2, ["own input"]),
    ("export onto a hard link of its model", ["export", "{user}/m.safetensors", "--to", "torchscript",
                                              "--out", "{user}/hard.safetensors", "--overwrite"], 2, ["own input"]),
    ("export a run onto its metrics", ["export", "{run}", "--out", "{run}/metrics.csv", "--overwrite"], 2,
     ["own input", "metrics.csv"]),
    ("gradcam onto its image", ["visualize", "gradcam", "{run}/model.safetensors", "{user}/digit.png", "-o",
                                "{user}/digit.png", "--overwrite"], 2, ["own input"]),
    ("linear-probe onto its features", ["linear-probe", "{user}/f.safetensors", "--out", "{user}/f.safetensors",
                                        "--overwrite"], 2, ["own input"]),
    ("linear-probe onto its --val features", ["linear-probe", "{user}/f.safetensors", "--val",
                                              "{user}/g.safetensors", "--out", "{user}/g.safetensors",
                                              "--overwrite"], 2, ["own input"]),
    ("convert onto its weights file", ["convert", "{user}/w.pth", "{user}/w.pth", "--model", "lenet5",
                                       "--overwrite"], 2, ["own input"]),
    ("finetune onto its model", ["finetune", "{user}/m.safetensors", "--classes", "0-4", "--per-class", "2",
                                 "--out", "{user}/m.safetensors", "--overwrite"], 2, ["own input"]),
    # onto a training run's own files, this run's or another's, --overwrite or not
    ("eval --plot-confusion onto the run's curves", ["eval", "{run}/model.safetensors", "--plot-confusion",
                                                     "{run}/training_curves.png", "--overwrite"], 2,
     ["training run"]),
    ("eval --plot-confusion onto another run's metrics", ["eval", "{run}", "--plot-confusion",
                                                          "{run2}/metrics.csv", "--overwrite"], 2, ["training run"]),
    ("export onto another run's model file", ["export", "{user}/m.safetensors", "--to", "torchscript", "--out",
                                              "{run2}/model.safetensors", "--overwrite"], 2, ["training run"]),
    ("features onto a run's checkpoint", ["features", "lenet5", "--out", "{run}/checkpoint.safetensors",
                                          "--overwrite"], 2, ["training run"]),
    ("features through a link to a run's model", ["features", "lenet5", "--out", "{user}/link.safetensors",
                                                  "--overwrite"], 2, ["training run"]),
    ("visualize filters onto the run's model", ["visualize", "filters", "{run}", "-o",
                                                "{run}/model.safetensors"], 2, ["own input"]),
    ("visualize filters onto another run's model", ["visualize", "filters", "{run}", "-o",
                                                    "{run2}/model.safetensors", "--overwrite"], 2, ["training run"]),
    ("finetune onto another run's model", ["finetune", "lenet5", "--classes", "0-4", "--per-class", "2",
                                           "--out", "{run2}/model.safetensors", "--overwrite"], 2, ["training run"]),
    ("convert onto a run's model", ["convert", "{user}/w.pth", "{run}/model.safetensors", "--model", "lenet5",
                                    "--overwrite"], 2, ["training run"]),
    ("summary --plot onto a run's curves", ["summary", "lenet5", "--plot", "{run}/training_curves.png",
                                            "--overwrite"], 2, ["training run"]),
    ("bench --out into a run's tensorboard", ["bench", "models", "--quick", "--out",
                                              "{run}/tensorboard/x.json", "--overwrite"], 2, ["training run"]),
    ("experiment --out a run folder", ["experiment", "stacked-3x3", "--quick", "--out", "{run}"], 2,
     ["training run"]),
    # over a user's file without --overwrite
    ("export's default beside the model exists", ["export", "{user}/m.safetensors", "--to", "torchscript"], 2,
     ["m.pt exists", "--overwrite"]),
    ("int8 export's default exists", ["export", "{user}/m.safetensors", "--int8-mode", "dynamic"], 2,
     ["m.int8.onnx exists", "--overwrite"]),
    ("occlusion onto an existing png", ["visualize", "occlusion", "{user}/m.safetensors", "{user}/digit.png",
                                        "-o", "{user}/mine.png"], 2, ["exists", "--overwrite"]),
    ("top9 onto an existing png", ["visualize", "top9", "lenet5", "-l", "c1", "-c", "0", "-o",
                                   "{user}/mine.png"], 2, ["exists"]),
    ("eval --plot-confusion over a png", ["eval", "{run}", "--plot-confusion", "{user}/mine.png"], 2,
     ["exists", "--overwrite"]),
    ("features over a file", ["features", "lenet5", "--out", "{user}/g.safetensors"], 2, ["exists"]),
    ("compare --plot over a png", ["compare", "lenet5", "alexnet", "--plot", "{user}/mine.png"], 2,
     ["exists"]),
    ("bench to-accuracy --out over a file", ["bench", "to-accuracy", "50", "--data", "embedded", "--out",
                                             "{user}/mine.png"], 2, ["exists"]),
    ("experiment over its results", ["experiment", "stacked-3x3", "--quick", "--out", "{user}"], 2,
     ["stacked-3x3.json exists", "--overwrite"]),
    # where no file can be written
    ("features --out a folder", ["features", "lenet5", "--out", "{tmp}"], 2, ["is a folder"]),
    ("features --out under a file", ["features", "lenet5", "--out", "{user}/w.pth/f.safetensors"], 2,
     ["which is a file"]),
    ("export --out a name over the limit", ["export", "{user}/m.safetensors", "--out", "{tmp}/" + LONG + ".onnx"],
     2, ["bytes"]),
    ("visualize --out a folder name over the limit", ["visualize", "filters", "lenet5", "-o",
                                                      "{tmp}/" + "d" * 300 + "/f.png"], 2, ["limit"]),
    ("export --out a device", ["export", "{user}/m.safetensors", "--out", os.devnull, "--overwrite"], 2,
     ["not a regular file"]),
    ("experiment --out a file", ["experiment", "stacked-3x3", "--quick", "--out", "{user}/w.pth"], 2,
     ["must be a folder"]),
    ("convert onto a folder", ["convert", "{user}/w.pth", "{tmp}", "--model", "lenet5"], 2, ["is a folder"]),
]


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A finished run and a copy of it (another run), and a user's files: a model file with its
    exports beside it, an image, features, a weights file, links."""
    import numpy as np
    from PIL import Image

    import cnnzoo
    from cnnzoo.transfer.featfile import save_features

    root = tmp_path_factory.mktemp("outputs")
    run, run2, user = root / "run", root / "run2", root / "user"
    assert run_cli(["train", "tiny_cnn", "--epochs", "1", "--out", str(run), "--set", "limit_train=320",
                    "--no-progress"]).code == 0
    run2.mkdir()
    for p in run.iterdir():
        if p.is_file():
            (run2 / p.name).write_bytes(p.read_bytes())
    (run / "tensorboard").mkdir(exist_ok=True)
    user.mkdir()
    model = cnnzoo.create_model("lenet5")
    cnnzoo.save_model(user / "m.safetensors", model)
    os.link(user / "m.safetensors", user / "hard.safetensors")
    for name in ("m.pt", "m.int8.onnx", "mine.png", "stacked-3x3.json"):
        (user / name).write_bytes(b"the user's own file")
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(user / "digit.png")
    for name in ("f", "g"):
        save_features(user / f"{name}.safetensors", torch.randn(8, 4), torch.arange(8) % 2)
    torch.save(model.state_dict(), user / "w.pth")
    (user / "link.safetensors").symlink_to(run / "model.safetensors")
    return {"run": run, "run2": run2, "user": user, "root": root}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_an_output_that_must_not_be_written(case, files, tmp_path, cli):
    name, argv, code, words = case
    subs = {"{run2}": files["run2"], "{run}": files["run"], "{user}": files["user"], "{tmp}": tmp_path}
    args = fill(argv, subs)
    before = _hashes(files["root"])
    r = cli(*args)  # anything but SystemExit escaping main() is a traceback
    text = r.out + r.err
    assert r.code == code, (r.code, text[-2000:])
    assert "Traceback" not in text
    for w in words:
        assert w.lower() in text.lower(), (w, text[-2000:])
    assert _hashes(files["root"]) == before, "a file changed"
    assert not list(tmp_path.iterdir()), "something was written"
    assert not list(files["root"].rglob(".*.tmp")), "a temporary file was left behind"


def test_catalogue_counts(capsys):
    """The counts the closing note reports (cases, by exit code)."""
    assert len(CASES) >= 15 and len({c[0] for c in CASES}) == len(CASES)
