"""A catalogue of damaged training states and of outputs that cannot be written, run through
the command line as a careless or hostile user would (issue 29, classes 3, 5 and 7): each case
ends in a clear message, the right exit code (2 bad input or a damaged file, 1 a write that
failed), no traceback, and leaves every file it was given untouched.

Each row: (id, argv with {run}/{tmp}/{bad}/{state:NAME} placeholders, exit code, words the
message must contain). {state:NAME} is a copy of a finished run whose checkpoint is damaged by
DAMAGES[NAME].
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _train_models  # noqa: F401  (registers tiny_cnn)
from _train_models import TINY, Messages
from cnnzoo.train import state as ckpt
from cnnzoo.train.run import fit
from test_state_damage import _flip_exponent, _read, _rename_a_tensor, _run_field, rewrite


def _rng_as_floats(rec: dict) -> dict:
    rec["rng"] = {"__dict__": [["ranks", [{"__dict__": [["torch", 1.5], ["python", [3, [0], None]]]}]]]}
    return rec


DAMAGES = {
    "cut": lambda r: rewrite(r, text=_read(r)[0][ckpt.META_KEY][:120], checksum="none"),
    "list": lambda r: rewrite(r, lambda rec: [rec]),
    "string": lambda r: rewrite(r, lambda rec: "a checkpoint"),
    "no_run": lambda r: rewrite(r, lambda rec: {k: v for k, v in rec.items() if k != "run"}),
    "no_optimizer": lambda r: rewrite(r, lambda rec: {k: v for k, v in rec.items() if k != "optimizer"}),
    "step_string": lambda r: rewrite(r, lambda rec: {**rec, "step": "two"}),
    "step_huge": lambda r: rewrite(r, lambda rec: {**rec, "step": 10**20}),
    "step_bool": lambda r: rewrite(r, lambda rec: {**rec, "step": True}),
    "epoch_negative": lambda r: rewrite(r, lambda rec: {**rec, "epoch": -1}),
    "missing_tensor": lambda r: rewrite(r, _rename_a_tensor),
    "other_model": lambda r: rewrite(r, lambda rec: _run_field(rec, "model", "alexnet")),
    "run_a_list": lambda r: rewrite(r, lambda rec: {**rec, "run": ["tiny_cnn"]}),
    "seed_string": lambda r: rewrite(r, lambda rec: _run_field(rec, "seed", "zero")),
    "recipe_string": lambda r: rewrite(r, lambda rec: _run_field(rec, "recipe", "lenet")),
    "history_strings": lambda r: rewrite(r, lambda rec: {**rec, "history": [{"epoch": "one"}]}),
    "rng_floats": lambda r: rewrite(r, _rng_as_floats),
    "flipped": lambda r: rewrite(r, tensors=_flip_exponent(r), checksum="keep"),
    "zeroed_layer": lambda r: rewrite(r, tensors={**_read(r)[1], "model.fc.bias": torch.zeros(10)},
                                      checksum="keep"),
    "empty": lambda r: (r / "checkpoint.safetensors").write_bytes(b""),
    "garbage": lambda r: (r / "checkpoint.safetensors").write_bytes(bytes(range(256)) * 40),
    "header_only": lambda r: (r / "checkpoint.safetensors").write_bytes(
        (r / "checkpoint.safetensors").read_bytes()[:2000]),
}

DAMAGED = ["is damaged", "nothing was changed", "--overwrite"]
RESUME = ["train", "--resume"]
CASES: list[tuple[str, list[str], int, list[str]]] = [
    # class 5: a damaged training state
    ("resume: record cut", [*RESUME, "{state:cut}"], 2, [*DAMAGED, "not valid JSON"]),
    ("resume: record a list", [*RESUME, "{state:list}"], 2, [*DAMAGED, "JSON list"]),
    ("resume: record a string", [*RESUME, "{state:string}"], 2, [*DAMAGED, "JSON str"]),
    ("resume: no run", [*RESUME, "{state:no_run}"], 2, [*DAMAGED, "no 'run'"]),
    ("resume: no optimizer", [*RESUME, "{state:no_optimizer}"], 2, [*DAMAGED, "no 'optimizer'"]),
    ("resume: step a word", [*RESUME, "{state:step_string}"], 2, [*DAMAGED, "step", "'two'"]),
    ("resume: step 10^20", [*RESUME, "{state:step_huge}"], 2, [*DAMAGED, "step"]),
    ("resume: step true", [*RESUME, "{state:step_bool}"], 2, [*DAMAGED, "step", "True"]),
    ("resume: epoch negative", [*RESUME, "{state:epoch_negative}"], 2, [*DAMAGED, "epoch", "-1"]),
    ("resume: a tensor missing", [*RESUME, "{state:missing_tensor}"], 2, [*DAMAGED, "does not hold"]),
    ("resume: another model", [*RESUME, "{state:other_model}"], 2, [*DAMAGED, "alexnet", "tiny_cnn"]),
    ("resume: run a list", [*RESUME, "{state:run_a_list}"], 2, [*DAMAGED, "'run'"]),
    ("resume: seed a word", [*RESUME, "{state:seed_string}"], 2, [*DAMAGED, "seed"]),
    ("resume: recipe a word", [*RESUME, "{state:recipe_string}"], 2, [*DAMAGED, "recipe"]),
    ("resume: history of words", [*RESUME, "{state:history_strings}"], 2, [*DAMAGED, "history"]),
    ("resume: random states of floats", [*RESUME, "{state:rng_floats}"], 2, [*DAMAGED, "random-number"]),
    ("resume: exponent bits flipped", [*RESUME, "{state:flipped}"], 2, [*DAMAGED, "checksum"]),
    ("resume: a layer zeroed", [*RESUME, "{state:zeroed_layer}"], 2, [*DAMAGED, "checksum"]),
    ("resume: empty file", [*RESUME, "{state:empty}"], 2, [*DAMAGED, "safetensors"]),
    ("resume: garbage bytes", [*RESUME, "{state:garbage}"], 2, [*DAMAGED, "safetensors"]),
    ("resume: file cut short", [*RESUME, "{state:header_only}"], 2, [*DAMAGED, "safetensors"]),
    ("resume: a model file, not a state", [*RESUME, "{run}/model.safetensors"], 2,
     ["not a cnnzoo training checkpoint"]),
    ("resume: a folder without a state", [*RESUME, "{bad}"], 2, ["no training checkpoint"]),
    ("resume: damaged state, --epochs given", [*RESUME, "{state:flipped}", "--epochs", "5"], 2,
     [*DAMAGED, "checksum"]),
    # classes 3 and 7: an output that cannot be written is one clear error, never a traceback
    ("export --out a folder", ["export", "{run}/model.safetensors", "--out", "{bad}/folder"], 2,
     ["cannot write", "Is a directory"]),
    ("features --out a folder", ["features", "{run}/model.safetensors", "--limit", "4", "--out", "{bad}/folder"],
     2, ["cannot write", "Is a directory"]),
    ("features --out under a file", ["features", "{run}/model.safetensors", "--limit", "4", "--out",
                                     "{bad}/notes.txt/f.safetensors"], 2, ["cannot write", "folder"]),
    ("linear-probe --out where files cannot be", ["linear-probe", "{bad}/f.safetensors", "--epochs", "1",
                                                  "--out", "/proc/cnnzoo-probe.safetensors"], 2, ["cannot write"]),
    ("export --out a name too long", ["export", "{run}/model.safetensors", "--out", "{tmp}/" + "m" * 300 + ".onnx"],
     2, ["too long"]),
    ("summary --plot a folder", ["summary", "lenet5", "--plot", "{bad}/folder.png"], 2, ["cannot write plot"]),
    ("eval --plot-confusion a folder", ["eval", "{run}/model.safetensors", "--plot-confusion", "{bad}/folder"],
     2, ["cannot write", "folder"]),
]


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A finished run, copies of it with damaged states, a features file and a few obstacles."""
    root = tmp_path_factory.mktemp("catalogue_state")
    run = root / "run"
    fit("tiny_cnn", recipe="lenet", epochs=1, out=run, overrides=TINY, reporter=Messages())
    states = root / "states"
    for name, damage in DAMAGES.items():
        shutil.copytree(run, states / name)
        damage(states / name)
    bad = root / "bad"
    bad.mkdir()
    (bad / "folder").mkdir()
    (bad / "folder.png").mkdir()
    (bad / "notes.txt").write_text("not a folder")
    from cnnzoo.transfer.featfile import save_features

    save_features(bad / "f.safetensors", torch.randn(8, 4), torch.arange(8) % 2, classes=["a", "b"])
    return {"run": run, "states": states, "bad": bad, "root": root}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_damaged_state_or_an_unwritable_output_ends_in_a_clear_error(case, files, tmp_path, cli):
    _, argv, code, words = case
    subs = {"{run}": str(files["run"]), "{bad}": str(files["bad"]), "{tmp}": str(tmp_path)}
    args = []
    for a in argv:
        if a.startswith("{state:"):
            a = str(files["states"] / a[len("{state:"):-1])
        for k, v in subs.items():
            a = a.replace(k, v)
        args.append(a)
    before = _hashes(files["root"])
    r = cli(*args)  # anything but SystemExit escaping main() is a traceback
    text = " ".join((r.out + r.err).split())  # rich wraps long lines
    assert r.code == code, (r.code, text[-2000:])
    assert "Traceback" not in text
    for w in words:
        assert w in text, (w, text[-2000:])
    assert _hashes(files["root"]) == before  # every file it was given is untouched
    assert not [p for p in files["root"].rglob("*.tmp")]


def test_every_damage_is_a_case():
    used = {a[len("{state:"):-1] for _, argv, _, _ in CASES for a in argv if a.startswith("{state:")}
    assert used == set(DAMAGES)
    assert len(CASES) >= 12 and json.dumps(CASES)  # plain data
