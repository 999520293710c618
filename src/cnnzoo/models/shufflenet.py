"""ShuffleNet v1 (Zhang et al. 2018) and ShuffleNet v2 (Ma et al. 2018, torchvision-compatible).

v1 (Table 1): conv 3x3/2 24, max pool 3x3/2, three stages of ShuffleNet units (4, 8, 4; the first
of each stride 2), global pool, FC. A unit is 1x1 group conv + BN + ReLU, channel shuffle,
3x3 depthwise (stride s) + BN, 1x1 group conv + BN; stride 1 adds the input, stride 2 concatenates
a 3x3/2 average-pooled input; ReLU after the merge. The bottleneck is a quarter of the unit's
output; the first 1x1 of stage 2 is not grouped (only 24 input channels, Sec. 3.3).

v2 (torchvision's layout and names): each unit splits channels in half (stride 1) or uses both
branches on the whole input (stride 2), concatenates and shuffles with 2 groups.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import ZooModel
from ..errors import InvalidArgumentError
from ..layers.basic import ConvBnAct
from ..layers.shuffle import channel_shuffle
from ..registry import Paper, Published, register

# Table 1: stage output channels (stages 2, 3, 4) for each group count at complexity 1x.
V1_STAGE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                     4: (272, 544, 1088), 8: (384, 768, 1536)}
V1_REPEATS = (4, 8, 4)


class ShuffleUnitV1(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, stride: int, groups: int, first_groups: int) -> None:
        super().__init__()
        self.stride, self.groups = stride, groups
        branch_out = out_chs - in_chs if stride == 2 else out_chs  # stride 2: concat the shortcut
        mid = out_chs // 4
        self.conv1 = ConvBnAct(in_chs, mid, 1, groups=first_groups)
        self.conv_dw = ConvBnAct(mid, mid, 3, stride=stride, groups=mid, act=None)
        self.conv2 = ConvBnAct(mid, branch_out, 1, groups=groups, act=None)
        self.shuffle_groups = first_groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(self.conv1(x), self.shuffle_groups)
        out = self.conv2(self.conv_dw(out))
        if self.stride == 2:
            return F.relu(torch.cat([F.avg_pool2d(x, 3, 2, 1), out], 1))
        return F.relu(x + out)


class ShuffleNetV1(ZooModel):
    classifier_name = "fc"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, groups: int = 3) -> None:
        super().__init__(num_classes, in_chans)
        if groups not in V1_STAGE_CHANNELS:
            raise InvalidArgumentError(
                f"groups must be one of {sorted(V1_STAGE_CHANNELS)} (the paper's Table 1), got {groups}")
        self.groups = groups
        self.conv1 = ConvBnAct(in_chans, 24, 3, stride=2)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        chs, stages = 24, []
        self.feature_info = [dict(num_chs=24, reduction=2, module="conv1")]
        for s, (out, reps) in enumerate(zip(V1_STAGE_CHANNELS[groups], V1_REPEATS)):
            units = [ShuffleUnitV1(chs, out, 2, groups, first_groups=1 if s == 0 else groups)]
            units += [ShuffleUnitV1(out, out, 1, groups, groups) for _ in range(reps - 1)]
            stages.append(nn.Sequential(*units))
            chs = out
            self.feature_info.append(dict(num_chs=out, reduction=2 ** (s + 3), module=f"stages.{s}"))
        self.stages = nn.Sequential(*stages)
        self.num_features = chs
        self.fc = nn.Linear(chs, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.maxpool(self.conv1(x)))  # N x 960 x 7 x 7 (g=3)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)


# ----------------------------------------------------------------------------------------------
def _conv_bn(i: int, o: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers = [nn.Conv2d(i, o, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(o)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


class ShuffleUnitV2(nn.Module):
    """branch1 (stride 2 only): dw 3x3/2 + BN, 1x1 + BN + ReLU.
    branch2: 1x1 + BN + ReLU, dw 3x3/s + BN, 1x1 + BN + ReLU. Indices are torchvision's keys."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = out_chs // 2
        if stride == 1 and in_chs != out_chs:
            raise InvalidArgumentError(f"a stride-1 unit keeps its width; got {in_chs} -> {out_chs}")
        self.branch1 = (nn.Sequential(*_conv_bn(in_chs, in_chs, 3, stride, in_chs, relu=False),
                                      *_conv_bn(in_chs, half, 1)) if stride > 1 else nn.Sequential())
        self.branch2 = nn.Sequential(*_conv_bn(in_chs if stride > 1 else half, half, 1),
                                     *_conv_bn(half, half, 3, stride, half, relu=False),
                                     *_conv_bn(half, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(out, 2)


V2_STAGE_CHANNELS = {  # conv1, stage2, stage3, stage4, conv5 (paper Table 5)
    "x0_5": (24, 48, 96, 192, 1024), "x1_0": (24, 116, 232, 464, 1024),
    "x1_5": (24, 176, 352, 704, 1024), "x2_0": (24, 244, 488, 976, 2048),
}


class ShuffleNetV2(ZooModel):
    classifier_name = "fc"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width: str = "x1_0") -> None:
        super().__init__(num_classes, in_chans)
        if width not in V2_STAGE_CHANNELS:
            raise InvalidArgumentError(f"width must be one of {sorted(V2_STAGE_CHANNELS)}, got {width!r}")
        c = V2_STAGE_CHANNELS[width]
        self.conv1 = nn.Sequential(*_conv_bn(in_chans, c[0], 3, 2))
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        chs = c[0]
        self.feature_info = [dict(num_chs=c[0], reduction=2, module="conv1")]
        for s, (out, reps) in enumerate(zip(c[1:4], (4, 8, 4))):
            units = [ShuffleUnitV2(chs, out, 2)] + [ShuffleUnitV2(out, out, 1) for _ in range(reps - 1)]
            setattr(self, f"stage{s + 2}", nn.Sequential(*units))
            self.feature_info.append(dict(num_chs=out, reduction=2 ** (s + 3), module=f"stage{s + 2}"))
            chs = out
        self.conv5 = nn.Sequential(*_conv_bn(chs, c[4], 1))
        self.feature_info[-1] = dict(num_chs=c[4], reduction=32, module="conv5")
        self.num_features = c[4]
        self.fc = nn.Linear(c[4], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))                      # N x 24 x 56 x 56
        return self.conv5(self.stage4(self.stage3(self.stage2(x))))  # N x 1024 x 7 x 7

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)


def shufflenet_v1(num_classes: int = 1000, in_chans: int = 3, groups: int = 3) -> ShuffleNetV1:
    return ShuffleNetV1(num_classes, in_chans, groups=groups)


def shufflenet_v2(num_classes: int = 1000, in_chans: int = 3, width: str = "x1_0") -> ShuffleNetV2:
    return ShuffleNetV2(num_classes, in_chans, width=width)


register("shufflenet_v1_g3", shufflenet_v1, family="shufflenet", input_size=(3, 224, 224),
         kwargs={"groups": 3},
         paper=Paper("ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile "
                     "Devices", "Zhang, Zhou, Lin, Sun", 2018, "https://arxiv.org/abs/1707.01083"),
         # The paper's Table 1 gives "140 MFLOPs" for every g (a design budget, rounded; ours is
         # 137.46M); the authors' ShuffleNet-Series repo gives the measured figure.
         published=Published(source="Zhang et al., megvii-model/ShuffleNet-Series README (1.0x, g=3)",
                             params=1.9e6, macs=138e6, top1_err=32.2),
         description="ShuffleNet v1 1x, g=3 (groups= any of 1, 2, 3, 4, 8)")
_V2 = Paper("ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
            "Ma, Zhang, Zheng, Sun", 2018, "https://arxiv.org/abs/1807.11164")
# Published figures: torchvision's, from its weights' rows (hub.table). The paper's MFLOPs (Table 8:
# 41, 146, 299, 591) sit 0.7-1.3% above the conv + FC mult-adds of this very architecture (40.5,
# 144.9, 295.8, 583.3M): listed as a disagreement in docs/models-multibranch.md, not registered.
for width in ("x0_5", "x1_0", "x1_5", "x2_0"):
    register(f"shufflenet_v2_{width}", shufflenet_v2, family="shufflenet", input_size=(3, 224, 224),
             kwargs={"width": width}, paper=_V2,
             description=f"ShuffleNet v2 {width.replace('x', '').replace('_', '.')}x, torchvision-compatible")
