"""Classifying image files with a model file: the preprocessing it was trained with, top-k.

The model file's record carries the preprocessing (its "preprocess" record, read by
cnnzoo.data.preprocess.Preprocess) and the class names ("classes"); where absent we fall back
to the model's native input size and ImageNet statistics. Images are decoded by
cnnzoo.data.images: any size and mode, unreadable files and decompression bombs refused.

An ONNX export (`cnnzoo export --to onnx`) predicts in place of its model file: it carries the
record in its metadata (key ONNX_RECORD_KEY: model, num_classes, in_chans, preprocess,
classes), so the same preprocessing and class names apply and the top-5 equals the model
file's; the ONNX Runtime session is wrapped as an nn.Module (OnnxModel) that `predict` runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..bounds import check
from ..contract import logits_of
from ..data.images import load_image
from ..data.preprocess import Preprocess
from ..ensemble import combine_logits
from ..errors import CnnzooError, InvalidArgumentError, ModelFileError
from ..modelfile import check_record, model_record
from ..registry import create_model, get_entry, list_models, load_model

ONNX_RECORD_KEY = "cnnzoo.record"  # where an ONNX export keeps its model file's record


def default_preprocess(model: nn.Module) -> Preprocess:
    """Preprocessing for a model without a recorded one: native size, ImageNet statistics."""
    size = (224, 224)
    name = getattr(model, "model_name", None)
    if name:
        try:
            size = get_entry(name).input_size[1:]
        except CnnzooError:
            pass
    return Preprocess.default(int(getattr(model, "in_chans", 3)), size)


def get_preprocess(record: dict[str, Any] | None, model: nn.Module) -> Preprocess:
    """The preprocessing a model file records, with the model's default where it is silent."""
    stored = (record or {}).get("preprocess") or {}
    pp = Preprocess.from_record(stored, default_preprocess(model))
    chans = int(getattr(model, "in_chans", pp.in_chans))
    if pp.in_chans != chans:
        raise ModelFileError(
            f"the model file's preprocessing makes {pp.in_chans}-channel inputs but the model "
            f"takes {chans}; the record is damaged or was edited")
    return pp


def class_names(record: dict[str, Any] | None, num_classes: int) -> list[str]:
    names = (record or {}).get("classes")
    if names and len(names) == num_classes:
        return [str(n) for n in names]
    return [str(i) for i in range(num_classes)]


@torch.no_grad()
def predict(model: nn.Module, images: Sequence[str | os.PathLike], record: dict | None = None,
            topk: int = 5, batch_size: int = 16) -> list[dict[str, Any]]:
    """Top-k classes with probabilities for each image file."""
    check("top_k", topk, "topk")
    pp = get_preprocess(record, model)
    tensors = [pp.prepare_image(load_image(p)) for p in images]  # fail before any work
    model.eval()
    device = next(model.parameters()).device
    results: list[dict[str, Any]] = []
    for i in range(0, len(tensors), batch_size):
        logits = model(torch.stack(tensors[i:i + batch_size]).to(device))
        probs = logits.float().softmax(1).cpu()
        names = class_names(record, probs.shape[1])
        p, idx = probs.topk(min(topk, probs.shape[1]), dim=1)
        for j in range(probs.shape[0]):
            results.append({
                "image": str(images[i + j]),
                "top": [{"class": names[int(k)], "index": int(k), "prob": float(q)}
                        for q, k in zip(p[j], idx[j])],
            })
    return results


def load_for_inference(model_file: str | os.PathLike, pretrained: bool | str = False,
                       allow_onnx: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """(model, record) from a model file (or an .onnx export: OnnxModel, allow_onnx); a
    registered model name gives its published weights with `pretrained` (record with their
    preprocessing and ImageNet class names), else a randomly initialised model (useful for
    visualisation and smoke tests), said so in the record."""
    path = Path(model_file)
    if pretrained:
        if path.exists():
            raise InvalidArgumentError(f"--pretrained applies to a model name, not a file "
                                       f"({model_file})")
        model = create_model(str(model_file), pretrained=pretrained)  # unknown: the registry's hint
        return model.eval(), model_record(model)
    if path.suffix == ".onnx":
        if not allow_onnx:
            raise InvalidArgumentError(f"{model_file} is an ONNX export, which only `predict` and "
                                       "`visualize occlusion` run; give the model file it was exported from")
        return load_onnx(path)
    if path.suffix == ".pte" and allow_onnx:  # an ExecuTorch program with its sidecar
        from .executorch import load_pte
        return load_pte(path)
    if path.exists() or path.suffix in (".safetensors", ".pth", ".pt"):
        model, record = load_model(path)
    elif str(model_file) in list_models():
        model = create_model(str(model_file))
        record = {**model_record(model), "untrained": True}
    else:
        raise ModelFileError(f"{model_file}: no such model file, and not a model name "
                             "(`cnnzoo list` shows the names)")
    return model.eval(), record


class OnnxModel(nn.Module):
    """An ONNX Runtime session (CPU) behind nn.Module's call: float batch in, logits out."""

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        super().__init__()
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self.model_name = record.get("model")
        self.in_chans = int(record.get("in_chans") or 3)
        self.num_classes = record.get("num_classes")
        # predict() asks the model's device through its parameters
        self._device_probe = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().float().cpu().numpy()
        if self.fixed_batch == 1 and arr.shape[0] != 1:  # exported with a static batch of 1
            outs = [self.session.run(None, {self.input_name: arr[i:i + 1]})[0]
                    for i in range(arr.shape[0])]
            return torch.from_numpy(np.concatenate(outs))
        return torch.from_numpy(self.session.run(None, {self.input_name: arr})[0])


def read_onnx_record(path: str | os.PathLike) -> dict[str, Any]:
    """The cnnzoo record stored in an ONNX file's metadata_props."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise ModelFileError(f"{path} is not a readable ONNX file ({type(err).__name__})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if ONNX_RECORD_KEY not in props:
        raise ModelFileError(
            f"{path} has no {ONNX_RECORD_KEY!r} metadata (it was not written by `cnnzoo export`, or "
            "by an older version): predict with the model file instead")
    try:
        record = json.loads(props[ONNX_RECORD_KEY])
    except (json.JSONDecodeError, RecursionError):
        record = None
    if not isinstance(record, dict):
        raise ModelFileError(f"{path}: its {ONNX_RECORD_KEY!r} metadata is not a JSON object")
    check_record(record, path)  # the model file's rules: sizes bounded, finite stds > 0
    return record


def load_onnx(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """(model, record) for an .onnx export, as cnnzoo.deploy.predict.load_for_inference gives them."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no such ONNX file: {path}")
    record = read_onnx_record(path)
    return OnnxModel(path, record).eval(), record


def predict_ensemble(members: Sequence[tuple[nn.Module, dict[str, Any]]], images: Sequence[str | os.PathLike],
                     combine: str = "mean", topk: int = 5) -> list[dict[str, Any]]:
    """Top-k of the combined prediction for each image, each member seeing the image through
    its own recorded preprocessing; with each member's top-1 beside it."""
    check("top_k", topk, "topk")
    decoded = [load_image(p) for p in images]  # fail before any work
    per_member = []
    for model, record in members:
        pp = get_preprocess(record, model)
        x = torch.stack([pp.prepare_image(img) for img in decoded])
        model.eval()
        with torch.no_grad():
            per_member.append(logits_of(model(x.to(next(model.parameters()).device))).float().cpu())
    logits = torch.stack(per_member)
    if len({t.shape[-1] for t in per_member}) != 1:
        raise InvalidArgumentError("ensemble members disagree on the number of classes")
    scores = combine_logits(logits, combine).softmax(-1) if combine != "vote" else \
        combine_logits(logits, combine) / len(members)
    names = class_names(members[0][1], logits.shape[-1])
    out = []
    for i, path in enumerate(images):
        p, idx = scores[i].topk(min(topk, scores.shape[-1]))
        out.append({"image": str(path),
                    "top": [{"class": names[int(k)], "index": int(k), "score": float(q)} for q, k in zip(p, idx)],
                    "members": [{"model": rec.get("model"), "class": names[int(m[i].argmax())],
                                 "prob": float(m[i].softmax(-1).max())} for m, (_, rec) in zip(per_member, members)]})
    return out
