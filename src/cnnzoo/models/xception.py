"""Xception (Chollet 2017, Fig. 5): Inception modules taken to the limit, i.e. depthwise separable
convolutions, in 36 conv layers with residual connections around every block but the first and
last. 299x299 input; 22,855,952 parameters (paper, Table 3).

Entry flow:  conv 3x3/2 32, conv 3x3 64, then blocks 128, 256, 728 (each: [ReLU] sep conv, BN,
             ReLU, sep conv, BN, max pool 3x3/2, plus a 1x1/2 conv + BN shortcut)
Middle flow: 8 x (ReLU, sep 728, BN) x 3 with identity shortcut
Exit flow:   block 728 -> 1024 (sep 728, sep 1024, pool), sep 1536, sep 2048, global pool, FC
No ReLU between the depthwise and pointwise parts of a separable conv (paper, Sec. 4.7).
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract import ZooModel
from ..layers.basic import ConvBnAct
from ..layers.separable import SeparableConv2d
from ..registry import Paper, Published, register

# (in, out, separable convs, stride, ReLU before the first one, widen at the first conv)
BLOCKS: list[tuple[int, int, int, int, bool, bool]] = (
    [(64, 128, 2, 2, False, True), (128, 256, 2, 2, True, True), (256, 728, 2, 2, True, True)]
    + [(728, 728, 3, 1, True, True)] * 8
    + [(728, 1024, 2, 2, True, False)]
)


class XceptionBlock(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, reps: int, stride: int, start_with_relu: bool,
                 grow_first: bool) -> None:
        super().__init__()
        self.skip = (ConvBnAct(in_chs, out_chs, 1, stride=stride, act=None)
                     if in_chs != out_chs or stride != 1 else nn.Identity())
        widths = [in_chs] + ([out_chs] * reps if grow_first else [in_chs] * (reps - 1) + [out_chs])
        layers: list[nn.Module] = []
        for i in range(reps):
            if i > 0 or start_with_relu:
                layers.append(nn.ReLU())  # not in place: the shortcut still reads the block input
            layers += [SeparableConv2d(widths[i], widths[i + 1], 3), nn.BatchNorm2d(widths[i + 1])]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, padding=1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rep(x) + self.skip(x)


class Xception(ZooModel):
    classifier_name = "fc"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__(num_classes, in_chans)
        self.conv1 = ConvBnAct(in_chans, 32, 3, stride=2, padding=0)
        self.conv2 = ConvBnAct(32, 64, 3, padding=0)
        self.blocks = nn.Sequential(*[XceptionBlock(*b) for b in BLOCKS])
        self.conv3 = nn.Sequential(SeparableConv2d(1024, 1536, 3), nn.BatchNorm2d(1536), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(SeparableConv2d(1536, 2048, 3), nn.BatchNorm2d(2048), nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)
        self.num_features = 2048
        self.feature_info = [dict(num_chs=64, reduction=2, module="conv2"),
                             dict(num_chs=128, reduction=4, module="blocks.0"),
                             dict(num_chs=256, reduction=8, module="blocks.1"),
                             dict(num_chs=728, reduction=16, module="blocks.10"),
                             dict(num_chs=2048, reduction=32, module="conv4")]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x))      # N x 64 x 147 x 147
        x = self.blocks(x)                 # N x 1024 x 10 x 10
        return self.conv4(self.conv3(x))   # N x 2048 x 10 x 10

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


def xception(num_classes: int = 1000, in_chans: int = 3) -> Xception:
    return Xception(num_classes, in_chans)


register("xception", xception, family="xception", input_size=(3, 299, 299),
         paper=Paper("Xception: Deep Learning with Depthwise Separable Convolutions", "Chollet", 2017,
                     "https://arxiv.org/abs/1610.02357"),
         published=Published(source="Chollet 2017, Tables 1 and 3", params=22_855_952,
                             top1_err=21.0, top5_err=5.5),
         description="Xception: depthwise separable convs with residual connections (299x299)")
