"""MobileNet v1 (Howard et al. 2017) and MobileNet v2 (Sandler et al. 2018, torchvision-compatible).

MobileNet v1, Table 1 (= seed 004's table): a full 3x3/2 conv, then 13 depthwise separable convs
(dw 3x3 + BN + ReLU, pw 1x1 + BN + ReLU), global average pool, FC. The width multiplier alpha thins
every layer to int(alpha * channels); the resolution multiplier rho sets the input side to
224 * rho (the network itself is resolution-agnostic; rho is recorded as `input_size`).
The paper's table prints "Conv dw / s2" for the 13th dw conv on a 7x7 input; its own output sizes
(7x7 in, 7x7 out) and its 569M mult-adds need stride 1 there, which we use.
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract import ZooModel
from ..errors import InvalidArgumentError
from ..layers.basic import ConvBnAct
from ..layers.separable import DepthwiseSeparableConv
from ..registry import Paper, Published, register

# Table 1 after the first conv: (pointwise output channels, depthwise stride) per separable conv.
MOBILENET_V1_TABLE: list[tuple[int, int]] = [
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),   # the "5x" rows
    (1024, 2), (1024, 1),                                # the paper's typo: s2 on the last dw
]


class MobileNetV1(ZooModel):
    classifier_name = "fc"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, alpha: float = 1.0,
                 rho: float = 1.0, dropout: float = 0.0) -> None:
        super().__init__(num_classes, in_chans)
        if not 0 < alpha <= 4:
            raise InvalidArgumentError(f"alpha (width multiplier) must be in (0, 4], got {alpha}")
        if not 0 < rho <= 4 or round(224 * rho) < 32:
            raise InvalidArgumentError(f"rho (resolution multiplier) must give an input side of "
                                       f"at least 32 (224 * rho), got rho={rho}")
        self.alpha, self.rho = alpha, rho
        self.input_size = (in_chans, round(224 * rho), round(224 * rho))

        def width(c: int) -> int:
            return max(1, int(c * alpha))

        chs = width(32)
        self.conv_stem = ConvBnAct(in_chans, chs, 3, stride=2)
        blocks, reduction = [], 2
        self.feature_info = []
        for i, (out, stride) in enumerate(MOBILENET_V1_TABLE):
            if stride == 2:
                self.feature_info.append(dict(num_chs=chs, reduction=reduction,
                                              module=f"blocks.{i - 1}" if i else "conv_stem"))
                reduction *= 2
            blocks.append(DepthwiseSeparableConv(chs, width(out), stride=stride))
            chs = width(out)
        self.blocks = nn.Sequential(*blocks)
        self.feature_info.append(dict(num_chs=chs, reduction=32, module=f"blocks.{len(blocks) - 1}"))
        self.num_features = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # the paper's 7x7 average pool at 224 * rho = 224
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(chs, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.conv_stem(x))  # N x 1024a x 7 x 7 at 224

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)


def mobilenet_v1(num_classes: int = 1000, in_chans: int = 3, alpha: float = 1.0,
                 rho: float = 1.0) -> MobileNetV1:
    return MobileNetV1(num_classes, in_chans, alpha=alpha, rho=rho)


# ----------------------------------------------------------------------------------------------
# MobileNet v2: inverted residuals with linear bottlenecks. Module layout is torchvision's
# (features.N.conv.M are its checkpoint keys): conv/bn/act as Sequential indices 0/1/2.
MOBILENET_V2_TABLE: list[tuple[int, int, int, int]] = [  # t (expansion), c, n (repeats), s
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of `divisor`, never below 90% of v (TF reference rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_bn_relu6(i: int, o: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(o), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expand (t) + ReLU6, 3x3 depthwise + ReLU6, 1x1 linear projection; identity shortcut
    when the shape is kept."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = int(round(in_chs * expand))
        self.use_res = stride == 1 and in_chs == out_chs
        layers = [conv_bn_relu6(in_chs, hidden, 1)] if expand != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, out_chs, 1, bias=False), nn.BatchNorm2d(out_chs)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(ZooModel):
    classifier_name = "classifier.1"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__(num_classes, in_chans)
        if not 0 < width_mult <= 4:
            raise InvalidArgumentError(f"width_mult must be in (0, 4], got {width_mult}")
        chs = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [conv_bn_relu6(in_chans, chs, 3, 2)]
        self.feature_info, reduction = [], 2
        for t, c, n, s in MOBILENET_V2_TABLE:
            out = make_divisible(c * width_mult)
            if s == 2:
                self.feature_info.append(dict(num_chs=chs, reduction=reduction,
                                              module=f"features.{len(features) - 1}"))
                reduction *= 2
            for i in range(n):
                features.append(InvertedResidual(chs, out, s if i == 0 else 1, t))
                chs = out
        # timm's last stage is the last inverted residual (320 channels), not the 1x1 head conv
        self.feature_info.append(dict(num_chs=chs, reduction=32, module=f"features.{len(features) - 1}"))
        features.append(conv_bn_relu6(chs, last, 1))
        self.features = nn.Sequential(*features)
        self.num_features = last
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # N x 1280 x 7 x 7

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier[0](x) if pre_logits else self.classifier(x)


def mobilenet_v2(num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0) -> MobileNetV2:
    return MobileNetV2(num_classes, in_chans, width_mult=width_mult)


V1 = Paper("MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
           "Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto, Adam", 2017,
           "https://arxiv.org/abs/1704.04861")
# Table 6 of the paper (width multiplier rows at 224): top-1 accuracy, million mult-adds, params.
for suffix, alpha, acc, macs, params in [("", 1.0, 70.6, 569e6, 4.2e6), ("_075", 0.75, 68.4, 325e6, 2.6e6),
                                          ("_050", 0.5, 63.7, 149e6, 1.3e6), ("_025", 0.25, 50.6, 41e6, 0.5e6)]:
    register(f"mobilenet_v1{suffix}", mobilenet_v1, family="mobilenet", paper=V1,
             input_size=(3, 224, 224), kwargs={"alpha": alpha} if alpha != 1.0 else {},
             published=Published(source="Howard et al. 2017, Table 6", params=params, macs=macs,
                                 top1_err=round(100 - acc, 1)),
             description=f"MobileNet v1, width multiplier alpha={alpha} (rho= resolution multiplier)")
register("mobilenet_v2", mobilenet_v2, family="mobilenet", input_size=(3, 224, 224),
         paper=Paper("MobileNetV2: Inverted Residuals and Linear Bottlenecks", "Sandler, Howard, Zhu, "
                     "Zhmoginov, Chen", 2018, "https://arxiv.org/abs/1801.04381"),
         published=(Published(source="Sandler et al. 2018, Table 4", params=3.4e6, macs=300e6,
                              top1_err=28.0),),
         description="MobileNet v2, torchvision-compatible (inverted residuals, linear bottlenecks)")
