"""The GoogLeNet-style inception module and the auxiliary classifier head. Written once; used by
googlenet, googlenet_tv and bn_inception (the training-mode forward that returns auxiliary
logits is contract.AuxModel).

Branch names branch1..branch4 and aux names conv/fc1/fc2 are torchvision's (checkpoint keys).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import InputShapeError

ConvFn = Callable[..., nn.Module]  # conv(in_chs, out_chs, kernel_size, stride=, padding=)


class InceptionModule(nn.Module):
    """Four parallel branches concatenated on channels (Szegedy et al. 2014, Fig. 2b):

        branch1: 1x1                                  (#1x1; 0 drops the branch)
        branch2: 1x1 reduce -> 3x3                    (#3x3 reduce, #3x3)
        branch3: 1x1 reduce -> 5x5                    (#5x5 reduce, #5x5); kernel 3 gives
                 torchvision's variant, double=True two stacked 3x3 (BN-Inception)
        branch4: 3x3 pool -> 1x1 projection           (pool proj; 0 = pool output passed through)

    stride=2 (BN-Inception 3c/4e) puts the stride on the last conv of branches 2-3 and the pool.
    """

    def __init__(self, in_chs: int, c1x1: int, c3x3_red: int, c3x3: int, c5x5_red: int, c5x5: int,
                 pool_proj: int, *, conv: ConvFn, branch3_kernel: int = 5, double: bool = False,
                 pool: str = "max", stride: int = 1) -> None:
        super().__init__()
        if stride == 1:
            pool_layer: nn.Module = (nn.MaxPool2d(3, 1, padding=1, ceil_mode=True) if pool == "max"
                                     else nn.AvgPool2d(3, 1, padding=1))
        else:  # the reduction modules pool 3x3/2 (ceil mode, as Caffe)
            pool_layer = nn.MaxPool2d(3, stride, ceil_mode=True)
        k = branch3_kernel
        self.branch1 = conv(in_chs, c1x1, 1) if c1x1 else None
        self.branch2 = nn.Sequential(conv(in_chs, c3x3_red, 1),
                                     conv(c3x3_red, c3x3, 3, stride=stride, padding=1))
        if double:
            self.branch3 = nn.Sequential(conv(in_chs, c5x5_red, 1), conv(c5x5_red, c5x5, 3, padding=1),
                                         conv(c5x5, c5x5, 3, stride=stride, padding=1))
        else:
            self.branch3 = nn.Sequential(conv(in_chs, c5x5_red, 1),
                                         conv(c5x5_red, c5x5, k, stride=stride, padding=k // 2))
        self.branch4 = nn.Sequential(pool_layer, conv(in_chs, pool_proj, 1)) if pool_proj else pool_layer
        self.out_chs = c1x1 + c3x3 + c5x5 + (pool_proj or in_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.branch2(x), self.branch3(x), self.branch4(x)]
        if self.branch1 is not None:
            outs.insert(0, self.branch1(x))
        return torch.cat(outs, 1)


class InceptionAux(nn.Module):
    """GoogLeNet's auxiliary classifier: pool to 4x4, 1x1 conv 128 + ReLU, FC 1024 + ReLU,
    dropout 0.7, FC. The paper pools 5x5/3 (4x4 from a 14x14 map); torchvision pools adaptively."""

    def __init__(self, in_chs: int, num_classes: int, *, conv: ConvFn, pool: nn.Module,
                 dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = pool
        self.conv = conv(in_chs, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        if x.shape[-2:] != (4, 4):  # fc1 is sized for the paper's 4x4 grid
            raise InputShapeError(
                f"auxiliary classifier needs a 4x4 pooled map, got {tuple(x.shape[-2:])}: train at "
                "the native input size (224x224), or build the model with aux_logits=False")
        x = torch.flatten(self.conv(x), 1)
        return self.fc2(self.dropout(self.act(self.fc1(x))))
