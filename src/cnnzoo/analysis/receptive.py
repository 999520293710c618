"""Receptive field and effective stride (seed 003: two 3x3 convs see what one 5x5 sees).

The analyzer carries, for every tensor, the receptive field of one element on the input and
the effective stride (distance on the input between neighbouring elements). A conv or pool
with kernel k, stride s and dilation d maps (rf, j) to (rf + (k-1)*d*j, j*s); global pooling
and flatten see the whole map; merging branches (residual add, inception concat) takes the
max over the branches. Values are the theoretical field, not clipped to the image.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn


def receptive_field(model: nn.Module, input_size: Sequence[int]) -> tuple[int, ...]:
    """Receptive field (per spatial dim) of the model's last row, e.g. (7, 7) for 3 3x3 convs."""
    from .core import analyze

    rows = analyze(model, input_size).rows
    if not rows or rows[-1].rf is None:
        raise ValueError("the model has no layers to analyze")
    return rows[-1].rf
