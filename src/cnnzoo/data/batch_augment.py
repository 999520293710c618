"""The per-pixel half of the fast folder path, batched on the training device: a uint8 batch of
crops (N, 3, H, W) -> flipped, PCA-lit and normalised float32, in a few whole-batch ops.

Randomness comes from a generator seeded per batch (by the caller, from the batch's place in the
run), so a resumed run flips and lights the same images the same way.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .transforms import IMAGENET_EIGVAL, IMAGENET_EIGVEC, augmentation, device_pca


def finish_batch(x: torch.Tensor, kind: str, seed: int, mean: Sequence[float], std: Sequence[float],
                 device: torch.device) -> torch.Tensor:
    """uint8 crops (N, 3, H, W) (any device; flipped in place on the CPU) -> the model's float32
    input on `device`.
    Augmentations that flip flip half the images; those with lighting add PCA lighting (std 0.1)."""
    aug = augmentation(kind)
    x = x.to(device, non_blocking=True)
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    if aug.flips:  # on uint8: a quarter of the bytes of float
        flip = torch.rand(x.shape[0], device=device, generator=g) < 0.5
        if device.type == "cpu":  # in place, only the flipped half (x is the caller's fresh batch)
            sel = flip.nonzero().flatten()
            x[sel] = x[sel].flip(-1)
        else:  # no host sync (nonzero would wait for the GPU)
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    m, s = _norm_consts(tuple(mean), tuple(std), device)
    # (x / 255 - mean) / std as x * (1 / (255 std)) - mean / std, in place on one new float tensor
    out = x.float().mul_(1.0 / (255.0 * s)).sub_(m / s)
    if aug.lighting:
        val, vec = device_pca(IMAGENET_EIGVAL, IMAGENET_EIGVEC, device)
        alpha = torch.randn(x.shape[0], 3, device=device, generator=g) * 0.1
        rgb = (alpha * val) @ vec.T  # the lighting shift in [0, 1] units, then normalised
        out = out + (rgb / s.view(1, 3)).view(-1, 3, 1, 1)
    return out


_CONSTS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _norm_consts(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    key = (mean, std, str(device))
    if key not in _CONSTS:  # once per device: a small tensor built on a GPU is a host-to-device copy
        _CONSTS[key] = (torch.tensor(mean, device=device).view(1, -1, 1, 1),
                        torch.tensor(std, device=device).view(1, -1, 1, 1))
    return _CONSTS[key]
