"""Fitting data to a model's native input, and the per-batch pipeline on the device.

A model built for C x H x W receives data of its own channel count (the model is built with
in_chans = the data's channels: 1 for MNIST) and of the model's spatial size: images a little
smaller than the native size are zero-padded (LeNet-5 was designed for MNIST digits centred in
a 32x32 field: 28x28 -> 32x32 pads 2 pixels per side), images much smaller or larger are
resized. The resulting "preprocess" record is saved with the trained model, so that predict,
export and features reproduce it: resize the shorter side to `resize`, centre-crop to
input_size (which pads when the crop is larger than the image), normalise with mean/std.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .transforms import augment_batch, ten_crop

# ImageNet statistics: the normalisation of every ImageNet-trained model (and our default).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Augmentations that crop a native-size window out of a larger image (the "256" of "224 of 256").
_BIG_BASE = ("alexnet", "vgg", "imagenet")


@dataclass
class Preprocess:
    in_chans: int
    size: tuple[int, int]          # model input H, W
    data_size: tuple[int, int] | None  # raw H, W of in-memory data (None: image folder)
    pad: int                       # zero padding per side (in-memory data)
    resize: int | None             # shorter side before the centre crop (the record's meaning)
    mean: list[float]
    std: list[float]
    note: str = ""

    def record(self) -> dict:
        return {"input_size": [self.in_chans, *self.size], "resize": self.resize,
                "mean": list(self.mean), "std": list(self.std), "grayscale": self.in_chans == 1,
                "pad": self.pad}

    # -- in-memory data: uint8 batch on the device -> normalised float batch --------------------
    def base(self, x: torch.Tensor, augment: str, train: bool) -> torch.Tensor:
        x = x.float().div_(255)
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)
        target = self.size
        if train and augment in _BIG_BASE:
            target = (round(self.size[0] * 256 / 224), round(self.size[1] * 256 / 224))
        if tuple(x.shape[-2:]) != tuple(target):
            x = F.interpolate(x, size=target, mode="bilinear", antialias=True, align_corners=False)
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.device, x.dtype)
        cache = self.__dict__.setdefault("_consts", {})
        if key not in cache:  # made once per device: no host-to-device copy per step
            cache[key] = (torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1),
                          torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1))
        mean, std = cache[key]
        return (x - mean) / std

    def train_batch(self, x: torch.Tensor, augment: str, g: torch.Generator, pca=None) -> torch.Tensor:
        return self.normalize(augment_batch(self.base(x, augment, True), augment, self.size, g, pca))

    def eval_batch(self, x: torch.Tensor, ten: bool = False) -> torch.Tensor:
        """Centre view (N, C, H, W), or with ten=True the 10 crops (10, N, C, H, W) of an image
        padded by 1/8 of its side (the small-image analogue of 224 crops of 256)."""
        x = self.base(x, "none", False)
        if ten:
            p = max(2, self.size[0] // 8)
            x = ten_crop(F.pad(x, (p,) * 4), self.size)
        return self.normalize(x)


def fit_input(model_name: str, native: tuple[int, int, int], data_shape: tuple[int, int, int] | None,
              mean, std) -> Preprocess:
    """How data of `data_shape` (C, H, W; None for image folders) enters a model built for
    `native`; `note` says what was done, for the user."""
    _, H, W = native
    if data_shape is None:  # image folders: resize the shorter side, then crop (224 of 256)
        resize = round(H * 256 / 224)
        return Preprocess(3, (H, W), None, 0, resize, list(mean), list(std),
                          f"images: shorter side resized to {resize}, {H}x{W} crops")
    c, h, w = data_shape
    if (h, w) == (H, W):
        return Preprocess(c, (H, W), (h, w), 0, None, list(mean), list(std), "")
    if h <= H and w <= W and H - h == W - w and (H - h) % 2 == 0 and (H - h) <= H // 4:
        pad = (H - h) // 2
        return Preprocess(c, (H, W), (h, w), pad, h, list(mean), list(std),
                          f"{h}x{w} images zero-padded by {pad} pixels per side to {model_name}'s "
                          f"native {H}x{W}")
    return Preprocess(c, (H, W), (h, w), 0, min(H, W), list(mean), list(std),
                      f"{h}x{w} images resized to {model_name}'s native {H}x{W}")
