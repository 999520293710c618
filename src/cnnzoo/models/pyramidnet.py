"""PyramidNet (Han, Kim, Kim 2017) for CIFAR: the width grows by alpha/N at every block
(additive widening), not only at the downsampling points.

Departures from a plain pre-activation ResNet, as the paper (section 3, Fig. 6) and its code:
- block: BN, conv, BN, ReLU, conv, BN (no ReLU first, a BN last), no ReLU after the addition;
- shortcut: identity with the missing channels zero-padded, 2x2 average pooling where the
  resolution halves (no parameters);
- stem: 3x3 conv + BN without ReLU; head: BN, ReLU, global pool, fc.
"""

from __future__ import annotations

from ..errors import InvalidArgumentError
from ..registry import Paper, Published, register
from .resnet import ResNet

HAN2017 = Paper("Deep Pyramidal Residual Networks", "Han, Kim, Kim", 2017, "https://arxiv.org/abs/1610.02915")


def pyramid_widths(depth: int, alpha: float, bottleneck: bool) -> list[list[int]]:
    """Per-block planes: 16 + k*alpha/N rounded (Python's round, as the authors' code), k = 1..N."""
    per = 9 if bottleneck else 6
    if not isinstance(depth, int) or depth < per + 2 or (depth - 2) % per:
        raise InvalidArgumentError(
            f"PyramidNet depth must be {per}n+2 for {'bottleneck' if bottleneck else 'basic'} blocks, got {depth!r}")
    if alpha <= 0:
        raise InvalidArgumentError(f"alpha (total widening) must be positive, got {alpha!r}")
    n = (depth - 2) // per
    step = alpha / (3 * n)
    dim, stages = 16.0, []
    for _ in range(3):
        stage = []
        for _ in range(n):
            dim += step
            stage.append(int(round(dim)))
        stages.append(stage)
    return stages


def pyramidnet(num_classes: int = 10, in_chans: int = 3, *, depth: int = 110, alpha: float = 48,
               bottleneck: bool = False, zero_init_residual: bool = False) -> ResNet:
    block = "preact_bottleneck" if bottleneck else "preact_basic"
    return ResNet(num_classes, in_chans, block=block, stages=pyramid_widths(depth, alpha, bottleneck),
                  block_kwargs=dict(shortcut="A_avg", first_relu=False, last_bn=True),
                  stem="cifar", stem_width=16, stem_norm="bn", final_norm=True,
                  zero_init_residual=zero_init_residual)


# name: (depth, alpha, bottleneck, params and CIFAR-10 error from the paper's Table 4 / seed 004)
PYRAMIDNETS = {
    "pyramidnet110_a48": (110, 48, False, 1.7e6, 4.58),
    "pyramidnet110_a84": (110, 84, False, 3.8e6, 4.26),
    "pyramidnet110_a270": (110, 270, False, 28.3e6, 3.73),
    "pyramidnet164_a270_bottleneck": (164, 270, True, 27.0e6, 3.48),
}

for _name, (_d, _a, _b, _p, _e) in PYRAMIDNETS.items():
    register(_name, pyramidnet, family="pyramidnet", paper=HAN2017, input_size=(3, 32, 32), num_classes=10,
             kwargs=dict(depth=_d, alpha=_a, bottleneck=_b),
             published=Published("Han et al. 2017, Table 4 / seed 004 summary table", params=_p,
                                 top1_err=_e, dataset="CIFAR-10"),
             description=f"PyramidNet-{_d} alpha={_a}" + (" (bottleneck)" if _b else ""))
