"""Parallel branches concatenated on channels, the shape of every Inception-v4 and
Inception-ResNet-v2 block: `Branches` (n branches side by side), `SplitConcat` (one stem feeding
two parallel convs) and `seq`, which builds one branch from a compact (out, kernel[, stride])
spec of BasicConv2d layers.

Module names (branches.N, stem/a/b, and the Sequential's indices) are checkpoint keys.
"""

from __future__ import annotations

import torch
from torch import nn

from .basic import basic_conv, basic_conv_same


class Branches(nn.Module):
    """Parallel branches (each a Sequential, or a pool) concatenated on channels."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


class SplitConcat(nn.Module):
    """A stem whose output feeds two parallel convs (e.g. 1x3 and 3x1) whose outputs are
    concatenated."""

    def __init__(self, stem: nn.Module, a: nn.Module, b: nn.Module) -> None:
        super().__init__()
        self.stem, self.a, self.b = stem, a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return torch.cat([self.a(x), self.b(x)], 1)


def seq(in_chs: int, *spec: tuple) -> nn.Sequential:
    """A branch of basic_convs from (out, kernel[, stride[, valid]]) tuples. Stride-2 convs are
    "valid" (no padding), everything else "same", as in the Inception-v4 paper's figures ("V"
    marks the valid ones); `valid` overrides that for the few stride-1 valid convs."""
    layers, chs = [], in_chs
    for out, k, *rest in spec:
        stride = rest[0] if rest else 1
        valid = rest[1] if len(rest) > 1 else stride == 2
        layers.append(basic_conv(chs, out, k, stride) if valid else basic_conv_same(chs, out, k, stride))
        chs = out
    return nn.Sequential(*layers)
