"""Preprocessing, in one place: how images enter a model, as a record and as code.

A model built for C x H x W receives data of its own channel count (the model is built with
in_chans = the data's channels: 1 for MNIST) and of the model's spatial size: images a little
smaller than the native size are zero-padded (LeNet-5 was designed for MNIST digits centred in
a 32x32 field: 28x28 -> 32x32 pads 2 pixels per side), images much smaller or larger are
resized. The resulting `Preprocess` is saved with the trained model as its "preprocess" record
(`to_record` / `from_record`), so that predict, export, features and visualize reproduce it:
resize the shorter side to `resize`, centre-crop to input_size (which pads when the crop is
larger than the image), normalise with mean/std. A model file without a record gets
`Preprocess.default`: native size, ImageNet statistics, resize 256/224 of the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from .transforms import PCA, augment_batch, augmentation, ten_crop

if TYPE_CHECKING:
    from PIL.Image import Image

# ImageNet statistics: the normalisation of every ImageNet-trained model (and our default).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Preprocess:
    """How images enter one model. The trainer applies it to uint8 batches on the device
    (`train_batch`, `eval_batch`); inference to decoded images and whole sets (`prepare`)."""

    in_chans: int
    size: tuple[int, int]          # model input H, W
    data_size: tuple[int, int] | None  # raw H, W of in-memory data (None: image folder, record)
    pad: int | None                # zero padding per side (in-memory data); None: not recorded
    resize: int | None             # shorter side before the centre crop (the record's meaning)
    mean: list[float]
    std: list[float]
    note: str = ""
    grayscale: bool | None = None  # decode images as gray; None: when the model takes 1 channel

    # -- the record in model files -----------------------------------------------------------
    @classmethod
    def default(cls, in_chans: int, size: tuple[int, int] = (224, 224)) -> Preprocess:
        """For a model without a recorded preprocessing: its native H x W (`size`, which the
        caller looks up: the registry is above this module) and ImageNet statistics."""
        h, w = size
        mean, std = (list(IMAGENET_MEAN), list(IMAGENET_STD)) if in_chans == 3 else (
            [sum(IMAGENET_MEAN) / 3] * in_chans, [sum(IMAGENET_STD) / 3] * in_chans)
        # ImageNet convention: shorter side to 256 then a 224 centre crop (scaled for other sizes)
        resize = round(h * 256 / 224) if h >= 64 else None
        return cls(in_chans, (h, w), None, None, resize, mean, std)

    @classmethod
    def from_record(cls, record: Mapping[str, Any],
                    default: Preprocess | None = None) -> Preprocess:
        """A model file's "preprocess" record. Keys it lacks, or leaves None (but `resize`,
        where None means a plain resize), come from `default`; other keys are ignored."""
        merged = default.to_record() if default is not None else {}
        merged.update({k: v for k, v in record.items() if v is not None or k == "resize"})
        missing = [k for k in ("input_size", "mean", "std") if k not in merged]
        if missing:
            raise InvalidArgumentError(f"preprocess record has no {', '.join(missing)}")
        c, h, w = merged["input_size"]
        mean, std = list(merged["mean"]), list(merged["std"])
        if len(mean) != c or len(std) != c:
            raise InvalidArgumentError(
                f"preprocess mean/std have {len(mean)}/{len(std)} values for {c} channels")
        return cls(c, (h, w), None, merged.get("pad"), merged.get("resize"), mean, std,
                   grayscale=merged.get("grayscale"))

    def to_record(self) -> dict[str, Any]:
        """The record written into model files: these keys in this order; `pad` only where
        known (files converted from other libraries never had it)."""
        record = {"input_size": [self.in_chans, *self.size], "resize": self.resize,
                  "mean": list(self.mean), "std": list(self.std),
                  "grayscale": self.in_chans == 1 if self.grayscale is None else self.grayscale}
        if self.pad is not None:
            record["pad"] = self.pad
        return record

    @property
    def input_size(self) -> tuple[int, int, int]:
        return (self.in_chans, *self.size)

    # -- in-memory data: uint8 batch on the device -> normalised float batch --------------------
    def base(self, x: torch.Tensor, augment: str, train: bool) -> torch.Tensor:
        x = x.float().div_(255)
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)
        target = self.size
        if train and augmentation(augment).big_base:  # a native window of a larger image (224 of 256)
            target = (round(self.size[0] * 256 / 224), round(self.size[1] * 256 / 224))
        if tuple(x.shape[-2:]) != tuple(target):
            x = F.interpolate(x, size=target, mode="bilinear", antialias=True, align_corners=False)
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C, H, W) -> (x - mean) / std per channel."""
        key = (x.device, x.dtype)
        cache = self.__dict__.setdefault("_consts", {})
        if key not in cache:  # made once per device: no host-to-device copy per step
            cache[key] = (torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(-1, 1, 1),
                          torch.tensor(self.std, device=x.device, dtype=x.dtype).view(-1, 1, 1))
        mean, std = cache[key]
        return (x - mean) / std

    def train_batch(self, x: torch.Tensor, augment: str, g: torch.Generator,
                    pca: PCA | None = None) -> torch.Tensor:
        return self.normalize(augment_batch(self.base(x, augment, True), augment, self.size, g, pca))

    def eval_batch(self, x: torch.Tensor, ten: bool = False) -> torch.Tensor:
        """Centre view (N, C, H, W), or with ten=True the 10 crops (10, N, C, H, W) of an image
        padded by 1/8 of its side (the small-image analogue of 224 crops of 256)."""
        x = self.base(x, "none", False)
        if ten:
            p = max(2, self.size[0] // 8)
            x = ten_crop(F.pad(x, (p,) * 4), self.size)
        return self.normalize(x)

    # -- decoded images and whole sets (predict, features, visualize) -------------------------
    def fit_to_input(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) floats in [0, 1] -> (N, C, H, W) at the model's input size, with the
        record's meaning: with `resize`, the shorter side is resized to it and an H x W centre
        crop taken, zero-padded where the crop is larger than the image (MNIST's 28x28 in
        LeNet-5's 32x32 field: the trainer's `pad`); without, the image is resized to H x W."""
        h, w = self.size
        ih, iw = x.shape[-2:]
        if not self.resize:
            if (ih, iw) != (h, w):
                x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True,
                                  align_corners=False)
            return x
        scale = int(self.resize) / min(ih, iw)
        size = (max(1, round(ih * scale)), max(1, round(iw * scale)))
        if size != (ih, iw):
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        ih, iw = size
        top, left = (ih - h) // 2, (iw - w) // 2
        if top < 0 or left < 0:  # crop larger than the image: zero padding around it
            pt, pl = max(0, -top), max(0, -left)
            x = F.pad(x, (pl, max(0, w - iw - pl), pt, max(0, h - ih - pt)))
            top, left = max(0, top), max(0, left)
        return x[..., top:top + h, left:left + w]

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C', h, w) floats in [0, 1] of any channel count -> normalised model input."""
        return self.normalize(self.fit_to_input(match_channels(x, self.in_chans)))

    def prepare_image(self, img: Image) -> torch.Tensor:
        """A decoded PIL image (data.images.load_image) -> normalised (C, H, W) float tensor."""
        gray = self.in_chans == 1 or self.grayscale
        img = img.convert("L") if gray else img.convert("RGB")
        x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()) / 255.0
        x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
        return self.prepare(x[None])[0]


def match_channels(x: torch.Tensor, c: int) -> torch.Tensor:
    """(..., C', H, W) -> (..., c, H, W): gray repeated for RGB models, RGB averaged for gray."""
    if x.shape[-3] == c:
        return x
    if x.shape[-3] == 1:
        return x.expand(*x.shape[:-3], c, *x.shape[-2:])
    return x.mean(-3, keepdim=True).expand(*x.shape[:-3], c, *x.shape[-2:])


def fit_input(model_name: str, native: tuple[int, int, int],
              data_shape: tuple[int, int, int] | None, mean: Sequence[float],
              std: Sequence[float]) -> Preprocess:
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
