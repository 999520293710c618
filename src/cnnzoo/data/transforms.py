"""Augmentations of the papers, in one registry (`AUGMENTS`): each entry says how it augments
in-memory batches on the training device, what the PIL loader of image folders does, the crop box
the fast JPEG loader draws (if it can do it), and whether it flips images or crops out of a larger
base. Everything that asks "which augmentations ..." reads these fields; adding one is one entry.

Batched ops take uint8 or float images (N, C, H, W) and a torch.Generator on the same device,
so one call augments a whole batch without a Python loop per image and without leaving the GPU.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from .fastjpeg import Box, rrc_box, scaled_box

PCA = tuple[Sequence[float], Sequence[Sequence[float]]]  # eigenvalues, eigenvectors (as columns)

# AlexNet's "PCA lighting" for ImageNet RGB in [0, 1] (eigen-decomposition of the pixel
# covariance, as published with fb.resnet.torch); used when the data's own PCA is not known.
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = ((-0.5675, 0.7192, 0.4009),
                   (-0.5808, -0.0045, -0.8140),
                   (-0.5836, -0.6948, 0.4203))


def random_crop(x: torch.Tensor, size: tuple[int, int], pad: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad by `pad` and take one random `size` crop per image (exact pixel copies)."""
    n, c, h, w = x.shape
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
    hh, ww = x.shape[-2:]
    th, tw = size
    dy = torch.randint(0, hh - th + 1, (n, 1, 1), device=x.device, generator=g)
    dx = torch.randint(0, ww - tw + 1, (n, 1, 1), device=x.device, generator=g)
    rows = (dy + torch.arange(th, device=x.device).view(1, th, 1)).expand(n, th, tw)
    cols = (dx + torch.arange(tw, device=x.device).view(1, 1, tw)).expand(n, th, tw)
    idx = (rows * ww + cols).view(n, 1, th * tw).expand(n, c, th * tw)
    return x.flatten(2).gather(2, idx).view(n, c, th, tw)


def random_flip(x: torch.Tensor, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    flip = torch.rand(x.shape[0], device=x.device, generator=g) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def resized_crop(x: torch.Tensor, size: tuple[int, int], frac_h: torch.Tensor, frac_w: torch.Tensor,
                 g: torch.Generator) -> torch.Tensor:
    """Per image, a crop covering frac_h x frac_w of the image at a random place, resampled
    (bilinear) to `size`: one grid_sample for the whole batch."""
    n = x.shape[0]
    frac_h, frac_w = frac_h.clamp(max=1.0), frac_w.clamp(max=1.0)
    cy = (torch.rand(n, device=x.device, generator=g) * 2 - 1) * (1 - frac_h)
    cx = (torch.rand(n, device=x.device, generator=g) * 2 - 1) * (1 - frac_w)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=torch.float32)
    theta[:, 0, 0], theta[:, 0, 2] = frac_w, cx
    theta[:, 1, 1], theta[:, 1, 2] = frac_h, cy
    grid = F.affine_grid(theta, (n, x.shape[1], *size), align_corners=False)
    return F.grid_sample(x.float(), grid.to(x.device), mode="bilinear", padding_mode="reflection",
                         align_corners=False)


def scale_jitter(x: torch.Tensor, size: tuple[int, int], smin: int, smax: int,
                 g: torch.Generator) -> torch.Tensor:
    """VGG's scale jittering: rescale the shorter side to S ~ U[smin, smax], crop `size`."""
    s = torch.randint(smin, smax + 1, (x.shape[0],), device=x.device, generator=g).float()
    return resized_crop(x, size, size[0] / s, size[1] / s, g)


def random_resized_crop(x: torch.Tensor, size: tuple[int, int], g: torch.Generator,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Inception/ImageNet crop: area fraction ~ U[scale], log aspect ratio ~ U[log ratio]."""
    n = x.shape[0]
    area = torch.empty(n, device=x.device).uniform_(*scale, generator=g)
    logr = torch.empty(n, device=x.device).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g)
    r = logr.exp()
    return resized_crop(x, size, (area / r).sqrt(), (area * r).sqrt(), g)


def pca_lighting(x: torch.Tensor, g: torch.Generator, eigval: Sequence[float],
                 eigvec: Sequence[Sequence[float]], std: float = 0.1) -> torch.Tensor:
    """AlexNet's colour augmentation: add sum_i alpha_i * lambda_i * p_i, alpha ~ N(0, 0.1),
    to every pixel of an RGB image in [0, 1]."""
    if x.shape[1] != 3:
        return x
    eigval, eigvec = device_pca(tuple(eigval), tuple(tuple(v) for v in eigvec), x.device)
    alpha = torch.randn(x.shape[0], 3, device=x.device, generator=g) * std
    rgb = (alpha * eigval) @ eigvec.T  # (N, 3)
    return x + rgb.view(-1, 3, 1, 1).to(x.dtype)


@functools.lru_cache(maxsize=16)
def device_pca(eigval: tuple[float, ...], eigvec: tuple[tuple[float, ...], ...],
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The PCA constants on `device`, made once: a tensor built from a list on a GPU is a
    host-to-device copy, which every training step paid twice."""
    return (torch.tensor(eigval, device=device, dtype=torch.float32),
            torch.tensor(eigvec, device=device, dtype=torch.float32))


def pixel_pca(images: torch.Tensor, max_pixels: int = 1_000_000) -> tuple[list[float], list[list[float]]]:
    """Eigenvalues/vectors of the RGB covariance of uint8 images (N, 3, H, W), scaled to [0, 1]."""
    px = images.permute(1, 0, 2, 3).reshape(3, -1)
    if px.shape[1] > max_pixels:
        px = px[:, :: px.shape[1] // max_pixels]
    px = px.double() / 255
    cov = torch.cov(px)
    val, vec = torch.linalg.eigh(cov)
    return val.flip(0).float().tolist(), vec.flip(1).float().tolist()


def ten_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The papers' 10-crop testing: four corners and the centre, and their mirror images.
    (N, C, H, W) -> (10, N, C, h, w)."""
    h, w = x.shape[-2:]
    th, tw = size
    if th > h or tw > w:
        raise InvalidArgumentError(f"10-crop of {th}x{tw} from {h}x{w} images is impossible")
    t, l = (h - th) // 2, (w - tw) // 2
    crops = [x[..., :th, :tw], x[..., :th, w - tw:], x[..., h - th:, :tw], x[..., h - th:, w - tw:],
             x[..., t:t + th, l:l + tw]]
    return torch.stack(crops + [c.flip(-1) for c in crops])


# -- torchvision pipelines for image folders (run in DataLoader workers) ------------------------
class Lighting:
    """PCA lighting as a per-image torchvision transform (tensor in [0, 1])."""

    def __init__(self, std: float = 0.1):
        self.std = std

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if img.shape[0] != 3:
            return img
        alpha = torch.randn(3) * self.std
        rgb = (alpha * torch.tensor(IMAGENET_EIGVAL)) @ torch.tensor(IMAGENET_EIGVEC).T
        return img + rgb.view(3, 1, 1)


# -- the registry -------------------------------------------------------------------------------
Size = tuple[int, int]


@dataclass(frozen=True)
class Augmentation:
    """One training augmentation (a recipe's `augment`), for every data path."""

    name: str
    help: str
    # in-memory data: a float batch in [0, 1] (at the model's size, or the larger base) -> `size`
    batch: Callable[[torch.Tensor, Size, torch.Generator, PCA | None], torch.Tensor]
    # image folders, PIL loader: (torchvision.transforms.v2, size, resize) -> the geometric steps
    folder: Callable[[Any, Size, int], list]
    flips: bool = False     # mirrors images horizontally (wrong on digits: see data/nature.py)
    big_base: bool = False  # crops a native-size window out of an image 256/224 larger
    lighting: bool = False  # AlexNet's PCA colour lighting
    # the fast JPEG loader's crop box (h, w, size, resize, rng) -> box; None: the PIL loader only
    box: Callable[[int, int, Size, int, random.Random], Box] | None = None

    @property
    def fast(self) -> bool:
        """Whether the fast JPEG loader does it (its geometry is one crop box per image)."""
        return self.box is not None


def _resized(x: torch.Tensor, size: Size) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(
        x, size=size, mode="bilinear", antialias=True, align_corners=False)


def _alexnet(x: torch.Tensor, size: Size, g: torch.Generator, pca: PCA | None) -> torch.Tensor:
    """Random 224 crops of the 256 image, flips, PCA lighting (the data's own PCA when known)."""
    frac = torch.full((x.shape[0],), size[0] / max(x.shape[-2], size[0] * 256 / 224), device=x.device)
    out = random_flip(resized_crop(x, size, frac, frac, g), g)
    val, vec = pca if pca is not None else (IMAGENET_EIGVAL, IMAGENET_EIGVEC)
    return pca_lighting(out, g, val, vec)


def _vgg_side(size: Size) -> tuple[int, int]:
    """VGG's scale jitter range: S in [256, 512] for 224 inputs, scaled for other sizes."""
    return int(size[0] * 256 / 224), int(size[0] * 512 / 224)


def _vgg_box(h: int, w: int, size: Size, resize: int, rng: random.Random) -> Box:
    return scaled_box(h, w, size, min(h, w) / rng.randint(*_vgg_side(size)), rng)


def _centre(T: Any, size: Size, resize: int) -> list:
    return [T.Resize(resize, antialias=True), T.CenterCrop(size)]


AUGMENTS: dict[str, Augmentation] = {a.name: a for a in (
    Augmentation("none", "no augmentation (evaluation's view)",
                 batch=lambda x, size, g, pca: _resized(x, size), folder=_centre,
                 box=lambda h, w, size, resize, rng: scaled_box(h, w, size, min(h, w) / resize, None)),
    Augmentation("shift", "small random translations, no flip (digits are not mirror-symmetric)",
                 batch=lambda x, size, g, pca: random_crop(x, size, 2, g),
                 folder=lambda T, size, resize: _centre(T, size, resize) + [
                     T.RandomCrop(size, padding=max(1, size[0] // 14))]),
    Augmentation("shift-flip", "small random translations and horizontal flips (Fashion-MNIST: a "
                 "mirrored coat is a coat)", flips=True,
                 batch=lambda x, size, g, pca: random_flip(random_crop(x, size, 2, g), g),
                 folder=lambda T, size, resize: _centre(T, size, resize) + [
                     T.RandomCrop(size, padding=max(1, size[0] // 14)), T.RandomHorizontalFlip()]),
    Augmentation("cifar", "He et al.: pad 4, random crop, horizontal flip", flips=True,
                 batch=lambda x, size, g, pca: random_flip(random_crop(x, size, 4, g), g),
                 folder=lambda T, size, resize: _centre(T, size, resize) + [
                     T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()]),
    Augmentation("alexnet", "random 224 crops of the 256 image, flips, PCA lighting", flips=True,
                 big_base=True, lighting=True, batch=_alexnet,
                 folder=lambda T, size, resize: [T.Resize(resize, antialias=True), T.RandomCrop(size),
                                                 T.RandomHorizontalFlip()],
                 box=lambda h, w, size, resize, rng: scaled_box(h, w, size, min(h, w) / resize, rng)),
    Augmentation("vgg", "scale jittering (shorter side 256..512 for 224), random crop, flips", flips=True,
                 big_base=True, box=_vgg_box,
                 batch=lambda x, size, g, pca: random_flip(scale_jitter(x, size, *_vgg_side(size), g), g),
                 folder=lambda T, size, resize: [T.RandomResize(_vgg_side(size)[0], _vgg_side(size)[1] + 1,
                                                                antialias=True),
                                                 T.RandomCrop(size), T.RandomHorizontalFlip()]),
    Augmentation("imagenet", "Inception's random-resized crops, flips", flips=True, big_base=True,
                 batch=lambda x, size, g, pca: random_flip(random_resized_crop(x, size, g), g),
                 folder=lambda T, size, resize: [T.RandomResizedCrop(size, antialias=True),
                                                 T.RandomHorizontalFlip()],
                 box=lambda h, w, size, resize, rng: rrc_box(h, w, rng)),
)}
AUGMENTATIONS = tuple(AUGMENTS)  # the names, for recipes' choices


def augmentation(name: str) -> Augmentation:
    """The registry entry of `name`; an unknown name is an error listing the known ones."""
    try:
        return AUGMENTS[name]
    except (KeyError, TypeError):
        raise InvalidArgumentError(
            f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTS)}") from None


def fast_augmentations() -> tuple[str, ...]:
    """The augmentations the fast JPEG loader does."""
    return tuple(a.name for a in AUGMENTS.values() if a.fast)


def augment_batch(x: torch.Tensor, name: str, size: Size, g: torch.Generator,
                  pca: PCA | None = None) -> torch.Tensor:
    """Training augmentation of a float batch in [0, 1], already at the model's input size
    (or larger, for crops): returns a batch of `size`."""
    return augmentation(name).batch(x, size, g, pca)


def crop_box(h: int, w: int, kind: str, size: Size, resize: int, rng: random.Random) -> Box:
    """The region of an h x w image that becomes the model's `size` input under augmentation
    `kind` (eval: "none") on the fast path: the same geometry as `folder_transform`'s pipelines."""
    box = augmentation(kind).box
    if box is None:
        raise ValueError(f"augmentation {kind!r} has no crop-box form (use the PIL loader)")
    return box(h, w, size, resize, rng)


def folder_transform(augment: str, size: Size, resize: int, mean: Sequence[float],
                     std: Sequence[float], train: bool) -> Callable[[Any], torch.Tensor]:
    """The PIL loader's per-image pipeline for image folders (run in DataLoader workers)."""
    from torchvision.transforms import v2 as T

    aug = augmentation(augment if train else "none")
    tail = [T.ToDtype(torch.float32, scale=True)] + ([Lighting()] if aug.lighting else [])
    return T.Compose([T.ToImage()] + aug.folder(T, size, resize) + tail + [T.Normalize(mean, std)])
