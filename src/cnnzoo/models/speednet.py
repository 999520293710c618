"""Small nets chosen together with the `speedrun` recipes (train/recipes.py): the most accuracy
per second of training, not a paper's architecture.

`speednet` (MNIST, 28x28, no padding): LeNet's conv5 - pool - conv5 - pool layout with batch
norm, 16 and 32 maps and a linear output. Each block pools before it normalises (conv - max pool
- BN - ReLU, as airbench's blocks do), so batch norm and ReLU run on a quarter of the map: a
training step 1.2-1.3x faster than conv - BN - ReLU - pool. Widths and layout were chosen on a
validation split against wider (32/64) and narrower (8/16, 12/24) nets and the BN-first layout
(benchmarks/speednet_widths_val.py, docs/speed.md). 1.05M multiply-adds, 18.4K parameters.

`speednet_fashion` (Fashion-MNIST, 28x28): the same pool-first blocks, three of them with padded
3x3 convs at 24, 48, 96 maps (61K parameters, 4.2M multiply-adds), chosen with the
`speedrun_fashion` recipe on a validation split (benchmarks/speedrun_fashion_val.py) to beat the
Fashion-MNIST README's "2 conv, <100K parameters" row (92.5% test) in 60 s on 2 CPU cores.

`speednet_cifar` (CIFAR-10, 32x32): the layout of Jordan's airbench (2024): a stem conv, then
three blocks of conv - max pool - BN - GELU - conv - BN - GELU at 64, 256, 256 maps, a global
max pool and a scaled linear output. Without airbench's whitening init, lookahead and TTA.
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract import ZooModel
from ..registry import Paper, register

LENET = Paper(title="Gradient-Based Learning Applied to Document Recognition",
              authors="Y. LeCun, L. Bottou, Y. Bengio, P. Haffner", year=1998,
              url="https://doi.org/10.1109/5.726791")
AIRBENCH = Paper(title="94% on CIFAR-10 in 3.29 Seconds on a Single GPU", authors="K. Jordan",
                 year=2024, url="https://arxiv.org/abs/2404.00498")


def _conv_bn(cin: int, cout: int, k: int, padding: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=padding, bias=False), nn.BatchNorm2d(cout)]


def _block(cin: int, cout: int, pool_first: bool, kernel: int = 5) -> list[nn.Module]:
    conv, bn = _conv_bn(cin, cout, kernel, padding=0 if kernel == 5 else kernel // 2)
    return [conv, nn.MaxPool2d(2), bn, nn.ReLU(inplace=True)] if pool_first else \
        [conv, bn, nn.ReLU(inplace=True), nn.MaxPool2d(2)]


def _side(kernel: int, blocks: int, size: int = 28) -> int:
    """The map's side after `blocks` blocks on a 28x28 input (5x5: unpadded; 3x3: padded)."""
    for _ in range(blocks):
        size = (size - 4 if kernel == 5 else size) // 2
    return size


class SpeedNet(ZooModel):
    """conv5 16 - max pool - BN - ReLU - conv5 32 - max pool - BN - ReLU - linear.
    `pool_first=False` gives the BN-first layout it was compared with (conv - BN - ReLU - pool);
    `widths` may name more blocks and `kernel=3` pads its convs (the Fashion-MNIST variant)."""

    classifier_name = "fc"

    def __init__(self, num_classes: int = 10, in_chans: int = 1, widths: tuple[int, ...] = (16, 32),
                 pool_first: bool = True, kernel: int = 5) -> None:
        super().__init__(num_classes, in_chans)
        layers: list[nn.Module] = []
        self.feature_info = []
        for i, (cin, cout) in enumerate(zip((in_chans, *widths[:-1]), widths)):
            layers += _block(cin, cout, pool_first, kernel)
            self.feature_info.append(dict(num_chs=cout, reduction=2 ** (i + 1), module=f"features.{len(layers) - 1}"))
        self.features = nn.Sequential(*layers)
        self.side = _side(kernel, len(widths))  # 4 for the 28x28 two-block 5x5 net
        # the side's maps at 28x28 (identity there); larger inputs are averaged down to it
        self.pool = nn.AdaptiveAvgPool2d(self.side)
        self.num_features = widths[-1]
        self.head_hidden_size = widths[-1] * self.side ** 2  # the flattened maps the linear output reads
        self.fc = nn.Linear(self.head_hidden_size, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        # the pool is an identity at 28x28 but costs a quarter of a CPU training step in
        # channels_last (a copy forward and backward), so it runs only where it averages
        return x if x.shape[-2:] == (self.side, self.side) else self.pool(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.flatten(1)
        return x if pre_logits else self.fc(x)


class SpeedNetCifar(ZooModel):
    """stem conv 32 - three blocks (64, 256, 256) - global max pool - linear / 9."""

    classifier_name = "fc"

    def __init__(self, num_classes: int = 10, in_chans: int = 3, widths: tuple[int, ...] = (64, 256, 256)) -> None:
        super().__init__(num_classes, in_chans)
        layers: list[nn.Module] = [*_conv_bn(in_chans, 32, 3, 1), nn.GELU()]
        cin = 32
        self.feature_info = []
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(w),
                       nn.GELU(), *_conv_bn(w, w, 3, 1), nn.GELU()]
            self.feature_info.append(dict(num_chs=w, reduction=2 ** (i + 1), module=f"features.{len(layers) - 1}"))
            cin = w
        self.features = nn.Sequential(*layers)
        self.num_features = cin
        self.fc = nn.Linear(cin, num_classes, bias=False) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.amax((2, 3))
        # airbench scales the logits down (1/9): a calmer start with its high learning rate
        return x if pre_logits else self.fc(x) / 9


def speednet(num_classes: int = 10, in_chans: int = 1) -> SpeedNet:
    return SpeedNet(num_classes, in_chans)


FASHION_WIDTHS, FASHION_KERNEL = (24, 48, 96), 3  # chosen on validation: benchmarks/speedrun_fashion_val.py


def speednet_fashion(num_classes: int = 10, in_chans: int = 1) -> SpeedNet:
    return SpeedNet(num_classes, in_chans, widths=FASHION_WIDTHS, kernel=FASHION_KERNEL)


# which net `cnnzoo bench to-accuracy` races on which data kind (the recipe is the net's own)
SPEEDRUN_MODELS = {"fashion-mnist": "speednet_fashion"}


def speedrun_model(data_kind: str) -> str:
    """The speedrun net for a data kind: speednet_fashion on Fashion-MNIST, else speednet."""
    return SPEEDRUN_MODELS.get(data_kind, "speednet")


def speednet_cifar(num_classes: int = 10, in_chans: int = 3) -> SpeedNetCifar:
    return SpeedNetCifar(num_classes, in_chans)


register("speednet", speednet, family="speedrun", paper=LENET, input_size=(1, 28, 28), num_classes=10,
         recipe="speedrun",
         description="LeNet layout with batch norm, 16/32 maps, 28x28: the MNIST speedrun's net")
register("speednet_fashion", speednet_fashion, family="speedrun", paper=LENET, input_size=(1, 28, 28),
         num_classes=10, recipe="speedrun_fashion",
         description="speednet with three 3x3 blocks (24/48/96): the Fashion-MNIST speedrun's net")
register("speednet_cifar", speednet_cifar, family="speedrun", paper=AIRBENCH, input_size=(3, 32, 32),
         num_classes=10, recipe="speedrun_cifar",
         description="airbench's layout (64/256/256, GELU, BN): the CIFAR-10 speedrun's net")
