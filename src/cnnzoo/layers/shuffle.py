"""Channel shuffle (ShuffleNet v1 and v2): interleave the channels of `groups` groups so that the
next grouped convolution sees inputs from every group."""

from __future__ import annotations

import torch
from torch import nn


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, g*c, H, W) -> view as (N, g, c, H, W), swap g and c, flatten back."""
    n, chs, h, w = x.shape
    x = x.view(n, groups, chs // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, chs, h, w)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
