"""Loading weights files people already have into zoo models.

Reads, without ever running code from the file:
  * torchvision `.pth` state dicts (`torch.load(weights_only=True)`: a pickle that tries to
    build anything but tensors and plain containers is refused),
  * timm state dicts (`.pth`, `.safetensors`),
  * our own model files (safetensors with a cnnzoo record).

Our torchvision-compatible models use torchvision's module names, so torchvision files load by
name. timm renames some layers (VGG's classifier is `pre_logits.fc1/fc2` + `head.fc`, with
the first two stored as 7x7 and 1x1 convolutions; MobileNet's are `conv_stem`, `blocks.i.j...`)
but keeps the order of the tensors, so when names do not match we map by position, checking
every shape (a conv kernel of the right size may become a linear weight: the flattening order
of a 7x7 conv over C channels equals torchvision's `flatten(C, 7, 7)`). Whatever is loaded,
`LoadReport` says which keys were missing, unexpected or of the wrong shape, and a strict load
(the default) fails on any of them.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelFileError
from .files import check_readable
from .modelfile import RECORD_KEY

# Wrappers other tools put around a state dict ({"state_dict": ...} from Lightning/our trainer,
# {"model": ...} from many training scripts, {"model_ema": ...} from timm's train.py).
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "state_dict_ema", "model_ema", "module")
# Prefixes added by DataParallel/DDP and torch.compile.
_PREFIXES = ("module.", "_orig_mod.")
_BN_COUNTER = "num_batches_tracked"


@dataclass
class LoadReport:
    """What happened when a weights file was loaded into a model."""

    path: str
    method: str = "by name"  # or "by position", "by name (timm VGG names)"...
    loaded: int = 0
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # key, file, model
    adapted: list[str] = field(default_factory=list)  # first conv summed/repeated for in_chans
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, limit: int = 8) -> str:
        def few(items: list) -> str:
            shown = ", ".join(str(i) for i in items[:limit])
            return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")

        lines = [f"{self.path}: {self.loaded} tensors loaded {self.method}"]
        if self.missing:
            lines.append(f"  missing from the file ({len(self.missing)}): {few(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected in the file ({len(self.unexpected)}): {few(self.unexpected)}")
        if self.mismatched:
            mm = [f"{k} file {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched]
            lines.append(f"  shape mismatches ({len(mm)}): {few(mm)}")
        for a in self.adapted:
            lines.append(f"  adapted: {a}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "method": self.method, "loaded": self.loaded, "ok": self.ok,
            "missing": self.missing, "unexpected": self.unexpected,
            "mismatched": [[k, list(a), list(b)] for k, a, b in self.mismatched],
            "adapted": self.adapted, "notes": self.notes,
        }


# -- reading files -------------------------------------------------------------------------

def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a weights file and its cnnzoo record ({} when it has none).

    Never unpickles code: `.safetensors` files hold only tensors, and pickles are read with
    `weights_only=True`, which refuses anything but tensors and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no such weights file: {path}")
    if (why := check_readable(path)) is not None:  # safetensors would say 'No such file'
        raise ModelFileError(f"cannot read {path}: {why}; check its permissions")
    record: dict[str, Any] = {}
    if _is_safetensors(path):
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                # safetensors stores keys sorted by name; restore module order for positional maps
                state = {k: f.get_tensor(k) for k in sorted(f.keys(), key=_module_order_key(f.keys()))}
        except Exception as err:
            raise ModelFileError(f"{path} is not a readable safetensors file ({err})") from None
        if RECORD_KEY in meta:
            import json

            try:
                record = json.loads(meta[RECORD_KEY])
            except (json.JSONDecodeError, RecursionError):
                record = {}
            if not isinstance(record, dict):  # a damaged record: these are plain weights then
                record = {}
        return state, record
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        glob = re.search(r"(unsupported GLOBAL [^\s]+|Unsupported global: [^\s]+)", text, re.I)
        if glob:
            raise ModelFileError(
                f"refusing to load {path}: it is a pickle that would run code or build objects "
                f"other than tensors ({glob.group(1)}). Only plain state dicts are accepted; "
                "re-save it with torch.save(model.state_dict(), ...) or as .safetensors") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        raise ModelFileError(
            f"{path} is not a readable PyTorch weights file (the safe unpickler stopped: "
            f"{detail.group(1).strip()[:120] if detail else 'unsupported content'}); nothing "
            "from it was run") from None
    except Exception as err:
        raise ModelFileError(
            f"{path} is not a readable PyTorch weights file ({type(err).__name__}: "
            f"{str(err)[:200]})") from None
    return _unwrap(obj, path), record


def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    # A safetensors file starts with an 8-byte header length followed by '{'.
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


# Module order of the names timm and torchvision use, for files that lost their order
# (safetensors sorts keys). Names not listed keep their alphabetical place.
_TOP_RANK = {"conv_stem": 0, "stem": 0, "conv1": 0, "bn1": 1, "features": 2, "blocks": 2,
             "conv_head": 3, "bn2": 4, "pre_logits": 5, "head": 6, "classifier": 6, "fc": 6}
# timm's EfficientNet-style blocks: inverted residual (has conv_pwl) vs depthwise-separable.
_IR_RANK = {"conv_pw": 0, "bn1": 1, "conv_dw": 2, "bn2": 3, "se": 4, "conv_pwl": 5, "bn3": 6}
_DS_RANK = {"conv": 0, "conv_dw": 0, "bn1": 1, "se": 2, "conv_pw": 3, "bn2": 4}
_SUB_RANK = {"conv_reduce": 0, "conv_expand": 1, "fc1": 0, "fc2": 1}
_LEAF_RANK = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3, _BN_COUNTER: 4}


def _module_order_key(keys: Iterable[str]) -> Callable[[str], list[tuple[int, int, str]]]:
    keys = list(keys)
    ir_blocks = {k.split(".conv_pwl.")[0] for k in keys if ".conv_pwl." in k}

    def key(name: str) -> list[tuple[int, int, str]]:
        parts = name.split(".")
        out = []
        for i, part in enumerate(parts):
            if i == len(parts) - 1:
                out.append((0, _LEAF_RANK.get(part, 9), part))
            elif part.isdigit():
                out.append((0, int(part), ""))
            elif i == 0:
                out.append((1, _TOP_RANK.get(part, 50), part))
            else:
                block = ".".join(parts[:i])
                table = _IR_RANK if block in ir_blocks else (
                    _DS_RANK if parts[0] == "blocks" and i == 3 else _SUB_RANK)
                out.append((1, table.get(part, 50), part))
        return out

    return key


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # e.g. {"model": {"state_dict": ...}}
        if isinstance(obj, dict) and not _is_state(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not _is_state(obj):
        kind = type(obj).__name__
        keys = list(obj)[:8] if isinstance(obj, dict) else []
        raise ModelFileError(
            f"{path} holds a {kind}{' with keys ' + str(keys) if keys else ''}, not a state dict "
            f"of tensors (looked inside {', '.join(_WRAPPER_KEYS)})")
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _is_state(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) for k in d) and \
        sum(isinstance(v, torch.Tensor) for v in d.values()) >= max(1, len(d) // 2)


# -- mapping keys --------------------------------------------------------------------------

def _compatible(src: torch.Size, dst: torch.Size) -> bool:
    """Same shape, or a conv kernel stored where a linear layer of the same size expects it
    (timm's VGG pre-logits, MobileNetV3's 1x1 conv head)."""
    if src == dst:
        return True
    return len(src) == 4 and len(dst) == 2 and src[0] == dst[0] and src[1:].numel() == dst[1]


def _fit(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return t if t.shape == shape else t.reshape(shape)


def _params(keys: list[str]) -> list[str]:
    return [k for k in keys if not k.endswith(_BN_COUNTER)]


def map_state_dict(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                   classifier: str | None = None) -> tuple[dict[str, torch.Tensor], str, list[str]]:
    """Rename `state`'s keys to `target`'s. Returns (mapped state, method, unmatched file keys).

    By name when the file's names are ours; else by position when both hold the same number of
    tensors (BN counters aside) and every pair has a compatible shape; else by name anyway, so
    the report lists what differs.
    """
    if set(_params(list(state))) == set(_params(list(target))) or not state:
        return dict(state), "by name", []
    src, dst = _params(list(state)), _params(list(target))
    # the classifier may differ in size (another class count): reported later, with a hint
    def pair_ok(s: str, d: str) -> bool:
        return _compatible(state[s].shape, target[d].shape) or bool(
            classifier and d.startswith(classifier + ".") and state[s].dim() == target[d].dim())

    if len(src) == len(dst) and all(pair_ok(s, d) for s, d in zip(src, dst)):
        mapped = {d: state[s] for s, d in zip(src, dst)}
        # BN counters follow their layer: "x.bn1.running_var" -> "y.1.running_var" etc.
        rename = {s.rsplit(".", 1)[0]: d.rsplit(".", 1)[0] for s, d in zip(src, dst)}
        for k, v in state.items():
            if k.endswith(_BN_COUNTER):
                new = f"{rename.get(k.rsplit('.', 1)[0], k.rsplit('.', 1)[0])}.{_BN_COUNTER}"
                if new in target:
                    mapped[new] = v
        return mapped, "by position (the file's names differ from ours, e.g. timm's)", []
    return dict(state), "by name", []


# -- loading -------------------------------------------------------------------------------

def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True,
                 adapt_in_chans: bool = True) -> LoadReport:
    """Load a torchvision/timm/cnnzoo weights file into `model`; returns a `LoadReport`.

    strict=True (default) raises ModelFileError, with the report, unless every tensor of the
    model is in the file with the right shape and the file has nothing else. strict=False loads
    what fits and leaves the rest as initialised (the report says what).

    adapt_in_chans: a first convolution trained on 3 channels is summed into 1 (or repeated
    and rescaled for more), as is usual for grayscale transfer; reported as `adapted`.
    """
    state, record = read_state_dict(path)
    target = model.state_dict()
    mapped, method, _ = map_state_dict(state, target, getattr(model, "classifier_name", None))
    report = LoadReport(path=str(path), method=method)
    want = getattr(model, "model_name", None)
    if record.get("model") and want and record["model"] != want:
        report.notes.append(f"the file was saved from {record['model']}, loading into {want}")

    to_load: dict[str, torch.Tensor] = {}
    for k, v in mapped.items():
        if k not in target:
            report.unexpected.append(k)
            continue
        shape = target[k].shape
        if _compatible(v.shape, shape):
            to_load[k] = _fit(v, shape).to(target[k].dtype)
        elif adapt_in_chans and _is_in_chans_change(v, target[k]):
            to_load[k] = _adapt_in_chans(v, shape[1]).to(target[k].dtype)
            report.adapted.append(f"{k}: {tuple(v.shape)} -> {tuple(shape)} (in_chans)")
        else:
            report.mismatched.append((k, tuple(v.shape), tuple(shape)))
    # torchvision's older files carry no BN counters; they start at 0 either way.
    report.missing = [k for k in target if k not in mapped and not k.endswith(_BN_COUNTER)]
    report.loaded = len(to_load)
    if strict and not report.ok:
        hint = _classifier_hint(model, report)
        raise ModelFileError(
            "weights do not fit the model:\n" + report.summary() + hint
            + "\n  (pass strict=False / --allow-partial to load only what fits)")
    model.load_state_dict(to_load, strict=False)
    return report


def _is_in_chans_change(src: torch.Tensor, dst: torch.Tensor) -> bool:
    return src.dim() == 4 and dst.dim() == 4 and src.shape[0] == dst.shape[0] and \
        src.shape[2:] == dst.shape[2:] and src.shape[1] != dst.shape[1] and src.shape[1] == 3


def _adapt_in_chans(w: torch.Tensor, n: int) -> torch.Tensor:
    if n == 1:  # a gray image is R=G=B, so the summed kernel gives the same response
        return w.sum(1, keepdim=True)
    reps = -(-n // w.shape[1])
    return w.repeat(1, reps, 1, 1)[:, :n] * (w.shape[1] / n)


def _classifier_hint(model: nn.Module, report: LoadReport) -> str:
    name = getattr(model, "classifier_name", None)
    if name and report.mismatched and all(k.startswith(name + ".") for k, _, _ in report.mismatched):
        n_file = report.mismatched[0][1][0]
        return (f"\n  only the classifier ({name}) differs: the file has {n_file} classes. "
                f"Build the model with num_classes={n_file} and call "
                "model.reset_classifier(n) afterwards to transfer to n classes")
    return ""


def infer_num_classes(model: nn.Module, path: str | os.PathLike) -> int | None:
    """Number of classes of the file's classifier, mapped onto `model`'s names (or None)."""
    state, _ = read_state_dict(path)
    name = getattr(model, "classifier_name", None)
    mapped, _, _ = map_state_dict(state, model.state_dict(), name)
    w = mapped.get(f"{name}.weight") if name else None
    return int(w.shape[0]) if w is not None else None


# Published weights by name (table, verified resumable downloads, cache): cnnzoo.hub.
