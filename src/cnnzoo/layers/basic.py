"""Single-layer building blocks used across families: ConvBnAct (conv + BN + activation) and the
Inception line's BasicConv2d helpers built on it, the papers' LocalResponseNorm, an
AdaptiveAvgPool2d with a deterministic CUDA backward where sizes divide, He init, and
torchvision's `transform_input` re-normalisation (GoogLeNet, Inception v3)."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from ..data.preprocess import IMAGENET_MEAN, IMAGENET_STD


class ConvBnAct(nn.Sequential):
    """Conv, BN (optional), activation (optional). Module names conv/bn/act are checkpoint keys."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int | tuple[int, int] = 3, *,
                 stride: int = 1, padding: int | tuple[int, int] | None = None, groups: int = 1,
                 dilation: int = 1, bn: bool = True, act: type[nn.Module] | None = nn.ReLU,
                 bias: bool | None = None, bn_eps: float = 1e-5) -> None:
        if padding is None:  # "same" for odd kernels
            ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            padding = (dilation * (ks[0] - 1) // 2, dilation * (ks[1] - 1) // 2)
        layers: list[tuple[str, nn.Module]] = [
            ("conv", nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding,
                               dilation=dilation, groups=groups,
                               bias=(not bn) if bias is None else bias)),
        ]
        if bn:
            layers.append(("bn", nn.BatchNorm2d(out_chs, eps=bn_eps)))
        if act is not None:
            layers.append(("act", act(inplace=True) if act in (nn.ReLU, nn.ReLU6) else act()))
        super().__init__(OrderedDict(layers))


def basic_conv(in_chs: int, out_chs: int, kernel_size: int | tuple[int, int], stride: int = 1,
               padding: int | tuple[int, int] = 0) -> ConvBnAct:
    """BasicConv2d of TF-slim and torchvision's Inception ports: conv (no bias), BN (eps 1e-3),
    ReLU. Padding is 0 ("valid") unless given."""
    return ConvBnAct(in_chs, out_chs, kernel_size, stride=stride, padding=padding, bn_eps=1e-3)


def basic_conv_same(in_chs: int, out_chs: int, kernel_size: int | tuple[int, int],
                    stride: int = 1) -> ConvBnAct:
    """basic_conv with "same" padding (half of each kernel side)."""
    ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return basic_conv(in_chs, out_chs, ks, stride, (ks[0] // 2, ks[1] // 2))


class LocalResponseNorm(nn.LocalResponseNorm):
    """Krizhevsky et al.'s LRN: b = a / (k + alpha * sum_{n neighbours} a^2) ** beta.

    The paper's alpha multiplies the plain sum; PyTorch's divides alpha by n, so we pass alpha*n.
    Defaults are AlexNet's (k=2, n=5, alpha=1e-4, beta=0.75).
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 2.0) -> None:
        super().__init__(size=size, alpha=alpha * size, beta=beta, k=k)
        self.paper_alpha = alpha

    def extra_repr(self) -> str:
        return f"n={self.size}, alpha={self.paper_alpha} (paper), beta={self.beta}, k={self.k}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.local_response_norm sums across channels with avg_pool3d, whose CUDA backward has no
        # deterministic version (--deterministic failed at the first backward); the same
        # window sum as a 2-D average pool over a (channels, pixels) plane has one.
        if x.dim() != 4:
            return super().forward(x)
        n, c, h, w = x.shape
        sq = (x * x).reshape(n, 1, c, h * w)
        sq = F.pad(sq, (0, 0, self.size // 2, (self.size - 1) // 2))
        div = F.avg_pool2d(sq, (self.size, 1), stride=1).reshape(n, c, h, w)
        return x / div.mul(self.alpha).add(self.k).pow(self.beta)


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """nn.AdaptiveAvgPool2d with a backward that CUDA can run deterministically (the adaptive
    kernel's cannot): a plain average pool where the input divides into the output evenly
    (AlexNet's 6x6, VGG's 7x7), else the same overlapping windows as two small averaging
    matrices (torchvision GoogLeNet's aux 14x14 -> 4x4). The numbers are the adaptive pool's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        oh, ow = (o if o is not None else i for o, i in zip(_pair(self.output_size), (h, w)))
        if h % oh == 0 and w % ow == 0:
            return F.avg_pool2d(x, (h // oh, w // ow))
        ph, pw = _window_means(h, oh, x), _window_means(w, ow, x)
        return torch.einsum("oh,nchw,pw->ncop", ph, x, pw)


def _window_means(size: int, out: int, like: torch.Tensor) -> torch.Tensor:
    """(out, size) matrix averaging adaptive pooling's window i: [floor(i*size/out), ceil((i+1)*size/out))."""
    i = torch.arange(out, device=like.device)
    start, end = (i * size) // out, ((i + 1) * size + out - 1) // out
    j = torch.arange(size, device=like.device)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def he_init(module: nn.Module, zero_bias: bool = True) -> None:
    """He (Kaiming) normal init for convs, N(0, 0.01) for linear layers, BN to (1, 0)."""
    if any(p.is_meta for p in module.parameters()):
        return  # meta tensors hold no values; their random init is slow and pointless
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None and zero_bias:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def transform_input(x: torch.Tensor) -> torch.Tensor:
    """torchvision's `transform_input`: re-normalise ImageNet-normalised RGB input to [-1, 1], the
    range its GoogLeNet and Inception v3 weights were trained on (ported from TF)."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x * (std / 0.5) + (mean - 0.5) / 0.5
