"""Inception-v4 and Inception-ResNet-v2 (Szegedy, Ioffe, Vanhoucke, Alemi 2016).

  inception_v4         Figs. 3-9 (channel widths of the TF-slim reference)
  inception_resnet_v2  Figs. 3, 7, 16-19 (TF-slim widths)

Every block is layers.branches.Branches of `seq` branches: BasicConv2d layers (conv, no bias, + BN
eps 1e-3 + ReLU). The final pool is adaptive, so inputs smaller than 299x299 run in eval mode.
timm's port of the TF-slim reference holds the same tensors in the same order (its weights load
by position).
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers.basic import basic_conv, basic_conv_same
from ..layers.branches import Branches, SplitConcat, seq
from ..registry import Paper, Published, register
from .inception import InceptionBase


def avg_proj(in_chs: int, out: int) -> nn.Sequential:
    """The pool branch: 3x3/1 average pool (padding not counted), then a 1x1 projection."""
    return nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), basic_conv(in_chs, out, 1))


def v4_stem(in_chans: int) -> nn.Sequential:
    """Fig. 3: 299x299x3 -> 35x35x384 (shared with Inception-ResNet-v2 in the paper)."""
    return nn.Sequential(
        basic_conv(in_chans, 32, 3, 2), basic_conv(32, 32, 3),
        basic_conv_same(32, 64, 3),                                             # 147 x 147 x 64
        Branches(nn.MaxPool2d(3, 2), seq(64, (96, 3, 2))),                      # 73 x 73 x 160
        Branches(seq(160, (64, 1), (96, 3, 1, True)),
                 seq(160, (64, 1), (64, (1, 7)), (64, (7, 1)), (96, 3, 1, True))),  # 71 x 71 x 192
        Branches(seq(192, (192, 3, 2)), nn.MaxPool2d(3, 2)),                    # 35 x 35 x 384
    )


def v4_block_a(c: int = 384) -> Branches:  # Fig. 4
    return Branches(seq(c, (96, 1)), seq(c, (64, 1), (96, 3)), seq(c, (64, 1), (96, 3), (96, 3)),
                    avg_proj(c, 96))


def reduction_a(c: int, k: int, l: int, m: int, n: int) -> Branches:  # Fig. 7, Table 1
    return Branches(seq(c, (n, 3, 2)), seq(c, (k, 1), (l, 3), (m, 3, 2)), nn.MaxPool2d(3, 2))


def v4_block_b(c: int = 1024) -> Branches:  # Fig. 5
    return Branches(seq(c, (384, 1)), seq(c, (192, 1), (224, (1, 7)), (256, (7, 1))),
                    seq(c, (192, 1), (192, (7, 1)), (224, (1, 7)), (224, (7, 1)), (256, (1, 7))),
                    avg_proj(c, 128))


def v4_reduction_b(c: int = 1024) -> Branches:  # Fig. 8
    return Branches(seq(c, (192, 1), (192, 3, 2)),
                    seq(c, (256, 1), (256, (1, 7)), (320, (7, 1)), (320, 3, 2)), nn.MaxPool2d(3, 2))


def v4_block_c(c: int = 1536) -> Branches:  # Fig. 6
    return Branches(
        seq(c, (256, 1)),
        SplitConcat(seq(c, (384, 1)), seq(384, (256, (1, 3))), seq(384, (256, (3, 1)))),
        SplitConcat(seq(c, (384, 1), (448, (3, 1)), (512, (1, 3))),
                    seq(512, (256, (1, 3))), seq(512, (256, (3, 1)))),
        avg_proj(c, 256))


class _ThreeGrid(InceptionBase):
    """Inception-v4 and Inception-ResNet-v2 share one layout: stem, blocks on the 35x35 grid,
    Reduction-A, blocks on 17x17, Reduction-B, blocks on 8x8."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks_a(self.stem(x))                  # N x 384 (v4) / 320 (IRv2) x 35 x 35
        x = self.blocks_b(self.reduction_a(x))           # N x 1024 / 1088 x 17 x 17
        return self.blocks_c(self.reduction_b(x))        # N x 1536 / 2080 x 8 x 8


class InceptionV4(_ThreeGrid):
    """Inception-v4 (Fig. 9): stem, 4 x Inception-A, Reduction-A, 7 x Inception-B, Reduction-B,
    3 x Inception-C, average pool, dropout (keep 0.8), softmax."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2) -> None:
        super().__init__(num_classes, in_chans)
        self.aux_logits = False
        self.stem = v4_stem(in_chans)
        self.blocks_a = nn.Sequential(*[v4_block_a() for _ in range(4)])
        self.reduction_a = reduction_a(384, 192, 224, 256, 384)   # k, l, m, n of Table 1
        self.blocks_b = nn.Sequential(*[v4_block_b() for _ in range(7)])
        self.reduction_b = v4_reduction_b()
        self.blocks_c = nn.Sequential(*[v4_block_c() for _ in range(3)])
        self._make_head(1536, num_classes, dropout)
        self.feature_info = [dict(num_chs=64, reduction=2, module="stem.2"),
                             dict(num_chs=160, reduction=4, module="stem.3"),
                             dict(num_chs=384, reduction=8, module="blocks_a"),
                             dict(num_chs=1024, reduction=16, module="blocks_b"),
                             dict(num_chs=1536, reduction=32, module="blocks_c")]


class ResidualInception(nn.Module):
    """Inception-ResNet block: branches -> 1x1 linear conv (with bias, no BN) back to the input
    width -> scaled residual add (the paper's 0.1-0.3 scaling, Sec. 3.3) -> ReLU."""

    def __init__(self, branches: Branches, mid: int, chs: int, scale: float, act: bool = True) -> None:
        super().__init__()
        self.branches = branches
        self.conv = nn.Conv2d(mid, chs, 1)
        self.scale = scale
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.scale * self.conv(self.branches(x)))


def irv2_block_a(c: int = 320) -> ResidualInception:  # Fig. 16 (35x35)
    return ResidualInception(Branches(seq(c, (32, 1)), seq(c, (32, 1), (32, 3)),
                                      seq(c, (32, 1), (48, 3), (64, 3))), 128, c, 0.17)


def irv2_block_b(c: int = 1088) -> ResidualInception:  # Fig. 17 (17x17)
    return ResidualInception(Branches(seq(c, (192, 1)), seq(c, (128, 1), (160, (1, 7)), (192, (7, 1)))),
                             384, c, 0.10)


def irv2_block_c(c: int = 2080, scale: float = 0.20, act: bool = True) -> ResidualInception:  # Fig. 19
    return ResidualInception(Branches(seq(c, (192, 1)), seq(c, (192, 1), (224, (1, 3)), (256, (3, 1)))),
                             448, c, scale, act)


class InceptionResNetV2(_ThreeGrid):
    """Inception-ResNet-v2 (Fig. 15) with the TF-slim reference widths: the stem ends in a 5x5 /
    double-3x3 / avg-pool mixed block to 320 channels (the paper's Fig. 3 stem gives 384; the
    published 55.8M parameters are for this one); 10 x A (scale 0.17), Reduction-A (k,l,m,n =
    256,256,384,384), 20 x B (0.10), Reduction-B (Fig. 18), 10 x C (0.20, the last without scaling
    or ReLU), a 1x1 conv to 1536, average pool, dropout (keep 0.8), FC."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.2) -> None:
        super().__init__(num_classes, in_chans)
        self.aux_logits = False
        self.stem = nn.Sequential(
            basic_conv(in_chans, 32, 3, 2), basic_conv(32, 32, 3), basic_conv_same(32, 64, 3),
            nn.MaxPool2d(3, 2), basic_conv(64, 80, 1), basic_conv(80, 192, 3),
            nn.MaxPool2d(3, 2),                                                  # 35 x 35 x 192
            Branches(seq(192, (96, 1)), seq(192, (48, 1), (64, 5)),
                     seq(192, (64, 1), (96, 3), (96, 3)), avg_proj(192, 64)),       # 35 x 35 x 320
        )
        self.blocks_a = nn.Sequential(*[irv2_block_a() for _ in range(10)])
        self.reduction_a = reduction_a(320, 256, 256, 384, 384)                      # -> 1088
        self.blocks_b = nn.Sequential(*[irv2_block_b() for _ in range(20)])
        self.reduction_b = Branches(seq(1088, (256, 1), (384, 3, 2)), seq(1088, (256, 1), (288, 3, 2)),
                                    seq(1088, (256, 1), (288, 3), (320, 3, 2)), nn.MaxPool2d(3, 2))
        self.blocks_c = nn.Sequential(*[irv2_block_c() for _ in range(9)],
                                      irv2_block_c(scale=1.0, act=False))
        self.conv_head = basic_conv(2080, 1536, 1)
        self._make_head(1536, num_classes, dropout)
        self.feature_info = [dict(num_chs=64, reduction=2, module="stem.2"),
                             dict(num_chs=192, reduction=4, module="stem.5"),
                             dict(num_chs=320, reduction=8, module="blocks_a"),
                             dict(num_chs=1088, reduction=16, module="blocks_b"),
                             dict(num_chs=1536, reduction=32, module="conv_head")]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_head(super().features(x))       # N x 1536 x 8 x 8


def inception_v4(num_classes: int = 1000, in_chans: int = 3) -> InceptionV4:
    return InceptionV4(num_classes, in_chans)


def inception_resnet_v2(num_classes: int = 1000, in_chans: int = 3) -> InceptionResNetV2:
    return InceptionResNetV2(num_classes, in_chans)


_V4 = Paper("Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
            "Szegedy, Ioffe, Vanhoucke, Alemi", 2016, "https://arxiv.org/abs/1602.07261")
register("inception_v4", inception_v4, family="inception", input_size=(3, 299, 299), paper=_V4,
         recipe="googlenet",
         published=Published(source="Szegedy et al. 2016 / TF-slim reference (42.7M)", params=42.7e6,
                             top1_err=20.0, top5_err=5.0),
         description="Inception-v4: pure inception, 4 A + 7 B + 3 C blocks")
register("inception_resnet_v2", inception_resnet_v2, family="inception", input_size=(3, 299, 299),
         recipe="googlenet",
         paper=_V4,
         published=Published(source="Szegedy et al. 2016 / TF-slim reference (55.8M)", params=55.8e6,
                             top1_err=19.9, top5_err=4.9),
         description="Inception-ResNet-v2: scaled residual inception blocks")
