"""Predicting with an ONNX export (`cnnzoo export --format onnx`) instead of the model file.

The export carries the model file's record in the ONNX metadata (key "cnnzoo.record": model,
num_classes, in_chans, preprocess, classes), so the same preprocessing and class names apply
and the top-5 equals the safetensors model's. The session is wrapped as an nn.Module so that
cnnzoo.deploy.predict.predict runs it unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ModelFileError

RECORD_PROP = "cnnzoo.record"


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
    if RECORD_PROP not in props:
        raise ModelFileError(
            f"{path} has no {RECORD_PROP!r} metadata (it was not written by `cnnzoo export`, or "
            "by an older version): predict with the model file instead")
    try:
        record = json.loads(props[RECORD_PROP])
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        raise ModelFileError(f"{path}: its {RECORD_PROP!r} metadata is not a JSON object")
    return record


def load_onnx(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """(model, record) for an .onnx export, as cnnzoo.deploy.predict.load_for_inference gives them."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no such ONNX file: {path}")
    record = read_onnx_record(path)
    return OnnxModel(path, record).eval(), record
