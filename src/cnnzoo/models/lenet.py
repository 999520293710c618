"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) as the paper builds it, and a modern variant.

    C1 6@5x5 -> S2 -> C3 16@5x5 (partial table) -> S4 -> C5 120@5x5 -> F6 84 -> RBF output

Every layer up to F6 is followed by the paper's squashing f(a) = A tanh(S a), A=1.7159, S=2/3.
S2/S4 add each 2x2 block, multiply by a trainable per-map coefficient, add a trainable per-map
bias, then squash. The output layer is the Euclidean RBF with fixed +-1 codes.
Trainable parameters: 156 + 12 + 1,516 + 32 + 48,120 + 10,164 = 60,000 (paper, section II.B).

`lenet5_modern` keeps the layer sizes but uses ReLU, max pooling, a full C3 and a linear output.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import ZooModel
from ..errors import InvalidArgumentError
from ..registry import Paper, Published, register

PAPER = Paper(
    title="Gradient-Based Learning Applied to Document Recognition",
    authors="Y. LeCun, L. Bottou, Y. Bengio, P. Haffner",
    year=1998,
    url="https://doi.org/10.1109/5.726791",
)


def c3_table() -> list[list[int]]:
    """Table I of the paper as a rule: for each C3 map, the S2 maps it reads.

    Maps 0-5 read 3 contiguous S2 maps, 6-11 read 4 contiguous, 12-14 read 4 non-contiguous
    (i, i+1, i+3, i+4), 15 reads all six: 18 + 24 + 12 + 6 = 60 connections.
    Seed 004 prints this table with 63 marks and several rows shifted by one column (cells lost in
    transcription); the rule above reproduces the paper's Table I, which has exactly 60.
    """
    table = [[(i + k) % 6 for k in range(3)] for i in range(6)]
    table += [[(i + k) % 6 for k in range(4)] for i in range(6)]
    table += [sorted((i + k) % 6 for k in (0, 1, 3, 4)) for i in range(3)]
    table += [list(range(6))]
    return [sorted(t) for t in table]


# Our own 7x12 drawings of the digits in the style of the paper's Fig. 3 ("stylized image of the
# character drawn on a 7x12 bitmap"); '#' is +1, '.' is -1. They are not a pixel copy of Fig. 3.
_DIGITS = """
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
..###.. ...#... ..###.. .#####. ....#.. ####### ...##.. ####### ..###.. ..###..
.#...#. ..##... .#...#. .....#. ...##.. #...... ..#.... ......# .#...#. .#...#.
#.....# .#.#... .....#. ....#.. ..#.#.. #...... .#..... .....#. .#...#. #.....#
#.....# ...#... .....#. ...#... .#..#.. #####.. #...... ....#.. ..###.. #.....#
#.....# ...#... ....#.. ..###.. #...#.. .....#. #.###.. ....#.. .#...#. .#...##
#.....# ...#... ...#... .....#. ####### ......# ##...#. ...#... #.....# ..###.#
#.....# ...#... ..#.... ......# ....#.. ......# #.....# ...#... #.....# ......#
#.....# ...#... .#..... ......# ....#.. ......# #.....# ..#.... #.....# .....#.
.#...#. ...#... #...... #....#. ....#.. #....#. .#...#. ..#.... .#...#. ....#..
..###.. .#####. ####### .####.. ....#.. .####.. ..###.. ..#.... ..###.. ..##...
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
"""


def rbf_codes(num_classes: int) -> torch.Tensor:
    """(num_classes, 84) fixed +-1 codes: the ten digit bitmaps first, then deterministic
    pseudo-random codes (Python's Mersenne Twister, seed 1998) for any further class."""
    rows = [r.split() for r in _DIGITS.strip().splitlines()]
    codes = [[1.0 if ch == "#" else -1.0 for row in rows for ch in row[d]] for d in range(10)]
    rng = random.Random(1998)
    while len(codes) < num_classes:
        bits = rng.getrandbits(84)
        codes.append([1.0 if (bits >> j) & 1 else -1.0 for j in range(84)])
    return torch.tensor(codes[:num_classes])


class Squash(nn.Module):
    """f(a) = A tanh(S a) with A = 1.7159, S = 2/3 (paper, Appendix A): f(+-1) = +-1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsample(nn.AvgPool2d):
    """S2/S4: sum of each 2x2 block x trainable per-map coefficient + trainable per-map bias.

    A 2x2/2 average pool underneath (so cost tables count it as the pooling it is)."""

    def __init__(self, channels: int) -> None:
        super().__init__(kernel_size=2, stride=2)
        # the paper's init: uniform in +-2.4/F_in with F_in = 4 inputs per unit
        self.weight = nn.Parameter(torch.empty(channels).uniform_(-0.6, 0.6))
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-0.6, 0.6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.avg_pool2d(x, 2, 2) * 4.0  # the paper adds the four inputs
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()} maps, 2x2 sum x coefficient + bias"


class PartialConv2d(nn.Module):
    """A convolution where output map o reads only the input maps table[o].

    The input maps each output reads are gathered (60 maps for C3) and consecutive outputs with
    the same fan-in share one grouped convolution (C3: 6 maps x 3 inputs, 9 x 4, 1 x 6). So only
    the connected kernels exist (the paper's 1,516 parameters) and the convolutions are standard
    layers, which cost tables count exactly (100 positions x 60 kernels x 25 = 150,000 MACs).
    """

    def __init__(self, table: list[list[int]], in_chs: int, kernel_size: int) -> None:
        super().__init__()
        self.in_chs, self.out_chs, self.k = in_chs, len(table), kernel_size
        self.register_buffer("index", torch.tensor([i for ins in table for i in ins]),
                             persistent=False)
        runs: list[list[int]] = []  # [fan-in, number of outputs] for runs of equal fan-in
        for ins in table:
            if runs and runs[-1][0] == len(ins):
                runs[-1][1] += 1
            else:
                runs.append([len(ins), 1])
        self.splits = [fan * n for fan, n in runs]
        self.convs = nn.ModuleList(
            nn.Conv2d(fan * n, n, kernel_size, groups=n) for fan, n in runs)
        self.table = [list(t) for t in table]
        # where each connected kernel sits in the dense (out, in) grid, in the convs' order
        self.register_buffer("dense_slot", torch.tensor(
            [o * in_chs + i for o, ins in enumerate(self.table) for i in ins]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not torch.jit.is_scripting():
            # Training: one dense convolution whose weight is zero off the table. The same
            # outputs and gradients (the zeros get none), half the step time of the three
            # grouped convolutions on a CPU (measured: their backward took half of LeNet-5's
            # step). Inference keeps the grouped layers, which hooks and cost tables see.
            return F.conv2d(x, self._scatter_dense(), torch.cat([c.bias for c in self.convs]))
        parts = torch.split(torch.index_select(x, 1, self.index), self.splits, dim=1)
        return torch.cat([conv(p) for conv, p in zip(self.convs, parts)], dim=1)

    def _scatter_dense(self) -> torch.Tensor:
        w = torch.cat([c.weight.flatten(0, 1) for c in self.convs])  # (connections, k, k)
        dense = w.new_zeros(self.out_chs * self.in_chs, self.k, self.k).index_copy(0, self.dense_slot, w)
        return dense.view(self.out_chs, self.in_chs, self.k, self.k)

    def dense_weight(self) -> torch.Tensor:
        """The equivalent (out, in, k, k) weight, zero where the table has no connection."""
        w = self.convs[0].weight.new_zeros(self.out_chs, self.in_chs, self.k, self.k)
        o = 0
        for conv in self.convs:
            for j in range(conv.weight.shape[0]):
                for slot, i in enumerate(self.table[o]):
                    w[o, i] = conv.weight[j, slot]
                o += 1
        return w

    def extra_repr(self) -> str:
        n = sum(map(len, self.table))
        return f"{self.in_chs}->{self.out_chs}, kernel={self.k}, connections={n}"


class EuclideanRBF(nn.Module):
    """y_i = sum_j (x_j - w_ij)^2 with fixed (buffer, not trained) codes w.

    A distance: lower means more likely. LeNet5 returns -y as logits. Cross-entropy on -y is the
    paper's MAP criterion (its eq. 9) without the constant "rubbish class" term e^{-j}.
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        if in_features != 84:
            raise InvalidArgumentError(f"the RBF codes are 7x12 = 84 long, got {in_features} inputs")
        self.register_buffer("codes", rbf_codes(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diff = x.unsqueeze(1) - self.codes.unsqueeze(0)  # N x classes x 84
        return diff.pow(2).sum(-1)


_ACTS = ("squash", "relu")
_POOLS = ("trainable", "max")
_C3 = ("table", "full")
_HEADS = ("rbf", "linear")


def _choice(name: str, value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(options)}; got {value!r}")
    return value


class LeNet5(ZooModel):
    """C1 - S2 - C3 - S4 - C5 - F6 - output. The paper's LeNet-5 by default."""

    classifier_name = "output"

    def __init__(self, num_classes: int = 10, in_chans: int = 1, act: str = "squash",
                 pool: str = "trainable", c3: str = "table", head: str = "rbf") -> None:
        super().__init__(num_classes, in_chans)
        self.act_kind = _choice("act", act, _ACTS)
        self.pool_kind = _choice("pool", pool, _POOLS)
        self.c3_kind = _choice("c3", c3, _C3)
        self.head_kind = _choice("head", head, _HEADS)

        self.act = Squash() if act == "squash" else nn.ReLU()
        self.c1 = nn.Conv2d(in_chans, 6, 5)  # N x 6 x 28 x 28
        self.s2 = Subsample(6) if pool == "trainable" else nn.MaxPool2d(2)  # 14 x 14
        self.c3 = PartialConv2d(c3_table(), 6, 5) if c3 == "table" else nn.Conv2d(6, 16, 5)  # 10x10
        self.s4 = Subsample(16) if pool == "trainable" else nn.MaxPool2d(2)  # 5 x 5
        self.c5 = nn.Conv2d(16, 120, 5)  # 1 x 1 (a convolution: larger inputs give larger maps)
        self.f6 = nn.Linear(120, 84)
        self.output = self._make_output(num_classes)
        self.num_features = 120
        self.head_hidden_size = 84  # width of forward_head(..., pre_logits=True)
        self.feature_info = [
            dict(num_chs=6, reduction=1, module="c1"), dict(num_chs=6, reduction=2, module="s2"),
            dict(num_chs=16, reduction=2, module="c3"), dict(num_chs=16, reduction=4, module="s4"),
            dict(num_chs=120, reduction=4, module="c5"),
        ]
        self.reset_parameters()

    def _make_output(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        return EuclideanRBF(84, num_classes) if self.head_kind == "rbf" else nn.Linear(84, num_classes)

    def reset_parameters(self) -> None:
        """The paper's init (Appendix C): uniform in +-2.4/F_in, F_in = inputs of the unit
        (C3's grouped convs: each map's own fan-in). Subsample starts that way; with ReLU,
        PyTorch's defaults are kept."""
        if self.act_kind == "relu":
            return
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                bound = 2.4 / (m.weight[0].numel())
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.uniform_(m.bias, -bound, bound)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.c1(x))
        x = self.s2(x)
        if self.pool_kind == "trainable":
            x = self.act(x)
        x = self.act(self.c3(x))
        x = self.s4(x)
        if self.pool_kind == "trainable":
            x = self.act(x)
        return self.act(self.c5(x))  # N x 120 x 1 x 1 at 32 x 32

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        # At 32x32 C5 is 1x1 and the mean is the paper's flatten; on larger inputs it averages
        # C5's sliding-window responses (the paper's SDNN replicates the net over the input).
        x = self.act(self.f6(x.mean((2, 3))))
        if pre_logits:
            return x
        y = self.output(x)
        # The RBF gives distances (lower = better); negated, they are logits for cross-entropy.
        return -y if self.head_kind == "rbf" and self.num_classes > 0 else y

    def reset_classifier(self, num_classes: int) -> None:
        if num_classes < 0:
            raise InvalidArgumentError(f"num_classes must be >= 0, got {num_classes}")
        w = self.f6.weight
        self.output = self._make_output(num_classes).to(device=w.device, dtype=w.dtype)
        self.num_classes = num_classes


def lenet5(num_classes: int = 10, in_chans: int = 1, act: str = "squash", pool: str = "trainable",
           c3: str = "table", head: str = "rbf") -> LeNet5:
    return LeNet5(num_classes, in_chans, act=act, pool=pool, c3=c3, head=head)


_MNIST = "MNIST"
register(
    "lenet5", lenet5, family="lenet", paper=PAPER, input_size=(1, 32, 32), num_classes=10, recipe="lenet",
    published=Published(source="LeCun et al. 1998: sec. II.B (60,000 free parameters), sec. III "
                        "(0.95% test error without distortions)",
                        params=60_000, top1_err=0.95, dataset=_MNIST),
    description="LeNet-5 as published: squashing, trainable subsampling, C3 table, RBF output",
)
register(
    "lenet5_modern", lenet5, family="lenet", paper=PAPER, input_size=(1, 32, 32), num_classes=10, recipe="lenet",
    kwargs=dict(act="relu", pool="max", c3="full", head="linear"),
    description="LeNet-5 sizes with ReLU, max pooling, full C3 and a linear output",
)
