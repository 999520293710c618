"""A damaged training state is refused, never trusted: its record is validated like a model
record (schema, types, bounds, the tensors it names, the run's model and recipe) and the
SHA-256 of record and tensors is verified on resume. Any damage is exit 2 with a message that
names the file and the way on (the model file, or start again), and nothing is written.
A checkpoint written before checksums still resumes, with a warning."""

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
from _train_models import TINY, TINY_ARGS, Messages
from cnnzoo.errors import TrainingStateError
from cnnzoo.train import state as ckpt
from cnnzoo.train.run import fit
from cnnzoo.train.state_check import digest


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("state") / "run"
    fit("tiny_cnn", recipe="lenet", epochs=1, out=run, overrides=TINY, reporter=Messages())
    return run


@pytest.fixture
def run(good_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(good_run, copy)
    return copy


def _read(run: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(run / "checkpoint.safetensors"), framework="pt") as f:
        meta = f.metadata()
    return meta, load_file(str(run / "checkpoint.safetensors"))


def rewrite(run: Path, edit=None, *, text: str | None = None, tensors: dict | None = None,
            checksum: str = "fresh") -> None:
    """The run's checkpoint with its record edited (`edit(record)` returns the new one) or
    replaced by `text`, its tensors replaced; its checksum recomputed ("fresh": a consistent
    file that only validation can refuse), kept ("keep": as saved) or left out ("none")."""
    from safetensors.torch import save_file

    meta, old = _read(run)
    record = json.loads(meta[ckpt.META_KEY])
    text = text if text is not None else json.dumps(edit(record) if edit else record)
    tensors = tensors if tensors is not None else old
    metadata = {ckpt.META_KEY: text}
    if checksum == "keep":
        metadata[ckpt.DIGEST_KEY] = meta[ckpt.DIGEST_KEY]
    elif checksum == "fresh":
        metadata[ckpt.DIGEST_KEY] = digest(text, tensors)
    save_file(tensors, str(run / "checkpoint.safetensors"), metadata=metadata)


def _hashes(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir())}


def _run_field(record: dict, key: str, value) -> dict:
    pairs = record["run"]["__dict__"]
    record["run"]["__dict__"] = [[k, value if k == key else v] for k, v in pairs]
    return record


def _first_tensor_ref(obj):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return obj
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            found = _first_tensor_ref(v)
            if found is not None:
                return found
    return None


def _rename_a_tensor(record: dict) -> dict:
    _first_tensor_ref(record["optimizer"])["__tensor__"] = "optim.nothing.here"
    return record


def _nested_history(run: Path, depth: int = 10000) -> str:
    """The record with a history nested `depth` lists deep (json.dumps itself cannot write it)."""
    record = json.loads(_read(run)[0][ckpt.META_KEY])
    record.pop("history")
    return json.dumps(record)[:-1] + ', "history": ' + "[" * depth + "]" * depth + "}"


def _flip_exponent(run: Path, layer: str = "model.fc.weight") -> dict[str, torch.Tensor]:
    _, tensors = _read(run)
    bits = tensors[layer].view(torch.int32)
    tensors[layer] = (bits ^ (1 << 30)).view(torch.float32)  # the top exponent bit of every value
    return tensors


def _as_old_checkpoint(run: Path) -> None:
    rewrite(run, checksum="none")


# (id, how to damage the run's checkpoint, words the message must hold)
DAMAGE = [
    ("record cut", lambda r: rewrite(r, text=_read(r)[0][ckpt.META_KEY][:200], checksum="none"),
     ["not valid JSON"]),
    ("record a list", lambda r: rewrite(r, lambda rec: [rec]), ["a JSON list"]),
    ("no run", lambda r: rewrite(r, lambda rec: {k: v for k, v in rec.items() if k != "run"}), ["no 'run'"]),
    ("step a string", lambda r: rewrite(r, lambda rec: {**rec, "step": "2"}), ["step", "'2'"]),
    ("step a float", lambda r: rewrite(r, lambda rec: {**rec, "step": 2.0}), ["step", "2.0"]),
    ("step negative", lambda r: rewrite(r, lambda rec: {**rec, "step": -4}), ["step", "-4"]),
    ("names a missing tensor", lambda r: rewrite(r, _rename_a_tensor), ["optim.nothing.here"]),
    ("model is another", lambda r: rewrite(r, lambda rec: _run_field(rec, "model", "lenet5")),
     ["lenet5", "tiny_cnn"]),
    ("model unknown", lambda r: rewrite(r, lambda rec: _run_field(rec, "model", "resnet51")), ["resnet51"]),
    ("recipe invalid", lambda r: rewrite(r, lambda rec: _run_field(
        rec, "recipe", {"__dict__": [[k, -1.0 if k == "lr" else v] for k, v in
                                     _unpairs(rec, "recipe")]})), ["recipe", "lr"]),
    ("nested 10000 deep", lambda r: rewrite(r, text=_nested_history(r), checksum="none"), ["JSON"]),
    ("exponent bit flipped in a layer", lambda r: rewrite(r, tensors=_flip_exponent(r), checksum="keep"),
     ["checksum does not match"]),
    ("record edited after saving", lambda r: rewrite(r, lambda rec: {**rec, "step": 1}, checksum="keep"),
     ["checksum does not match"]),
    ("file cut in half", lambda r: (r / "checkpoint.safetensors").write_bytes(
        (r / "checkpoint.safetensors").read_bytes()[:5000]), ["not a readable safetensors file"]),
]


def _unpairs(record: dict, key: str) -> list:
    return dict(record["run"]["__dict__"])[key]["__dict__"]


@pytest.mark.parametrize("case", DAMAGE, ids=[c[0] for c in DAMAGE])
def test_resume_refuses_a_damaged_state(case, run, cli):
    _, damage, words = case
    damage(run)
    before = _hashes(run)
    code, out, err = cli("train", "--resume", run, "--epochs", "2", *TINY_ARGS[-1:])
    text = " ".join((out + err).split())
    assert code == 2, text[-2000:]
    assert f"the training state {run / 'checkpoint.safetensors'} is damaged" in text
    assert "nothing was changed" in text and "--overwrite" in text and "model.safetensors" in text
    for w in words:
        assert w in text, (w, text)
    assert _hashes(run) == before  # nothing written, no lock left


def test_a_model_of_another_shape_without_its_model_file(run, cli):
    """Without the run's model file to compare with, the weights themselves do not fit."""
    (run / "model.safetensors").unlink()
    rewrite(run, lambda rec: _run_field(rec, "model", "tiny_bn"))
    code, out, err = cli("train", "--resume", run, "--epochs", "2", *TINY_ARGS[-1:])
    text = " ".join(err.split())
    assert code == 2 and "is damaged" in text and "weights are not a tiny_bn's" in text, text
    assert "Start the run again" in text


def test_the_api_raises_training_state_error(run):
    rewrite(run, tensors=_flip_exponent(run), checksum="keep")
    with pytest.raises(TrainingStateError, match="checksum does not match"):
        ckpt.read_training_state(run)
    with pytest.raises(TrainingStateError, match="is damaged"):
        fit(resume=run, epochs=2, reporter=Messages())
    assert TrainingStateError.exit_code == 2


def test_a_good_state_is_verified(run):
    _, state = ckpt.read_training_state(run, resume=True)
    assert state["checksum"] == "verified" and state["step"] == 2


def test_an_old_state_without_a_checksum_resumes_with_a_warning(run, cli):
    _as_old_checkpoint(run)
    code, out, err = cli("train", "--resume", run, "--epochs", "2", *TINY_ARGS[-1:])
    text = " ".join((out + err).split())
    assert code == 0, text[-2000:]
    assert "has no checksum (written by an older cnnzoo)" in text
    assert ckpt.read_training_state(run)[1]["checksum"] == "verified"  # the next one has one
