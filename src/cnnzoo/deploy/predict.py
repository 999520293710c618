"""Classifying image files with a model file: the preprocessing it was trained with, top-k.

The model file's record carries the preprocessing (its "preprocess" record, read by
cnnzoo.data.preprocess.Preprocess) and the class names ("classes"); where absent we fall back
to the model's native input size and ImageNet statistics. Images are decoded by
cnnzoo.data.images: any size and mode, unreadable files and decompression bombs refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..data.images import load_image
from ..data.preprocess import Preprocess
from ..modelfile import model_record
from ..errors import CnnzooError, InvalidArgumentError, ModelFileError
from ..registry import create_model, get_entry, list_models, load_model


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
    if topk < 1:
        raise InvalidArgumentError(f"topk must be >= 1, got {topk}")
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
    """(model, record) from a model file (or an .onnx export, see cnnzoo.deploy.predict_onnx); a
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
        from .predict_onnx import load_onnx

        return load_onnx(path)
    if path.exists() or path.suffix in (".safetensors", ".pth", ".pt"):
        model, record = load_model(path)
    elif str(model_file) in list_models():
        model = create_model(str(model_file))
        record = {**model_record(model), "untrained": True}
    else:
        raise ModelFileError(f"{model_file}: no such model file, and not a model name "
                             "(`cnnzoo list` shows the names)")
    return model.eval(), record
