"""Residual blocks, written once and shared by ResNet, ResNeXt, Wide ResNet, SE-ResNet,
pre-activation ResNet and PyramidNet.

Every block is called `block(in_chs, planes, stride, **options)` and outputs
`planes * block.expansion` channels. Module names (conv1, bn1, ..., downsample) are
torchvision's: they are checkpoint keys.

Shortcuts (He et al. 2015, section 3.3), used where the shape changes:
    "A"      parameter-free: stride-s subsampling + zero channels appended (CIFAR ResNets)
    "A_avg"  as A, but 2x2 average pooling instead of subsampling (PyramidNet)
    "B"      projection: 1x1 conv (+ BN in post-activation blocks)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .se import SqueezeExcite

SHORTCUTS = ("A", "A_avg", "B", "none")


def conv3x3(in_chs: int, out_chs: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_chs: int, out_chs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)


class PadShortcut(nn.Module):
    """Option A identity shortcut: no parameters; downsample spatially, append zero channels."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, pool: str = "subsample") -> None:
        super().__init__()
        if out_chs < in_chs:
            raise ValueError(f"a zero-padding shortcut cannot reduce channels ({in_chs} -> {out_chs})")
        self.extra, self.stride, self.pool = out_chs - in_chs, stride, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            if self.pool == "avg":  # ceil_mode keeps the size equal to the strided conv's, odd inputs too
                x = F.avg_pool2d(x, self.stride, self.stride, ceil_mode=True)
            else:
                x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))  # zeros after the existing channels
        return x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pool={self.pool}, zero_channels={self.extra}"


def make_shortcut(kind: str, in_chs: int, out_chs: int, stride: int, *, norm: bool = True) -> nn.Module | None:
    """None where the shape is unchanged (a plain identity) or for "none" (no shortcut at all:
    He et al.'s plain networks), else the chosen shortcut."""
    if kind == "none" or (stride == 1 and in_chs == out_chs):
        return None
    if kind == "A":
        return PadShortcut(in_chs, out_chs, stride, "subsample")
    if kind == "A_avg":
        return PadShortcut(in_chs, out_chs, stride, "avg")
    if kind == "B":
        if norm:  # torchvision's downsample.0 (conv) / downsample.1 (bn)
            return nn.Sequential(conv1x1(in_chs, out_chs, stride), nn.BatchNorm2d(out_chs))
        return conv1x1(in_chs, out_chs, stride)  # pre-activation: the next block normalises
    raise ValueError(f"unknown shortcut {kind!r}; choose from {', '.join(SHORTCUTS)}")


def _identity(block: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """What a post-activation block adds to its output: x, its shortcut of x, or nothing (plain)."""
    if not block.residual:
        return None
    return x if block.downsample is None else block.downsample(x)


class BasicBlock(nn.Module):
    """Basic: 3x3, BN, ReLU, 3x3, BN, (SE), + shortcut, ReLU."""

    expansion = 1

    def __init__(self, in_chs: int, planes: int, stride: int = 1, *, shortcut: str = "B",
                 se_reduction: int = 0) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_chs, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SqueezeExcite(planes, se_reduction) if se_reduction else None
        self.downsample = make_shortcut(shortcut, in_chs, planes, stride)
        self.residual = shortcut != "none"

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = _identity(self, x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out if identity is None else out + identity)


class Bottleneck(nn.Module):
    """Bottleneck: 1x1, BN, ReLU, 3x3 (grouped), BN, ReLU, 1x1, BN, (SE), + shortcut, ReLU.

    Width of the 3x3 = planes * base_width/64 * groups (ResNeXt's "32x4d" is groups=32,
    base_width=4; Wide ResNet-50-2 is base_width=128). The stride sits on the 3x3 ("v1.5",
    torchvision) unless stride_in_1x1 (the paper's v1 placement).
    """

    expansion = 4

    def __init__(self, in_chs: int, planes: int, stride: int = 1, *, shortcut: str = "B",
                 groups: int = 1, base_width: int = 64, stride_in_1x1: bool = False,
                 se_reduction: int = 0) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        out_chs = planes * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_chs, width, s1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, s3, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_chs)
        self.bn3 = nn.BatchNorm2d(out_chs)
        self.relu = nn.ReLU(inplace=True)
        self.se = SqueezeExcite(out_chs, se_reduction) if se_reduction else None
        self.downsample = make_shortcut(shortcut, in_chs, out_chs, stride)
        self.residual = shortcut != "none"

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = _identity(self, x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out if identity is None else out + identity)


class _PreAct(nn.Module):
    """Shared forward of the pre-activation blocks: no ReLU after the addition.

    A projection shortcut sees the pre-activated input (as He et al.'s and Zagoruyko's code);
    an identity or zero-padding shortcut sees the raw input.
    """

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.bn1(x)
        if self.first_relu:
            pre = self.relu(pre)
        if self.downsample is None:
            identity = x
        elif isinstance(self.downsample, nn.Conv2d):
            identity = self.downsample(pre)
        else:
            identity = self.downsample(x)
        return self._branch(pre) + identity


class PreActBasicBlock(_PreAct):
    """Pre-activation basic (He et al. 2016): BN, ReLU, 3x3, BN, ReLU, (dropout), 3x3, + shortcut.

    PyramidNet's block is the same with first_relu=False and last_bn=True (BN, 3x3, BN, ReLU,
    3x3, BN); Wide ResNet's puts dropout between the convolutions.
    """

    expansion = 1

    def __init__(self, in_chs: int, planes: int, stride: int = 1, *, shortcut: str = "B",
                 first_relu: bool = True, last_bn: bool = False, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.first_relu = first_relu
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = conv3x3(in_chs, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.conv2 = conv3x3(planes, planes)
        self.bn3 = nn.BatchNorm2d(planes) if last_bn else None
        if shortcut == "none":
            raise ValueError("plain networks (shortcut='none') are built from post-activation blocks")
        self.downsample = make_shortcut(shortcut, in_chs, planes, stride, norm=False)

    def zero_init_last(self) -> None:
        # Without a final BN, zeroing bn2 also zeroes the branch: conv2(relu(0)) = 0.
        nn.init.zeros_((self.bn3 if self.bn3 is not None else self.bn2).weight)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.conv2(self.drop(self.relu(self.bn2(out))))
        return out if self.bn3 is None else self.bn3(out)


class PreActBottleneck(_PreAct):
    """Pre-activation bottleneck: BN, ReLU, 1x1, BN, ReLU, 3x3 (stride), BN, ReLU, 1x1, + shortcut.

    The stride is on the 3x3, as in the authors' code (fb.resnet.torch). PyramidNet: first_relu=False,
    last_bn=True.
    """

    expansion = 4

    def __init__(self, in_chs: int, planes: int, stride: int = 1, *, shortcut: str = "B",
                 first_relu: bool = True, last_bn: bool = False) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.first_relu = first_relu
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = conv1x1(in_chs, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_chs)
        self.bn4 = nn.BatchNorm2d(out_chs) if last_bn else None
        self.relu = nn.ReLU(inplace=True)
        if shortcut == "none":
            raise ValueError("plain networks (shortcut='none') are built from post-activation blocks")
        self.downsample = make_shortcut(shortcut, in_chs, out_chs, stride, norm=False)

    def zero_init_last(self) -> None:
        nn.init.zeros_((self.bn4 if self.bn4 is not None else self.bn3).weight)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out if self.bn4 is None else self.bn4(out)


BLOCKS: dict[str, type[nn.Module]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
    "preact_basic": PreActBasicBlock,
    "preact_bottleneck": PreActBottleneck,
}
