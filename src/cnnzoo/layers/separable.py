"""Depthwise separable convolution: a per-channel (depthwise) KxK conv followed by a 1x1 (pointwise)
conv across channels. Costs C*K*K + C*C_out weights instead of C*C_out*K*K.

Two arrangements appear in the papers:
  SeparableConv2d        dw conv -> pw conv, nothing in between (Xception: "no intermediate ReLU")
  DepthwiseSeparableConv dw conv, BN, ReLU -> pw conv, BN, ReLU (MobileNet v1, Fig. 3)
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .basic import ConvBnAct


class SeparableConv2d(nn.Sequential):
    """Depthwise KxK then pointwise 1x1, no normalisation or activation between them."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, *, stride: int = 1,
                 padding: int | None = None, bias: bool = False) -> None:
        if padding is None:
            padding = kernel_size // 2
        super().__init__(OrderedDict(
            conv_dw=nn.Conv2d(in_chs, in_chs, kernel_size, stride=stride, padding=padding,
                              groups=in_chs, bias=bias),
            conv_pw=nn.Conv2d(in_chs, out_chs, 1, bias=bias),
        ))


class DepthwiseSeparableConv(nn.Sequential):
    """dw 3x3 (stride s), BN, act; pw 1x1, BN, act. Module names dw/pw are checkpoint keys."""

    def __init__(self, in_chs: int, out_chs: int, *, stride: int = 1, kernel_size: int = 3,
                 act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__(OrderedDict(
            dw=ConvBnAct(in_chs, in_chs, kernel_size, stride=stride, groups=in_chs, act=act),
            pw=ConvBnAct(in_chs, out_chs, 1, act=act),
        ))
