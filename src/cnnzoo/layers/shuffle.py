"""Channel shuffle (ShuffleNet v1 and v2): interleave the channels of `groups` groups so that the
next grouped convolution sees inputs from every group."""

from __future__ import annotations

import torch


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, g*c, H, W) -> view as (N, g, c, H, W), swap g and c, flatten back."""
    n, chs, h, w = x.shape
    x = x.view(n, groups, chs // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, chs, h, w)
