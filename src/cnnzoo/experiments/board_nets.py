"""The leaderboard's small members: one network per family, sized for 28x28 (or padded 32x32)
grayscale images, built from the zoo's own blocks (models/) with a stride-1 stem where the
ImageNet stem (stride 2 + max pool) would shrink a 32x32 image to 8x8 before the first block.
They are unregistered: the leaderboard trains them under temporary names (common.Scratch).
Builders take (num_classes, in_chans) like the registry's."""

from __future__ import annotations

import torch
from torch import nn

from ..models.densenet import DenseBlock, Transition
from ..models.mobilenet import InvertedResidual, conv_bn_relu6
from ..models.shufflenet import ShuffleUnitV2
from ..models.squeezenet import Fire, init_weights


class _Head(nn.Module):
    """Global average pool -> linear: the head every member but the VGG-style net shares."""

    def __init__(self, features: nn.Module, width: int, num_classes: int) -> None:
        super().__init__()
        self.features, self.fc = features, nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def _cbr(c_in: int, c_out: int, k: int = 3, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def small_vgg(num_classes: int = 10, in_chans: int = 1) -> nn.Module:
    """VGG's recipe at 28x28 (AlexNet's conv-pool-FC layout, VGG's stacked 3x3 convs): 2x conv3
    32, pool, 2x conv3 64, pool, FC 256 with dropout 0.5, FC; batch norm after each conv."""
    return nn.Sequential(*_cbr(in_chans, 32), *_cbr(32, 32), nn.MaxPool2d(2),
                         *_cbr(32, 64), *_cbr(64, 64), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 7 * 7, 256), nn.ReLU(inplace=True), nn.Dropout(0.5),
                         nn.Linear(256, num_classes))


def small_densenet_bc(num_classes: int = 10, in_chans: int = 1, growth: int = 12,
                      layers: tuple[int, ...] = (6, 6, 6)) -> nn.Module:
    """DenseNet-BC at 32x32 (Huang et al.'s CIFAR layout, shallower): conv3 2k, three dense
    blocks of bottleneck layers (growth k=12) with compressing (0.5) transitions between."""
    chs = 2 * growth
    parts: list[nn.Module] = [nn.Conv2d(in_chans, chs, 3, padding=1, bias=False)]
    for i, n in enumerate(layers):
        parts.append(DenseBlock(n, chs, growth, 4, 0.0))
        chs += n * growth
        if i < len(layers) - 1:
            parts.append(Transition(chs, chs // 2))
            chs //= 2
    parts += [nn.BatchNorm2d(chs), nn.ReLU(inplace=True)]
    return _Head(nn.Sequential(*parts), chs, num_classes)


def small_mobilenet_v1(num_classes: int = 10, in_chans: int = 1, alpha: float = 0.5) -> nn.Module:
    """MobileNet v1 at 32x32 (width multiplier 0.5): conv3 32a, then depthwise-separable blocks
    64a, 128a/2, 128a, 256a/2, 256a, 512a/2, 512a."""
    def w(c: int) -> int:
        return max(8, int(c * alpha))

    parts = _cbr(in_chans, w(32))
    c_in = w(32)
    for c, s in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)):
        parts += [*conv_bn_relu6(c_in, c_in, 3, s, groups=c_in), *conv_bn_relu6(c_in, w(c), 1)]
        c_in = w(c)
    return _Head(nn.Sequential(*parts), c_in, num_classes)


def small_mobilenet_v2(num_classes: int = 10, in_chans: int = 1) -> nn.Module:
    """MobileNet v2 at 32x32: conv3 32 (stride 1), inverted residuals (expansion t, out c, n,
    stride s) (1,16,1,1) (6,24,2,1) (6,32,3,2) (6,64,3,2) (6,96,2,1), 1x1 conv 320."""
    parts: list[nn.Module] = [conv_bn_relu6(in_chans, 32, 3, 1)]
    c_in = 32
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 3, 2), (6, 96, 2, 1)):
        for i in range(n):
            parts.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
            c_in = c
    parts.append(conv_bn_relu6(c_in, 320, 1))
    return _Head(nn.Sequential(*parts), 320, num_classes)


def small_shufflenet_v2(num_classes: int = 10, in_chans: int = 1) -> nn.Module:
    """ShuffleNet v2 (0.5x channels) at 32x32: conv3 24 (stride 1), stages 48/96/192 of 2/4/2
    units (the first of each strides 2), 1x1 conv 512."""
    parts = _cbr(in_chans, 24)
    c_in = 24
    for c, n in ((48, 2), (96, 4), (192, 2)):
        parts += [ShuffleUnitV2(c_in, c, 2)] + [ShuffleUnitV2(c, c, 1) for _ in range(n - 1)]
        c_in = c
    parts += _cbr(c_in, 512, 1)
    return _Head(nn.Sequential(*parts), 512, num_classes)


def small_squeezenet(num_classes: int = 10, in_chans: int = 1) -> nn.Module:
    """SqueezeNet 1.1 at 32x32: conv3 64 (stride 1), fire modules between 2x2 max pools, and
    its classifier: dropout, a 1x1 conv to the classes, global average pool (no FC)."""
    fires = nn.Sequential(nn.Conv2d(in_chans, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                          Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), nn.MaxPool2d(2),
                          Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), nn.MaxPool2d(2),
                          Fire(256, 48, 192, 192), Fire(384, 64, 256, 256),
                          nn.Dropout(0.5), nn.Conv2d(512, num_classes, 1), nn.ReLU(inplace=True),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    init_weights(fires, final=fires[-4])  # the default init left a first-layer gradient of 5e-8
    return fires
