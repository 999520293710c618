"""AlexNet (Krizhevsky et al. 2012), its single-tower torchvision form, and ZFNet (Zeiler & Fergus).

One builder, three layer tables. Module names follow torchvision (features.N, avgpool,
classifier.N), so `alexnet` loads torchvision's state_dict as is.

    alexnet           the single-tower net of seed 003's table and torchvision ("one weird trick",
                      Krizhevsky 2014): 64-192-384-256-256 filters, no LRN, no groups.
    alexnet_original  the 2012 paper: 96-256-384-384-256 filters, conv2/4/5 split in two groups
                      (the two GPUs: each half reads only its own half of the previous layer), LRN
                      after the ReLU of conv1 and conv2 and before their pooling (paper sec. 3.3-3.5).
    zfnet             Zeiler & Fergus's Fig. 3 net with layers 3,4,5 widened to 512, 1024, 512 maps
                      (their Table 2 model "(b)"; seeds 003/004): conv1 96@7x7/2, conv2 256@5x5/2,
                      dense (ungrouped) convs, pool then "contrast normalization" after layers 1, 2.

All three keep torchvision's AdaptiveAvgPool2d(6) before the classifier: an identity at the
native size (the last pool already gives 6x6), it lets other input sizes reach the 6x6x C fc6.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..contract import ZooModel
from ..errors import InvalidArgumentError
from ..layers.basic import AdaptiveAvgPool2d, LocalResponseNorm
from ..registry import Paper, Published, register


class Conv(NamedTuple):
    out: int
    k: int
    stride: int = 1
    pad: int = 0
    groups: int = 1


# "R" ReLU, "N" LRN (k=2, n=5, alpha=1e-4, beta=0.75), "P" max pool 3x3/2 (overlapping),
# "Pc" the same in ceil mode.
CFGS: dict[str, list] = {
    "torchvision": [Conv(64, 11, 4, 2), "R", "P", Conv(192, 5, 1, 2), "R", "P",
                    Conv(384, 3, 1, 1), "R", Conv(256, 3, 1, 1), "R", Conv(256, 3, 1, 1), "R", "P"],
    # 227 -> 55 -> 27 -> 27 -> 13 -> 13 -> 13 -> 13 -> 6. The paper's text says 224, but only 227
    # gives its 55x55 conv1 maps with an 11x11/4 kernel and no padding (a well-known erratum).
    "original": [Conv(96, 11, 4, 0), "R", "N", "P", Conv(256, 5, 1, 2, groups=2), "R", "N", "P",
                 Conv(384, 3, 1, 1), "R", Conv(384, 3, 1, 1, groups=2), "R",
                 Conv(256, 3, 1, 1, groups=2), "R", "P"],
    # 224 -> 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 13 -> 6, the sizes of ZF's Fig. 3. The paper
    # gives no padding or rounding; conv1 pad 1 and ceil-mode pools 1-2 (Caffe's rounding)
    # are our choices that reproduce those sizes.
    "zfnet": [Conv(96, 7, 2, 1), "R", "Pc", "N", Conv(256, 5, 2, 0), "R", "Pc", "N",
              Conv(512, 3, 1, 1), "R", Conv(1024, 3, 1, 1), "R", Conv(512, 3, 1, 1), "R", "P"],
}


class AlexNet(ZooModel):
    """conv/ReLU/LRN/pool features (from a CFGS table), then fc 4096 - fc 4096 - fc classes."""

    classifier_name = "classifier.6"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, cfg: str = "torchvision",
                 dropout: float = 0.5) -> None:
        super().__init__(num_classes, in_chans)
        if cfg not in CFGS:
            raise InvalidArgumentError(f"cfg must be one of {', '.join(CFGS)}; got {cfg!r}")
        if not 0.0 <= dropout < 1.0:
            raise InvalidArgumentError(f"dropout must be in [0, 1), got {dropout}")
        self.cfg = cfg
        layers: list[nn.Module] = []
        chs, stride = in_chans, 1
        for i, item in enumerate(CFGS[cfg]):
            if isinstance(item, Conv):
                layers.append(nn.Conv2d(chs, item.out, item.k, item.stride, item.pad, groups=item.groups))
                chs, stride = item.out, stride * item.stride
            elif item == "R":
                layers.append(nn.ReLU(inplace=True))
            elif item == "N":
                layers.append(LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0))
            else:
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=item == "Pc"))
                stride *= 2
                self.feature_info.append(dict(num_chs=chs, reduction=stride, module=f"features.{i}"))
        self.features = nn.Sequential(*layers)
        self.avgpool = AdaptiveAvgPool2d((6, 6))
        if cfg == "torchvision":  # torchvision's order: dropout before fc6 and fc7
            head = [nn.Dropout(dropout), nn.Linear(chs * 36, 4096), nn.ReLU(inplace=True),
                    nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True)]
        else:  # the papers': dropout on the outputs of fc6 and fc7 (fc8 is classifier.6 in both)
            head = [nn.Linear(chs * 36, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
                    nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        self.classifier = nn.Sequential(*head, nn.Linear(4096, num_classes) if num_classes
                                        else nn.Identity())
        self.num_features = chs
        self.head_hidden_size = 4096  # width of forward_head(..., pre_logits=True)
        if cfg != "torchvision":
            self._paper_init()

    def _paper_init(self) -> None:
        """AlexNet sec. 5: weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden fc
        layers (to give the ReLUs positive inputs early on), 0 elsewhere. ZFNet sec. 3.1: weights
        1e-2, biases 0 (we read "initialized to 1e-2" as N(0, 0.01) like AlexNet's)."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        fcs = [m for m in self.classifier if isinstance(m, nn.Linear)]
        for m in convs + fcs:
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
        if self.cfg == "original":
            for m in [convs[1], convs[3], convs[4]] + fcs[:2]:
                nn.init.ones_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # N x C x 6 x 6 at the native size

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        x = self.classifier[:-1](x)
        return x if pre_logits else self.classifier[-1](x)


def alexnet(num_classes: int = 1000, in_chans: int = 3, cfg: str = "torchvision",
            dropout: float = 0.5) -> AlexNet:
    return AlexNet(num_classes, in_chans, cfg=cfg, dropout=dropout)


ALEXNET_PAPER = Paper(
    title="ImageNet Classification with Deep Convolutional Neural Networks",
    authors="A. Krizhevsky, I. Sutskever, G. E. Hinton", year=2012,
    url="https://papers.nips.cc/paper/2012/hash/c399862d3b9d6b76c8436e924a68c45b-Abstract.html",
)
ONE_WEIRD_TRICK = Paper(
    title="One weird trick for parallelizing convolutional neural networks",
    authors="A. Krizhevsky", year=2014, url="https://arxiv.org/abs/1404.5997",
)
ZF_PAPER = Paper(
    title="Visualizing and Understanding Convolutional Networks",
    authors="M. D. Zeiler, R. Fergus", year=2014, url="https://arxiv.org/abs/1311.2901",
)

register(
    "alexnet", alexnet, family="alexnet", paper=ONE_WEIRD_TRICK, input_size=(3, 227, 227),
    kwargs=dict(cfg="torchvision"), recipe="alexnet",  # torchvision's figures: from its weights' row (hub.table)
    description="single-tower AlexNet (64-192-384-256-256), torchvision-compatible",
)
register(
    "alexnet_original", alexnet, family="alexnet", paper=ALEXNET_PAPER, input_size=(3, 227, 227),
    kwargs=dict(cfg="original"), recipe="alexnet",
    published=(
        Published(source="Krizhevsky et al. 2012, abstract and Table 1 (1 CNN, ILSVRC-2010 test)",
                  params=60e6, top1_err=37.5, top5_err=17.0, dataset="ImageNet ILSVRC-2010"),
        Published(source="Krizhevsky et al. 2012, Table 2 (1 CNN, ILSVRC-2012 val)",
                  top1_err=40.7, top5_err=18.2),
    ),
    description="the 2012 two-GPU AlexNet: grouped conv2/4/5, LRN, 96-256-384-384-256",
)
register(
    "zfnet", alexnet, family="alexnet", paper=ZF_PAPER, input_size=(3, 224, 224),
    kwargs=dict(cfg="zfnet"), recipe="alexnet",
    published=Published(source="Zeiler & Fergus 2014, Table 2, model (b): 1 convnet, layers 3,4,5 "
                        "with 512,1024,512 maps (ILSVRC-2012 val)", top1_err=37.5, top5_err=16.0),
    description="ZFNet: AlexNet with conv1 7x7/2, conv2 stride 2, conv3-5 of 512-1024-512",
)
