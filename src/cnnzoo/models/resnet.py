"""ResNet and its ImageNet descendants: v1.5 (torchvision), v1 (the paper), pre-activation,
ResNeXt, Wide ResNet, SE-ResNet/SE-ResNeXt. One model class (`ResNet`, also used by the CIFAR
ResNets, Wide ResNets and PyramidNets) and one ImageNet builder fed by the table below.

Module names are torchvision's (conv1, bn1, layer1.0.conv1, ..., fc): a torchvision
state_dict loads strictly into the compatible models.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..contract import ZooModel
from ..errors import InvalidArgumentError
from ..layers.basic import he_init
from ..layers.residual import BLOCKS
from ..registry import Paper, Published, register


class ResNet(ZooModel):
    """Stem -> stages of residual blocks -> (BN, ReLU for pre-activation nets) -> pool -> fc.

    `stages` lists, per stage, the `planes` of each block (a list, so PyramidNet's per-block
    widths fit too); the first stage keeps the stem's resolution, the others halve it.
    """

    classifier_name = "fc"

    def __init__(self, num_classes: int, in_chans: int, *, block: str,
                 stages: Sequence[Sequence[int]], block_kwargs: dict[str, Any] | None = None,
                 stem: str = "imagenet", stem_width: int = 64, stem_norm: str = "bn_relu",
                 final_norm: bool = False, drop_rate: float = 0.0,
                 zero_init_residual: bool = False) -> None:
        super().__init__(num_classes, in_chans)
        block_cls = BLOCKS[block]
        if stem == "imagenet":  # 7x7/2 conv, 3x3/2 max pool: 224 -> 56
            self.conv1 = nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=False)
        else:  # "cifar": one 3x3 conv, full resolution
            self.conv1 = nn.Conv2d(in_chans, stem_width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width) if stem_norm != "none" else nn.Identity()
        self.relu = nn.ReLU(inplace=True) if stem_norm == "bn_relu" else nn.Identity()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()

        in_chs, reduction = stem_width, (4 if stem == "imagenet" else 1)
        for i, planes_list in enumerate(stages):
            blocks = []
            for j, planes in enumerate(planes_list):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block_cls(in_chs, planes, stride, **(block_kwargs or {})))
                in_chs = planes * block_cls.expansion
            reduction *= 2 if i > 0 else 1
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=in_chs, reduction=reduction, module=f"layer{i + 1}"))
        self.num_stages = len(stages)
        # Pre-activation nets end on an addition: normalise and activate before pooling.
        self.bn_final = nn.BatchNorm2d(in_chs) if final_norm else nn.Identity()
        self.relu_final = nn.ReLU(inplace=True) if final_norm else nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(in_chs, num_classes)
        self.num_features = in_chs

        he_init(self)
        if zero_init_residual:  # Goyal et al. / "Bag of Tricks": each block starts as identity
            for m in self.modules():
                if hasattr(m, "zero_init_last"):
                    m.zero_init_last()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # imagenet: N x 64 x 56 x 56
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.relu_final(self.bn_final(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(self.drop(x))


def resnet(num_classes: int = 1000, in_chans: int = 3, *, layers: Sequence[int] = (3, 4, 6, 3),
           block: str = "bottleneck", groups: int = 1, width_per_group: int = 64,
           stride_in_1x1: bool = False, se_reduction: int = 0,
           zero_init_residual: bool = False, shortcut: str = "B") -> ResNet:
    """ImageNet ResNets: 4 stages of 64/128/256/512 planes after a 7x7 stem.

    block: basic | bottleneck (post-activation, torchvision's) | preact_basic | preact_bottleneck.
    shortcut: B (projection where the shape changes) or none (He et al.'s plain networks).
    """
    if shortcut not in ("B", "none"):
        raise InvalidArgumentError(f"shortcut must be 'B' (projection) or 'none' (plain), got {shortcut!r}")
    if shortcut == "none" and block.startswith("preact"):
        raise InvalidArgumentError("plain networks (shortcut='none') use post-activation blocks")
    if block not in BLOCKS:
        raise InvalidArgumentError(f"unknown block {block!r}; choose from {', '.join(BLOCKS)}")
    if not layers or any(not isinstance(n, int) or n < 1 for n in layers):
        raise InvalidArgumentError(f"layers must be positive block counts per stage, got {layers!r}")
    bottleneck = block.endswith("bottleneck")
    if not bottleneck and (groups != 1 or width_per_group != 64 or stride_in_1x1):
        raise InvalidArgumentError(
            f"groups, width_per_group and stride_in_1x1 apply to bottleneck blocks only (block={block!r})")
    if block.startswith("preact") and (se_reduction or groups != 1 or width_per_group != 64 or stride_in_1x1):
        raise InvalidArgumentError("pre-activation blocks take no SE, groups, width or stride placement")
    kw: dict[str, Any] = {"shortcut": shortcut}
    if block == "bottleneck":
        kw.update(groups=groups, base_width=width_per_group, stride_in_1x1=stride_in_1x1)
    if se_reduction:
        kw["se_reduction"] = se_reduction
    stages = [[64 * 2 ** i] * n for i, n in enumerate(layers)]
    preact = block.startswith("preact")
    # Pre-activation stem: conv + max pool only; the first block's BN-ReLU follows (max pool
    # commutes with ReLU), as in He et al.'s "no_preact" first unit and timm's ResNetV2.
    return ResNet(num_classes, in_chans, block=block, stages=stages, block_kwargs=kw,
                  stem="imagenet", stem_width=64, stem_norm="none" if preact else "bn_relu",
                  final_norm=preact, zero_init_residual=zero_init_residual)


HE2015 = Paper("Deep Residual Learning for Image Recognition", "He, Zhang, Ren, Sun", 2016,
               "https://arxiv.org/abs/1512.03385")
HE2016 = Paper("Identity Mappings in Deep Residual Networks", "He, Zhang, Ren, Sun", 2016,
               "https://arxiv.org/abs/1603.05027")
XIE2017 = Paper("Aggregated Residual Transformations for Deep Neural Networks",
                "Xie, Girshick, Dollar, Tu, He", 2017, "https://arxiv.org/abs/1611.05431")
ZAGORUYKO2016 = Paper("Wide Residual Networks", "Zagoruyko, Komodakis", 2016,
                      "https://arxiv.org/abs/1605.07146")
HU2018 = Paper("Squeeze-and-Excitation Networks", "Hu, Shen, Albanie, Sun, Wu", 2018,
               "https://arxiv.org/abs/1709.01507")

# name: (arch kwargs, paper, the papers' published figures, description); torchvision's figures
# come from its weights' rows (hub.table)
IMAGENET_RESNETS: dict[str, tuple[dict[str, Any], Paper, tuple[Published, ...], str]] = {
    "resnet18": (dict(layers=(2, 2, 2, 2), block="basic"), HE2015,
                 (Published("He et al. 2015, Table 1", macs=1.8e9),),
                 "ResNet-18, basic blocks"),
    "resnet34": (dict(layers=(3, 4, 6, 3), block="basic"), HE2015,
                 (Published("He et al. 2015, Table 1", macs=3.6e9),),
                 "ResNet-34, basic blocks"),
    "resnet50": (dict(layers=(3, 4, 6, 3)), HE2015,
                 (),
                 "ResNet-50 v1.5 (stride on the 3x3, torchvision-compatible)"),
    "resnet101": (dict(layers=(3, 4, 23, 3)), HE2015,
                  (),
                  "ResNet-101 v1.5 (torchvision-compatible)"),
    "resnet152": (dict(layers=(3, 8, 36, 3)), HE2015,
                  (),
                  "ResNet-152 v1.5 (torchvision-compatible)"),
    "resnet50_v1": (dict(layers=(3, 4, 6, 3), stride_in_1x1=True), HE2015,
                    (Published("He et al. 2015, Table 1 / seed 003", macs=3.8e9),),
                    "ResNet-50 as in the paper (stride on the first 1x1)"),
    "resnet101_v1": (dict(layers=(3, 4, 23, 3), stride_in_1x1=True), HE2015,
                     (Published("He et al. 2015, Table 1 / seed 003", macs=7.6e9),),
                     "ResNet-101 as in the paper (stride on the first 1x1)"),
    "resnet152_v1": (dict(layers=(3, 8, 36, 3), stride_in_1x1=True), HE2015,
                     (Published("He et al. 2015, Table 1 / seed 003", macs=11.3e9),),
                     "ResNet-152 as in the paper (stride on the first 1x1)"),
    # He et al. 2015's plain baselines: the same layers without any shortcut (Table 2, Fig. 4).
    "plain18": (dict(layers=(2, 2, 2, 2), block="basic", shortcut="none"), HE2015,
                (Published("He et al. 2015, Table 2 (10-crop)", top1_err=27.94),),
                "plain-18: ResNet-18's layers without shortcuts (the degradation baseline)"),
    "plain34": (dict(layers=(3, 4, 6, 3), block="basic", shortcut="none"), HE2015,
                (Published("He et al. 2015, Table 2 (10-crop)", macs=3.6e9, top1_err=28.54),),
                "plain-34: ResNet-34's layers without shortcuts (worse than plain-18: degradation)"),
    "preact_resnet18": (dict(layers=(2, 2, 2, 2), block="preact_basic"), HE2016, (),
                        "pre-activation ResNet-18 (BN-ReLU-conv blocks, no ReLU after the sum)"),
    "preact_resnet50": (dict(layers=(3, 4, 6, 3), block="preact_bottleneck"), HE2016, (),
                        "pre-activation ResNet-50"),
    "resnext50_32x4d": (dict(layers=(3, 4, 6, 3), groups=32, width_per_group=4), XIE2017,
                        (Published("Xie et al. 2017, Table 3", params=25.0e6, macs=4.2e9, top1_err=22.2),
                         Published("seed 004 summary table", params=25e6, macs=4.2e9, top1_err=24.4,
                                   top5_err=6.6)),
                        "ResNeXt-50 (32x4d), torchvision-compatible"),
    "resnext101_32x4d": (dict(layers=(3, 4, 23, 3), groups=32, width_per_group=4), XIE2017,
                         (Published("Xie et al. 2017, Table 5", top1_err=21.2),
                          Published("seed 004 summary table", params=44.3e6, macs=7.99e9,
                                    top1_err=22.2, top5_err=5.7)),
                         "ResNeXt-101 (32x4d), the seed's ResNeXt-101 row"),
    "resnext101_32x8d": (dict(layers=(3, 4, 23, 3), groups=32, width_per_group=8), XIE2017,
                         (),
                         "ResNeXt-101 (32x8d), torchvision-compatible"),
    "resnext101_64x4d": (dict(layers=(3, 4, 23, 3), groups=64, width_per_group=4), XIE2017,
                         (Published("Xie et al. 2017, Table 5", top1_err=20.4),),
                         "ResNeXt-101 (64x4d), torchvision-compatible"),
    "wide_resnet50_2": (dict(layers=(3, 4, 6, 3), width_per_group=128), ZAGORUYKO2016,
                        (),
                        "Wide ResNet-50-2 (bottleneck 3x3 twice as wide), torchvision-compatible"),
    "wide_resnet101_2": (dict(layers=(3, 4, 23, 3), width_per_group=128), ZAGORUYKO2016,
                         (),
                         "Wide ResNet-101-2, torchvision-compatible"),
    "se_resnet50": (dict(layers=(3, 4, 6, 3), stride_in_1x1=True, se_reduction=16), HU2018,
                    (Published("Hu et al. 2018, Table 2", params=28.1e6, macs=3.87e9, top1_err=23.29,
                               top5_err=6.62),),
                    "SE-ResNet-50 (SE after the last BN of every bottleneck, r=16)"),
    "se_resnext50_32x4d": (dict(layers=(3, 4, 6, 3), groups=32, width_per_group=4, se_reduction=16),
                           HU2018,
                           (Published("Hu et al. 2018, Table 2", params=27.6e6, macs=4.25e9,
                                      top1_err=21.10, top5_err=5.49),),
                           "SE-ResNeXt-50 (32x4d), r=16"),
}

for _name, (_kw, _paper, _pub, _desc) in IMAGENET_RESNETS.items():
    register(_name, resnet, family="resnet", paper=_paper, input_size=(3, 224, 224), kwargs=_kw,
             published=_pub, description=_desc, recipe="resnet" if _name.startswith("resnet") else "fast")
