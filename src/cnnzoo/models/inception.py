"""BN-Inception and Inception v3, the Inception line after GoogLeNet (v4 and Inception-ResNet-v2
are in inception_v4.py).

  bn_inception         Ioffe & Szegedy 2015 (Inception v2 of the batch-normalization paper, Fig. 5)
  inception_v3         Szegedy et al. 2015 "Rethinking the Inception Architecture"; module names,
                       state_dict and outputs equal torchvision's `inception_v3`

Inception v3 convolutions are layers.basic.basic_conv (conv, no bias, + BN + ReLU, TF-slim's and
torchvision's "BasicConv2d", BN eps 1e-3); BN-Inception's keep BN's default eps. The final pools
are adaptive, so inputs smaller than the native size run in eval mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import AuxModel
from ..errors import InvalidArgumentError
from ..layers.basic import ConvBnAct, basic_conv, basic_conv_same, transform_input
from ..layers.inception import InceptionModule
from ..registry import Paper, register


class InceptionBase(AuxModel):
    """The base of BN-Inception, Inception v3, v4 and Inception-ResNet-v2: subclasses give the
    last feature map with `features(x)` (or override features_with_aux for auxiliary heads) and
    call `_make_head`; the head is global average pool -> dropout -> fc."""

    classifier_name = "fc"

    def _make_head(self, chs: int, num_classes: int, dropout: float) -> None:
        self.num_features = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(chs, num_classes)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def features_with_aux(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.features(x), []


# --------------------------------------------------------------------------------------------
# BN-Inception (Inception v2): the BN paper's Fig. 5 table. Columns: #1x1, #3x3 reduce, #3x3,
# double #3x3 reduce, double #3x3, pool type, pool proj (0 = pass through), stride.
BN_INCEPTION_TABLE: dict[str, tuple] = {
    "3a": (64, 64, 64, 64, 96, "avg", 32, 1),
    "3b": (64, 64, 96, 64, 96, "avg", 64, 1),
    "3c": (0, 128, 160, 64, 96, "max", 0, 2),
    "4a": (224, 64, 96, 96, 128, "avg", 128, 1),
    "4b": (192, 96, 128, 96, 128, "avg", 128, 1),
    "4c": (160, 128, 160, 128, 160, "avg", 128, 1),
    "4d": (96, 128, 192, 160, 192, "avg", 128, 1),
    "4e": (0, 128, 192, 192, 256, "max", 0, 2),
    "5a": (352, 192, 320, 160, 224, "avg", 128, 1),
    "5b": (352, 192, 320, 192, 224, "max", 128, 1),
}


class BNInception(InceptionBase):
    """GoogLeNet with BN, 5x5 replaced by two stacked 3x3 ("double 3x3"), average pooling in most
    modules, and stride-2 modules 3c/4e in place of the max pools between stages.

    Departures (documented): the paper's first conv is marked "*" (a separable conv with depth
    multiplier 8); we use a plain 7x7/2 conv as the Caffe reference port does. The paper's table
    prints 576 outputs for 4c and 4d and 1024 for 4e; its own columns sum to 608, 608 and 1056,
    which is what the network computes (and what the reference port has)."""

    # dropout 0: the BN paper removed GoogLeNet's dropout (Sec. 4.2.1, "Remove Dropout")
    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.0) -> None:
        super().__init__(num_classes, in_chans)
        self.aux_logits = False  # Fig. 5 lists no auxiliary classifiers

        def cbr(i: int, o: int, k: int, stride: int = 1, padding: int = 0) -> ConvBnAct:
            return ConvBnAct(i, o, k, stride=stride, padding=padding)

        self.conv1 = cbr(in_chans, 64, 7, 2, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2_reduce = cbr(64, 64, 1)
        self.conv2 = cbr(64, 192, 3, padding=1)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        chs, blocks = 192, []
        self.feature_info = [dict(num_chs=64, reduction=2, module="conv1"),
                             dict(num_chs=192, reduction=4, module="conv2")]
        for c1, c3r, c3, d3r, d3, pool, proj, stride in BN_INCEPTION_TABLE.values():
            if stride == 2:
                self.feature_info.append(dict(num_chs=chs, reduction=self.feature_info[-1]["reduction"] * 2,
                                              module=f"inception.{len(blocks) - 1}"))
            block = InceptionModule(chs, c1, c3r, c3, d3r, d3, proj, conv=cbr, double=True,
                                    pool=pool, stride=stride)
            blocks.append(block)
            chs = block.out_chs
        self.inception = nn.Sequential(*blocks)
        self.feature_info.append(dict(num_chs=chs, reduction=32, module=f"inception.{len(blocks) - 1}"))
        self._make_head(chs, num_classes, dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))                  # N x 64 x 56 x 56
        x = self.pool2(self.conv2(self.conv2_reduce(x)))  # N x 192 x 28 x 28
        return self.inception(x)                       # N x 1024 x 7 x 7


# --------------------------------------------------------------------------------------------
# Inception v3. Module and branch names are torchvision's (they are its checkpoint keys).
class InceptionA(nn.Module):
    """35x35 module (paper Fig. 5): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, in_chs: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = basic_conv(in_chs, 64, 1)
        self.branch5x5_1 = basic_conv(in_chs, 48, 1)
        self.branch5x5_2 = basic_conv_same(48, 64, 5)  # torchvision keeps a 5x5 here (the paper: two 3x3)
        self.branch3x3dbl_1 = basic_conv(in_chs, 64, 1)
        self.branch3x3dbl_2 = basic_conv_same(64, 96, 3)
        self.branch3x3dbl_3 = basic_conv_same(96, 96, 3)
        self.branch_pool = basic_conv(in_chs, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(F.avg_pool2d(x, 3, 1, 1)),
        ], 1)


class InceptionB(nn.Module):
    """35 -> 17 grid reduction (Fig. 10): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branch3x3 = basic_conv(in_chs, 384, 3, stride=2)
        self.branch3x3dbl_1 = basic_conv(in_chs, 64, 1)
        self.branch3x3dbl_2 = basic_conv_same(64, 96, 3)
        self.branch3x3dbl_3 = basic_conv(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, 2),
        ], 1)


class InceptionC(nn.Module):
    """17x17 module with factorised 7x7 (Fig. 6): 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | pool-1x1."""

    def __init__(self, in_chs: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = basic_conv(in_chs, 192, 1)
        self.branch7x7_1 = basic_conv(in_chs, c7, 1)
        self.branch7x7_2 = basic_conv_same(c7, c7, (1, 7))
        self.branch7x7_3 = basic_conv_same(c7, 192, (7, 1))
        self.branch7x7dbl_1 = basic_conv(in_chs, c7, 1)
        self.branch7x7dbl_2 = basic_conv_same(c7, c7, (7, 1))
        self.branch7x7dbl_3 = basic_conv_same(c7, c7, (1, 7))
        self.branch7x7dbl_4 = basic_conv_same(c7, c7, (7, 1))
        self.branch7x7dbl_5 = basic_conv_same(c7, 192, (1, 7))
        self.branch_pool = basic_conv(in_chs, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b2 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b3 = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b3 = layer(b3)
        return torch.cat([self.branch1x1(x), b2, b3, self.branch_pool(F.avg_pool2d(x, 3, 1, 1))], 1)


class InceptionD(nn.Module):
    """17 -> 8 grid reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branch3x3_1 = basic_conv(in_chs, 192, 1)
        self.branch3x3_2 = basic_conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = basic_conv(in_chs, 192, 1)
        self.branch7x7x3_2 = basic_conv_same(192, 192, (1, 7))
        self.branch7x7x3_3 = basic_conv_same(192, 192, (7, 1))
        self.branch7x7x3_4 = basic_conv(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b2 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b2, F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):
    """8x8 module with expanded filter banks (Fig. 7): the 3x3s split into parallel 1x3 and 3x1."""

    def __init__(self, in_chs: int) -> None:
        super().__init__()
        self.branch1x1 = basic_conv(in_chs, 320, 1)
        self.branch3x3_1 = basic_conv(in_chs, 384, 1)
        self.branch3x3_2a = basic_conv_same(384, 384, (1, 3))
        self.branch3x3_2b = basic_conv_same(384, 384, (3, 1))
        self.branch3x3dbl_1 = basic_conv(in_chs, 448, 1)
        self.branch3x3dbl_2 = basic_conv_same(448, 384, 3)
        self.branch3x3dbl_3a = basic_conv_same(384, 384, (1, 3))
        self.branch3x3dbl_3b = basic_conv_same(384, 384, (3, 1))
        self.branch_pool = basic_conv(in_chs, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b2 = self.branch3x3_1(x)
        b3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            torch.cat([self.branch3x3_2a(b2), self.branch3x3_2b(b2)], 1),
            torch.cat([self.branch3x3dbl_3a(b3), self.branch3x3dbl_3b(b3)], 1),
            self.branch_pool(F.avg_pool2d(x, 3, 1, 1)),
        ], 1)


class InceptionV3Aux(nn.Module):
    """Auxiliary head on the 17x17 grid: avgpool 5x5/3, 1x1 conv 128, 5x5 conv 768, FC.
    (torchvision: BN in the aux convs too, which the paper credits for its regularising effect.)"""

    def __init__(self, in_chs: int, num_classes: int) -> None:
        super().__init__()
        self.conv0 = basic_conv(in_chs, 128, 1)
        self.conv1 = basic_conv(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(F.avg_pool2d(x, 5, 3)))  # N x 768 x 1 x 1 at 299x299
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InceptionV3(InceptionBase):
    """torchvision's Inception3 (state_dict-compatible). `transform_input` re-normalises
    ImageNet-normalised input to [-1, 1] as torchvision's does; off by default (torchvision turns
    it on only when it loads its pretrained weights)."""

    aux_classifier_names = ("AuxLogits.fc",)
    # TF-slim's train_image_classifier.py weights the aux loss 0.4; torchvision's reference
    # classification script applies no aux loss at all (see docs/models-multibranch.md).
    aux_weight = 0.4

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                 transform_input: bool = False, dropout: float = 0.5) -> None:
        super().__init__(num_classes, in_chans)
        if transform_input and in_chans != 3:
            raise InvalidArgumentError("transform_input re-normalises RGB input; it needs in_chans=3")
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.Conv2d_1a_3x3 = basic_conv(in_chans, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = basic_conv(32, 32, 3)
        self.Conv2d_2b_3x3 = basic_conv(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, 2)
        self.Conv2d_3b_1x1 = basic_conv(64, 80, 1)
        self.Conv2d_4a_3x3 = basic_conv(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(3, 2)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.AuxLogits = InceptionV3Aux(768, num_classes) if aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self._make_head(2048, num_classes, dropout)
        self.feature_info = [dict(num_chs=64, reduction=2, module="Conv2d_2b_3x3"),
                             dict(num_chs=192, reduction=4, module="Conv2d_4a_3x3"),
                             dict(num_chs=288, reduction=8, module="Mixed_5d"),
                             dict(num_chs=768, reduction=16, module="Mixed_6e"),
                             dict(num_chs=2048, reduction=32, module="Mixed_7c")]
        _trunc_normal_init(self)

    def features_with_aux(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.transform_input:
            x = transform_input(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # N x 64 x 147 x 147
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(x)))        # N x 192 x 71 x 71
        x = self.maxpool2(x)                                                # N x 192 x 35 x 35
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))                  # N x 288 x 35 x 35
        x = self.Mixed_6a(x)                                                # N x 768 x 17 x 17
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        aux = [self.AuxLogits(x)] if with_aux and self.AuxLogits is not None else []
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))                  # N x 2048 x 8 x 8
        return x, aux


def _trunc_normal_init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.1, a=-2, b=2)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------------------------
def bn_inception(num_classes: int = 1000, in_chans: int = 3) -> BNInception:
    return BNInception(num_classes, in_chans)


def inception_v3(num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                 transform_input: bool = False) -> InceptionV3:
    return InceptionV3(num_classes, in_chans, aux_logits=aux_logits, transform_input=transform_input)


register("bn_inception", bn_inception, family="inception", input_size=(3, 224, 224),
         paper=Paper("Batch Normalization: Accelerating Deep Network Training by Reducing Internal "
                     "Covariate Shift", "Ioffe, Szegedy", 2015, "https://arxiv.org/abs/1502.03167"),
         description="Inception v2 (BN-Inception): BN, double 3x3, stride-2 inception modules")
register("inception_v3", inception_v3, family="inception", input_size=(3, 299, 299), recipe="googlenet",
         paper=Paper("Rethinking the Inception Architecture for Computer Vision", "Szegedy, Vanhoucke, "
                     "Ioffe, Shlens, Wojna", 2015, "https://arxiv.org/abs/1512.00567"),
         description="Inception v3, torchvision-compatible (factorised 7x1/1x7 convs, aux head)")
