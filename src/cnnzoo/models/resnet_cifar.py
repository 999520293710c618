"""CIFAR ResNets: He et al. 2015 section 4.2, pre-activation (He et al. 2016) and Wide ResNets
(Zagoruyko & Komodakis 2016). Three stages at 32x32, 16x16, 8x8 after one 3x3 conv; one
builder, `depth` fixes the blocks per stage.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgumentError
from ..registry import Paper, Published, register
from .resnet import HE2015, HE2016, ZAGORUYKO2016, ResNet

# block: (blocks per stage from depth, layers outside the blocks, convs per block, post-activation?)
_DEPTH_RULE = {"basic": (2, 6), "preact_basic": (2, 6), "preact_bottleneck": (2, 9), "wide": (4, 6)}


def cifar_resnet(num_classes: int = 10, in_chans: int = 3, *, depth: int = 20, block: str = "basic",
                 widen: int = 1, shortcut: str = "A", drop_rate: float = 0.0,
                 zero_init_residual: bool = False) -> ResNet:
    """depth = 6n+2 (basic blocks), 9n+2 (pre-activation bottlenecks) or 6n+4 (wide: the
    paper counts the projection convs); stages have 16, 32, 64 planes (x widen).

    block: basic (the 2015 paper: post-activation, option A shortcuts), preact_basic,
    preact_bottleneck, wide (pre-activation basic blocks 16k/32k/64k, 1x1 projections,
    optional dropout between the convs).
    """
    if block not in _DEPTH_RULE:
        raise InvalidArgumentError(f"unknown block {block!r}; choose from {', '.join(_DEPTH_RULE)}")
    offset, per = _DEPTH_RULE[block]
    if not isinstance(depth, int) or depth < offset + per or (depth - offset) % per:
        raise InvalidArgumentError(
            f"depth for {block} blocks must be {per}n+{offset} with n >= 1 (e.g. {per + offset}, "
            f"{2 * per + offset}), got {depth!r}")
    if shortcut not in ("A", "B", "none"):
        raise InvalidArgumentError(f"shortcut must be 'A' (zero-padding), 'B' (projection) or 'none' "
                                   f"(a plain network), got {shortcut!r}")
    if shortcut == "none" and block != "basic":
        raise InvalidArgumentError("plain networks (shortcut='none') use the paper's basic blocks")
    if not isinstance(widen, int) or widen < 1:
        raise InvalidArgumentError(f"widen must be a positive integer, got {widen!r}")
    if drop_rate and block != "wide":
        raise InvalidArgumentError("drop_rate applies to block='wide' only")
    n = (depth - offset) // per
    stages = [[w * widen] * n for w in (16, 32, 64)]
    kw: dict[str, Any] = {"shortcut": shortcut}
    if block == "wide":
        kw["drop_rate"] = drop_rate
    post = block == "basic"
    return ResNet(num_classes, in_chans, block="preact_basic" if block == "wide" else block,
                  stages=stages, block_kwargs=kw, stem="cifar", stem_width=16,
                  stem_norm="bn_relu" if post else "none", final_norm=not post,
                  zero_init_residual=zero_init_residual)


def _c10(source: str, params: float, err: float) -> Published:
    return Published(source, params=params, top1_err=err, dataset="CIFAR-10")


# name: (arch kwargs, paper, published, description)
CIFAR_RESNETS: dict[str, tuple[dict[str, Any], Paper, tuple[Published, ...], str]] = {
    **{
        f"resnet{d}": (dict(depth=d), HE2015, (_c10("He et al. 2015, Table 6", p, e),),
                       f"CIFAR ResNet-{d} (option A shortcuts)")
        for d, p, e in [(20, 0.27e6, 8.75), (32, 0.46e6, 7.51), (44, 0.66e6, 7.17),
                        (56, 0.85e6, 6.97), (110, 1.7e6, 6.43), (1202, 19.4e6, 7.93)]
    },
    # The plain nets of Fig. 6 (left): the same layers without shortcuts. The paper gives their
    # training curves, not a table row; their parameters equal the option-A ResNets'.
    **{
        f"plain{d}": (dict(depth=d, shortcut="none"), HE2015,
                      (Published("He et al. 2015, section 4.2 (same layers as ResNet-" + str(d) + ")",
                                 params=p, dataset="CIFAR-10"),),
                      f"CIFAR plain-{d}: ResNet-{d} without shortcuts (Fig. 6, degradation)")
        for d, p in [(20, 0.27e6), (32, 0.46e6), (44, 0.66e6), (56, 0.85e6), (110, 1.7e6)]
    },
    # Pre-activation CIFAR nets use 1x1 projections where the shape changes (the authors' code).
    "preact_resnet110": (dict(depth=110, block="preact_basic", shortcut="B"), HE2016,
                         (_c10("He et al. 2016, Table 3", 1.7e6, 6.37),),
                         "pre-activation CIFAR ResNet-110"),
    "preact_resnet164": (dict(depth=164, block="preact_bottleneck", shortcut="B"), HE2016,
                         (_c10("He et al. 2016, Table 3", 1.7e6, 5.46),),
                         "pre-activation CIFAR ResNet-164 (bottleneck)"),
    "preact_resnet1001": (dict(depth=1001, block="preact_bottleneck", shortcut="B"), HE2016,
                          (_c10("He et al. 2016, Table 3", 10.2e6, 4.92),),
                          "pre-activation CIFAR ResNet-1001 (bottleneck)"),
    "wrn28_10": (dict(depth=28, block="wide", widen=10, shortcut="B"), ZAGORUYKO2016,
                 (_c10("Zagoruyko & Komodakis 2016, Table 5 (dropout 0.3: 3.89)", 36.5e6, 4.17),),
                 "Wide ResNet-28-10 (CIFAR); drop_rate=0.3 gives the paper's dropout variant"),
    "wrn16_8": (dict(depth=16, block="wide", widen=8, shortcut="B"), ZAGORUYKO2016,
                (_c10("Zagoruyko & Komodakis 2016, Table 5", 11.0e6, 4.81),),
                "Wide ResNet-16-8 (CIFAR)"),
}

for _name, (_kw, _paper, _pub, _desc) in CIFAR_RESNETS.items():
    register(_name, cifar_resnet, family="resnet_cifar", paper=_paper, input_size=(3, 32, 32), num_classes=10,
             kwargs=_kw, published=_pub, description=_desc,
             recipe="cifar_resnet" if _name.startswith(("resnet", "preact")) else "fast")
