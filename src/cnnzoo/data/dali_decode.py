"""The optional NVIDIA DALI decoder for the fast folder loader (`pip install 'cnnzoo[dali]'`).

DALI decodes only the crop box of each JPEG (fn.decoders.image_slice, nvJPEG/nvImageCodec on the
GPU, the hardware decoder where the card has one) and resizes it on the GPU. The boxes are ours
(data/transforms.crop_box, from each image's seed), so batches are the same as the torch path's up to
the decoders' rounding, and a resumed run repeats them. Files that are not colour JPEGs arrive
already decoded by PIL and are cropped by torch; a batch DALI refuses is decoded by the torch path
(data/fast_loader.py), file by file.

Nothing here is imported unless DALI was chosen (loader=dali, or loader=auto with DALI installed
on a CUDA device): without DALI the package neither imports nor mentions it.
"""

from __future__ import annotations

import importlib.util
from typing import Sequence

import torch

from ..errors import InvalidArgumentError
from .fastjpeg import Box, Encoded

DALI_HINT = "pip install 'cnnzoo[dali]' (NVIDIA DALI for CUDA 13: nvidia-dali-cuda130)"


def dali_available() -> bool:
    """Whether DALI is installed, without importing it."""
    try:
        return importlib.util.find_spec("nvidia.dali") is not None
    except (ImportError, ValueError):  # no `nvidia` namespace package at all
        return False


def require_dali() -> None:
    if not dali_available():
        raise InvalidArgumentError(f"loader=dali needs NVIDIA DALI, which is not installed: {DALI_HINT}; "
                                   "or use --set loader=auto (torch's nvJPEG decoder on CUDA)")


class DaliDecoder:
    """One DALI pipeline (built once per loader): encoded JPEGs + boxes -> uint8 crops (N, 3, H, W)."""

    def __init__(self, size: tuple[int, int], device: torch.device, max_batch: int = 1024,
                 threads: int = 4) -> None:
        require_dali()
        from nvidia.dali import fn, pipeline_def, types

        self.size, self.device = size, device

        @pipeline_def(batch_size=max_batch, num_threads=threads, device_id=device.index or 0,
                      exec_async=False, exec_pipelined=False, prefetch_queue_depth=1)
        def pipe():  # type: ignore[no-untyped-def]
            data = fn.external_source(name="data", dtype=types.UINT8, ndim=1)
            anchor = fn.external_source(name="anchor", dtype=types.FLOAT, ndim=1)
            shape = fn.external_source(name="shape", dtype=types.FLOAT, ndim=1)
            img = fn.decoders.image_slice(data, anchor, shape, device="mixed", output_type=types.RGB,
                                          normalized_anchor=False, normalized_shape=False, axis_names="WH")
            return fn.resize(img, resize_x=size[1], resize_y=size[0], antialias=True,
                             interp_type=types.INTERP_LINEAR)

        self.pipe = pipe()
        self.pipe.build()

    def decode(self, encs: Sequence[Encoded], boxes: Sequence[Box]) -> torch.Tensor:
        """Colour JPEGs (fastjpeg.Encoded with data) and their crop boxes -> uint8 crops
        (N, 3, H, W) on the device; RuntimeError if DALI refuses a file of the batch."""
        if not encs:
            return torch.empty(0, 3, *self.size, dtype=torch.uint8, device=self.device)
        return self._run(encs, boxes)

    def _run(self, encs: Sequence[Encoded], boxes: Sequence[Box]) -> torch.Tensor:
        import numpy as np
        from nvidia.dali.plugin.pytorch import feed_ndarray

        self.pipe.feed_input("data", [e.data.numpy() for e in encs])
        self.pipe.feed_input("anchor", [np.array([b[1], b[0]], np.float32) for b in boxes])  # x, y
        self.pipe.feed_input("shape", [np.array([b[3], b[2]], np.float32) for b in boxes])  # w, h
        (res,) = self.pipe.run()
        dense = res.as_tensor()  # (N, H, W, 3) on the GPU
        hwc = torch.empty(dense.shape(), dtype=torch.uint8, device=self.device)
        feed_ndarray(dense, hwc, cuda_stream=torch.cuda.current_stream(self.device))
        return hwc.permute(0, 3, 1, 2)
