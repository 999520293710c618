"""Squeeze-and-Excitation (Hu et al., 2018), shared by every family that uses it.

    x -> global average pool -> fc1 (C -> C/r) -> act -> fc2 (C/r -> C) -> gate -> x * gate

The two "FC" layers are 1x1 convolutions with bias (same parameters as the paper's FC layers,
no reshape). MobileNetV3-style users pass `rd_channels` (rounded to a multiple of 8) and
`gate=nn.Hardsigmoid`.
"""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16, *, rd_channels: int | None = None,
                 act: type[nn.Module] = nn.ReLU, gate: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        if rd_channels is None:
            rd_channels = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, rd_channels, 1, bias=True)
        self.act = act(inplace=True) if act in (nn.ReLU, nn.ReLU6) else act()
        self.fc2 = nn.Conv2d(rd_channels, channels, 1, bias=True)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)  # squeeze: N x C x 1 x 1
        s = self.gate(self.fc2(self.act(self.fc1(s))))  # excitation: per-channel weights in (0, 1)
        return x * s
