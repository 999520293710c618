"""The full training state, for `--resume`: one safetensors file, written atomically.

Tensors (model weights, optimizer buffers, RNG states) go into the safetensors body under
prefixes (model., optim., rng.); everything else (epoch, step, recipe, scheduler state,
optimizer hyper-parameters, metrics history) is JSON in the file's metadata. One file means
one atomic rename: a run killed at any moment leaves the previous checkpoint or the new one.
A SHA-256 of the record and the tensors is stored beside them and verified on resume, with the
record's schema (train.state_check): a damaged checkpoint is refused, never trusted.
Nothing is unpickled. Checkpoints made by other trainers with torch.save are read only with
`torch.load(weights_only=True)`, which refuses any pickled object that is not tensors,
numbers, strings and containers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import torch

from ..errors import TrainingStateError
from ..files import atomic_path, check_readable
from ..runfolder import STATE_FILE
from .state_check import check_record, check_restored, damaged, digest

TORCH_SUFFIXES = (".pt", ".pth", ".tar")  # torch.save files, read by `load_torch_file` only
META_KEY = "cnnzoo_train"
DIGEST_KEY = "cnnzoo_train_sha256"  # state_check.digest of the record and tensors


def _flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Tensors out into `tensors` (replaced by {"__tensor__": key}), the rest JSON-able."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        # keys may be ints (optimizer state): keep their type
        return {"__dict__": [[k, _flatten(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        out = [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": out} if isinstance(obj, tuple) else out
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TrainingStateError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """This process's random state: the CPU generator, Python's, and its own GPU's (not every
    visible GPU's: a run resumed on fewer GPUs must still find its own)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device is not None and device.type == "cuda" and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    cuda = state.get("cuda")
    if cuda is not None and device is not None and device.type == "cuda":
        if isinstance(cuda, (list, tuple)):  # checkpoints before per-rank states: one per GPU
            cuda = cuda[device.index or 0] if (device.index or 0) < len(cuda) else None
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)


def rank_rng_states(info: Any, device: torch.device) -> list[dict[str, Any]]:
    """Every rank's random state, gathered (a collective: all ranks call it); one process: [its own]."""
    mine = rng_state(device)
    if not info.enabled:
        return [mine]
    import torch.distributed as dist

    states: list[Any] = [None] * info.world
    dist.all_gather_object(states, mine)
    return states


def restore_rank_rng(saved: dict[str, Any], info: Any, device: torch.device, seed: int, step: int) -> None:
    """Restore this rank's saved random state. A rank the checkpoint has no state for (a run
    resumed on more processes) gets a fresh seed from (seed, rank, step) instead."""
    ranks = saved["ranks"] if "ranks" in saved else [saved]  # older checkpoints: rank 0's only
    if info.rank < len(ranks):
        set_rng_state(ranks[info.rank], device)
    else:
        random.seed(seed + info.rank + step)
        torch.manual_seed(seed + info.rank + step)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    model = getattr(model, "module", model)  # DDP
    return getattr(model, "_orig_mod", model)  # torch.compile


def save_state(out_dir: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: Any, epoch: int, step: int, extra: dict[str, Any],
               rng: list[dict[str, Any]] | None = None) -> Path:
    """Write the full training state to `out_dir`/STATE_FILE (atomically); `rng`
    holds every rank's random state (default: this process's)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for k, v in unwrap(model).state_dict().items():
        tensors[f"model.{k}"] = v.detach().to("cpu").contiguous().clone()
    meta = {
        "epoch": epoch, "step": step,
        "optimizer": _flatten(optimizer.state_dict(), "optim", tensors),
        "scheduler": _flatten(scheduler.state_dict(), "sched", tensors) if scheduler is not None else None,
        "rng": _flatten({"ranks": rng if rng is not None else [rng_state()]}, "rng", tensors),
        **{k: _flatten(v, f"extra.{k}", tensors) for k, v in extra.items()},
    }
    path = Path(out_dir) / STATE_FILE
    text = json.dumps(meta)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: text, DIGEST_KEY: digest(text, tensors)})
    return path


def state_file(path: str | Path) -> Path:
    """A run folder's training state, or the file given."""
    path = Path(path)
    return path / STATE_FILE if path.is_dir() else path


def read_training_state(path: str | Path, resume: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(model state_dict, everything else with tensors restored) of a training checkpoint:
    a run folder or its STATE_FILE. Model files (cnnzoo.modelfile) hold weights only.

    The record is validated (schema, types, bounds, the tensors it names; with `resume`, the
    run's identity, recipe and history too) and the checksum of record and tensors verified; any
    damage is a TrainingStateError that says what to do.
    `state["checksum"]` is "verified", or None for a checkpoint written before checksums."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = state_file(path)
    if not path.is_file():
        raise TrainingStateError(f"no training checkpoint at {path} (a run writes {STATE_FILE} in its --out folder)")
    if (why := check_readable(path)) is not None:  # safetensors would say 'No such file'
        raise TrainingStateError(f"cannot read {path}: {why}; check its permissions")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except Exception as err:
        raise damaged(path, f"not a readable safetensors file: {str(err)[:200]}") from None
    if META_KEY not in meta:
        raise TrainingStateError(f"{path} is not a cnnzoo training checkpoint (no {META_KEY} record)")
    try:
        record = json.loads(meta[META_KEY])
    except (ValueError, RecursionError) as err:
        raise damaged(path, f"its record is not valid JSON: {str(err)[:120]}") from None
    check_record(record, tensors, path, resume)
    if DIGEST_KEY in meta and meta[DIGEST_KEY] != digest(meta[META_KEY], tensors):
        raise damaged(path, "its record or tensors changed after it was saved: the checksum does not match")
    try:
        state = _unflatten(record, tensors)
    except (TypeError, ValueError, KeyError) as err:  # a "__dict__" that is not a list of pairs...
        raise damaged(path, f"its record is malformed ({type(err).__name__}: {str(err)[:120]})") from None
    check_restored(state, path)
    state["checksum"] = "verified" if DIGEST_KEY in meta else None
    model_sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    return model_sd, state


def match_param_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give each optimizer state tensor its parameter's memory layout. Checkpoints store them
    contiguous (NCHW), while a channels_last model's parameters are NHWC; fused optimizer
    kernels assume the two agree (on the CPU a mismatch gave wrong updates after a resume,
    on CUDA the kernels refuse it)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p)
            if not st:
                continue
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                    st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def load_torch_file(path: str | Path) -> Any:
    """Read a torch.save file (e.g. torchvision's reference train.py checkpoint) safely."""
    import pickle

    path = Path(path)
    if not path.is_file():
        raise TrainingStateError(f"no such checkpoint file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()
        detail = next((ln for ln in first if "Unsupported global" in ln or "GLOBAL" in ln), first[0] if first else "")
        raise TrainingStateError(
            f"refusing to load {path}: it contains pickled objects other than tensors and plain "
            f"numbers/strings/containers, which could run code when unpickled ({detail.strip()})"
        ) from None
    except Exception as err:
        raise TrainingStateError(f"{path} is not a readable torch checkpoint ({type(err).__name__}: {err})") from None
