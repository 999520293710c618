"""DenseNet-BC (Huang et al. 2017): every layer of a dense block sees the concatenation of all
earlier feature maps. Module names are torchvision's (features.denseblock1.denselayer1.conv1,
..., classifier): its state_dicts load strictly and give identical outputs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from ..contract import ZooModel
from ..errors import InvalidArgumentError
from ..layers.basic import he_init
from ..registry import Paper, register


class DenseLayer(nn.Module):
    """BN, ReLU, 1x1 conv (bn_size * k), BN, ReLU, 3x3 conv (k): adds k channels."""

    def __init__(self, in_chs: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_chs)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_chs, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(self.relu1(self.norm1(x)))  # bottleneck: BN-ReLU-1x1 ("-B")
        return self.drop(self.conv2(self.relu2(self.norm2(x))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, in_chs: int, growth_rate: int, bn_size: int,
                 drop_rate: float) -> None:
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(in_chs + i * growth_rate, growth_rate, bn_size, drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN, ReLU, 1x1 conv (compression: halves the channels, "-C"), 2x2 average pool."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__(OrderedDict(
            norm=nn.BatchNorm2d(in_chs), relu=nn.ReLU(inplace=True),
            conv=nn.Conv2d(in_chs, out_chs, 1, bias=False), pool=nn.AvgPool2d(2, 2)))


class DenseNet(ZooModel):
    classifier_name = "classifier"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, *, growth_rate: int = 32,
                 block_config: Sequence[int] = (6, 12, 24, 16), num_init_features: int = 64,
                 bn_size: int = 4, compression: float = 0.5, drop_rate: float = 0.0) -> None:
        super().__init__(num_classes, in_chans)
        if not block_config or any(not isinstance(n, int) or n < 1 for n in block_config):
            raise InvalidArgumentError(f"block_config must list positive layer counts, got {block_config!r}")
        if not 0 < compression <= 1:
            raise InvalidArgumentError(f"compression must be in (0, 1], got {compression!r}")
        self.features = nn.Sequential(OrderedDict(
            conv0=nn.Conv2d(in_chans, num_init_features, 7, stride=2, padding=3, bias=False),
            norm0=nn.BatchNorm2d(num_init_features), relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool2d(3, stride=2, padding=1)))  # 224 -> 56
        chs, reduction = num_init_features, 4
        for i, n in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(n, chs, growth_rate, bn_size, drop_rate))
            chs += n * growth_rate
            self.feature_info.append(dict(num_chs=chs, reduction=reduction, module=f"features.denseblock{i + 1}"))
            if i != len(block_config) - 1:
                out = int(chs * compression)
                self.features.add_module(f"transition{i + 1}", Transition(chs, out))
                chs, reduction = out, reduction * 2
        self.features.add_module("norm5", nn.BatchNorm2d(chs))
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(chs, num_classes)
        self.num_features = chs
        he_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.features(x))  # N x 1024 x 7 x 7 for DenseNet-121 at 224

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.classifier(x)


def densenet(num_classes: int = 1000, in_chans: int = 3, *, growth_rate: int = 32,
             block_config: Sequence[int] = (6, 12, 24, 16), num_init_features: int = 64,
             bn_size: int = 4, compression: float = 0.5, drop_rate: float = 0.0) -> DenseNet:
    return DenseNet(num_classes, in_chans, growth_rate=growth_rate, block_config=tuple(block_config),
                    num_init_features=num_init_features, bn_size=bn_size, compression=compression,
                    drop_rate=drop_rate)


HUANG2017 = Paper("Densely Connected Convolutional Networks", "Huang, Liu, van der Maaten, Weinberger",
                  2017, "https://arxiv.org/abs/1608.06993")
# name: (growth rate k, layers per block, stem width); torchvision's published figures come
# from its weights' rows (hub.table)
DENSENETS = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
}

for _name, (_k, _cfg, _init) in DENSENETS.items():
    register(_name, densenet, family="densenet", paper=HUANG2017, input_size=(3, 224, 224),
             kwargs=dict(growth_rate=_k, block_config=_cfg, num_init_features=_init),
             description=f"DenseNet-BC-{_name[8:]} (k={_k}), torchvision-compatible")
