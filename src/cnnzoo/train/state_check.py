"""A training state checked before anything is resumed from it, as a model record is: the
schema, the types and bounds of its JSON record, the tensors it names, and the SHA-256 checksum
of record and tensors that `state.save_state` stores beside them. Any damage is one
TrainingStateError (exit 2) that names the file and the way on; nothing is written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import CnnzooError, TrainingStateError
from ..runfolder import MODEL_FILE

MAX_STEP = 10**15  # far beyond any run; bounds what the record may claim
MAX_DEPTH = 64  # nesting of the flattened record (optimizer state is 4-5 deep)
# the parts of a state besides epoch and step, and what each is once unflattened: save_state
# writes the first three; a run (train.loop) adds the others, which a resume needs
PARTS: dict[str, Any] = {"optimizer": dict, "rng": dict, "scheduler": (dict, type(None)),
                         "run": dict, "history": list, "split": dict, "best": dict}
SAVED, RUN_PARTS = ("optimizer", "rng", "scheduler"), ("run", "history", "split", "best")


def damaged(path: str | Path, what: str) -> TrainingStateError:
    """The error for a damaged training state: what is wrong and what to do instead."""
    path = Path(path)
    model = path.parent / MODEL_FILE
    msg = f"the training state {path} is damaged ({what}); it cannot be resumed, and nothing was changed. "
    if model.is_file():
        msg += (f"The run's model file {model} (its kept weights) is a separate file: evaluate it or "
                f"fine-tune from it (`cnnzoo finetune {model} --data ...`); or start the run again ")
    else:
        msg += "Start the run again "
    return TrainingStateError(msg + f"(`cnnzoo train MODEL ... --out {path.parent} --overwrite`)")


def digest(record_json: str, tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the record's JSON text and every tensor (name, dtype, shape, bytes) in name order."""
    h = hashlib.sha256(record_json.encode("utf-8"))
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu").contiguous()
        h.update(f"\0{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def check_record(meta: Any, tensors: Mapping[str, torch.Tensor], path: Path, resume: bool) -> None:
    """The flattened JSON record of a training state: an object with its step and every part
    (those of a run too, for a `resume`), and every tensor it names present in the file
    (TrainingStateError via `damaged`)."""
    if not isinstance(meta, dict):
        raise damaged(path, f"its record is a JSON {type(meta).__name__}, not an object")
    for key in ("epoch", "step"):
        if not _int_in(meta.get(key), 0, MAX_STEP):
            raise damaged(path, f"its {key} must be a whole number >= 0, got {_show(meta.get(key))}")
    for key in SAVED + (RUN_PARTS if resume else ()):
        if key not in meta:
            raise damaged(path, f"its record has no {key!r}")
    _check_refs(meta, tensors, path, 0)


def _check_refs(obj: Any, tensors: Mapping[str, torch.Tensor], path: Path, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise damaged(path, f"its record nests deeper than {MAX_DEPTH} levels")
    if isinstance(obj, dict):
        if "__tensor__" in obj and obj["__tensor__"] not in tensors:
            raise damaged(path, f"its record names tensor {_show(obj['__tensor__'])}, which the file does not hold")
        for v in obj.values():
            _check_refs(v, tensors, path, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            _check_refs(v, tensors, path, depth + 1)


def _check_run(run: dict, path: Path) -> None:
    """The run's identity: a registered model, its data, seed and a valid recipe."""
    from ..registry import get_entry
    from .recipes import recipe_from_dict

    if not isinstance(run.get("model"), str) or not isinstance(run.get("data"), str):
        raise damaged(path, "its run names no model or data")
    try:
        get_entry(run["model"])
    except CnnzooError:
        raise damaged(path, f"its run names model {_show(run['model'])}, which cnnzoo does not have") from None
    if not _int_in(run.get("seed"), -(2**63), 2**64 - 1) or not isinstance(run.get("deterministic"), bool):
        raise damaged(path, "its run's seed must be an integer and deterministic true or false")
    if not isinstance(run.get("recipe"), dict):
        raise damaged(path, "its run has no recipe")
    try:
        recipe_from_dict(run["recipe"])
    except (CnnzooError, TypeError, ValueError) as err:
        raise damaged(path, f"its recipe is invalid: {err}") from None
    model_file = path.parent / MODEL_FILE
    if model_file.is_file():  # the run's own model file names the same architecture
        from ..modelfile import read_record

        try:
            other = read_record(model_file).get("model")
        except CnnzooError:
            return
        if other != run["model"]:
            raise damaged(path, f"its run names model {run['model']}, but the run's model file "
                                f"{model_file} is a {other}")


def check_restored(state: dict, path: Path) -> None:
    """The unflattened state: each part of its kind, the run's identity, random states of the
    right kind, a plausible optimizer state and validation split."""
    for key, kinds in PARTS.items():
        if key in state and not isinstance(state[key], kinds):
            raise damaged(path, f"its {key!r} is a {type(state[key]).__name__}")
    if "run" in state:
        _check_run(state["run"], path)
    model_name = state.get("run", {}).get("model", "model")
    for row in state.get("history", []):
        if not isinstance(row, dict) or not all(isinstance(v, (int, float, type(None))) and not isinstance(v, bool)
                                                for v in row.values()):
            raise damaged(path, "its metrics history holds something other than rows of numbers")
    ranks = state["rng"].get("ranks", [state["rng"]])
    for rng in ranks if isinstance(ranks, list) else [None]:
        if not isinstance(rng, dict) or not _byte_tensor(rng.get("torch")) or not _python_rng(rng.get("python")):
            raise damaged(path, "its random-number states are not the ones torch and Python save")
    opt = state["optimizer"]
    if not isinstance(opt.get("state"), dict) or not isinstance(opt.get("param_groups"), list) or \
            not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in opt["param_groups"]):
        raise damaged(path, f"its optimizer state is not one of a {model_name}'s optimizer")
    idx = state.get("split", {}).get("val_index")
    if idx is not None and (not isinstance(idx, torch.Tensor) or idx.dim() != 1 or idx.is_floating_point()
                            or (idx.numel() and int(idx.min()) < 0)):
        raise damaged(path, "its validation split is not a list of image indices")


def _byte_tensor(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1


def _python_rng(py: Any) -> bool:
    return isinstance(py, (list, tuple)) and len(py) == 3 and isinstance(py[1], (list, tuple)) \
        and len(py[1]) == 625 and all(_int_in(x, 0, 2**32 - 1) for x in py[1])


def _int_in(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
