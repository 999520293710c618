"""The small networks the experiments train on MNIST in minutes: each pair differs in exactly
the one thing an experiment is about (LRN, one 5x5 vs two 3x3, an auxiliary classifier).
Builders take (num_classes, in_chans, **arch) like the registry's."""

from __future__ import annotations

import torch
from torch import nn

from ..contract import AuxOutputs
from ..layers.basic import LocalResponseNorm
from ..layers.inception import InceptionModule

# GoogLeNet's inception (3a): #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj (seed 001)
INCEPTION_3A = (64, 96, 128, 16, 32, 32)
INCEPTION_3A_IN = 192  # 3a takes conv2/pool2's 28x28x192 (its 28x28x256 is the output)


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
    """Conv + ReLU, GoogLeNet's (no batch norm)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding), nn.ReLU(inplace=True))


def naive_inception(in_chs: int, c1x1: int, c3x3: int, c5x5: int) -> nn.Module:
    """Szegedy et al.'s Fig. 2a: 1x1, 3x3 and 5x5 convs and a 3x3 max pool straight on the input."""
    return _NaiveInception(in_chs, c1x1, c3x3, c5x5)


class _NaiveInception(nn.Module):
    def __init__(self, in_chs: int, c1x1: int, c3x3: int, c5x5: int) -> None:
        super().__init__()
        self.branch1 = _conv(in_chs, c1x1, 1)
        self.branch2 = _conv(in_chs, c3x3, 3, padding=1)
        self.branch3 = _conv(in_chs, c5x5, 5, padding=2)
        self.branch4 = nn.MaxPool2d(3, 1, padding=1, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def reduced_inception(in_chs: int = INCEPTION_3A_IN, spec: tuple[int, ...] = INCEPTION_3A) -> nn.Module:
    """Fig. 2b: 1x1 reductions before the 3x3 and 5x5 convs and after the pool (the zoo's module)."""
    return InceptionModule(in_chs, *spec, conv=_conv)


def one_5x5(c: int, bias: bool = False) -> nn.Module:
    """Conv(5x5, C -> C), padding 2: 25 C^2 weights."""
    return nn.Conv2d(c, c, 5, padding=2, bias=bias)


def two_3x3(c: int, bias: bool = False) -> nn.Module:
    """Conv(3x3, C -> C), ReLU, Conv(3x3, C -> C): 18 C^2 weights, the same 5x5 receptive field."""
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=bias), nn.ReLU(inplace=True),
                         nn.Conv2d(c, c, 3, padding=1, bias=bias))


class SmallConvNet(nn.Module):
    """stem 3x3 conv -> [block, ReLU, 2x2 max pool] x 2 -> FC (28x28 in: a 7x7 map, as LeNet).

    block: '5x5' (one 5x5 conv) or '3x3' (two 3x3 convs); lrn=True puts AlexNet's LRN after
    each block's ReLU (VGG's A-LRN puts it after the first layer)."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, *, block: str = "3x3",
                 width: int = 32, lrn: bool = False) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        make = two_3x3 if block == "3x3" else one_5x5
        layers: list[nn.Module] = [nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(2):
            layers += [make(width, bias=True), nn.ReLU(inplace=True)]
            if lrn:
                layers.append(LocalResponseNorm())
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(width * 7 * 7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


class SmallGoogLeNet(nn.Module):
    """A GoogLeNet in miniature for 28x28 digits: stem conv 3x3 -> pool -> inception ->
    [auxiliary classifier] -> pool -> inception -> inception -> global average pool -> FC.
    In training mode with aux=True it returns AuxOutputs(logits, (aux,), 0.3) as GoogLeNet does;
    the auxiliary head (avg pool to 4x4, 1x1 conv, FC, dropout 0.7, FC) is discarded in eval."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, *, aux: bool = True) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.stem = nn.Sequential(_conv(in_chans, 32, 3, padding=1), nn.MaxPool2d(2))  # 14x14
        self.inc1 = InceptionModule(32, 16, 16, 32, 8, 16, 16, conv=_conv)  # 80 channels
        self.pool = nn.MaxPool2d(2)  # 7x7
        self.inc2 = InceptionModule(80, 32, 32, 48, 8, 24, 24, conv=_conv)  # 128
        self.inc3 = InceptionModule(128, 32, 32, 48, 8, 24, 24, conv=_conv)  # 128
        self.fc = nn.Linear(128, num_classes)
        self.aux = nn.Sequential(nn.AdaptiveAvgPool2d(4), _conv(80, 32, 1), nn.Flatten(),
                                 nn.Linear(32 * 16, 128), nn.ReLU(inplace=True), nn.Dropout(0.7),
                                 nn.Linear(128, num_classes)) if aux else None

    def forward(self, x: torch.Tensor) -> torch.Tensor | AuxOutputs:
        x = self.inc1(self.stem(x))
        side = self.aux(x) if self.aux is not None and self.training else None
        logits = self.fc(self.inc3(self.inc2(self.pool(x))).mean((2, 3)))
        return AuxOutputs(logits, (side,), 0.3) if side is not None else logits


# nin_cifar's mlpconv blocks (models/nin.py): spatial conv, two 1x1 widths, pooling after it
NIN_BLOCKS = ((5, 2, (192, 160, 96), "max"), (5, 2, (192, 192, 192), "avg"), (3, 1, (192, 192, None), None))


class SmallNiN(nn.Module):
    """nin_cifar's layout at `scale` x its widths (scale=1: the authors' widths), with its 1x1
    layers (one_by_one=True) or without them: then each block is its spatial conv alone. The
    last 1x1 conv (one map per class, then global average pooling) stays in both: it is the
    classifier, the part a conventional net has as its fully connected layer."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, *, scale: float = 1.0,
                 one_by_one: bool = True, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        layers: list[nn.Module] = []
        chs = in_chans
        for k, pad, widths, pool in NIN_BLOCKS:
            w = [max(1, round(c * scale)) if c else None for c in widths]
            layers += [nn.Conv2d(chs, w[0], k, padding=pad), nn.ReLU(inplace=True)]
            chs = w[0]
            for c in w[1:] if one_by_one else []:
                if c is not None:
                    layers += [nn.Conv2d(chs, c, 1), nn.ReLU(inplace=True)]
                    chs = c
            if pool:
                layers.append((nn.MaxPool2d if pool == "max" else nn.AvgPool2d)(3, 2, ceil_mode=True))
                layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Conv2d(chs, num_classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        for m in self.modules():  # He init, as models/nin.py
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# MobileNet v1's body at 32x32 (stride-1 stem, as on CIFAR): (output channels, stride) per block
MOBILE_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2))


def _bn_relu(conv: nn.Module, c: int) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(c), nn.ReLU(inplace=True)]


class SmallMobileNet(nn.Module):
    """A short MobileNet v1 for 32x32 inputs: stem 3x3 conv (32 x alpha), six blocks
    (MOBILE_BLOCKS, widths x alpha), global average pool, FC. separable=True: each block is a
    depthwise 3x3 + BN + ReLU then a pointwise 1x1 + BN + ReLU (Howard et al. Fig. 3 right);
    separable=False: one full 3x3 conv + BN + ReLU (Fig. 3 left), Table 4's "Conv MobileNet"."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, *, alpha: float = 1.0,
                 separable: bool = True) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        chs = max(1, int(32 * alpha))
        layers = _bn_relu(nn.Conv2d(in_chans, chs, 3, padding=1, bias=False), chs)
        for out, stride in MOBILE_BLOCKS:
            out = max(1, int(out * alpha))
            if separable:
                layers += _bn_relu(nn.Conv2d(chs, chs, 3, stride, 1, groups=chs, bias=False), chs)
                layers += _bn_relu(nn.Conv2d(chs, out, 1, bias=False), out)
            else:
                layers += _bn_relu(nn.Conv2d(chs, out, 3, stride, 1, bias=False), out)
            chs = out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(chs, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


class PlainConvNet(nn.Module):
    """Six 3x3 convs (16, 16, pool, 32, 32, pool, 64, 64), global average pool, FC; with
    bn=True a BatchNorm after every conv (before its ReLU, as Ioffe & Szegedy), else conv biases."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, *, bn: bool = True, width: int = 16) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        layers: list[nn.Module] = []
        chs = in_chans
        for stage, c in enumerate((width, 2 * width, 4 * width)):
            for _ in range(2):
                conv = nn.Conv2d(chs, c, 3, padding=1, bias=not bn)
                layers += _bn_relu(conv, c) if bn else [conv, nn.ReLU(inplace=True)]
                chs = c
            if stage < 2:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(chs, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))
