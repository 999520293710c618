"""VGG (Simonyan & Zisserman 2015): configurations A, A-LRN, B, C, D, E of the paper's Table 1.

One table, one builder. An int n is conv3-n (3x3, stride 1, pad 1, ReLU); (n, 1) is conv1-n
(1x1, pad 0: configuration C's extra non-linearity); "M" is 2x2/2 max pooling; "LRN" is AlexNet's
local response normalisation (A-LRN only, after the first conv). Then FC-4096, FC-4096, FC-classes
with dropout 0.5 after the two hidden FC layers.

Module names are torchvision's (features.N, avgpool, classifier.N): vgg11/13/16/19 and their
_bn forms load torchvision's state_dicts. Departures from the paper, all torchvision's:
- AdaptiveAvgPool2d(7) before the classifier: an identity at 224x224, it lets any input of at
  least 32x32 reach the 7x7x512 FC-4096. (The paper instead turns the FC layers into convolutions
  at test time and averages the class score map; same result at 224.)
- _bn: BatchNorm after every conv (not in the paper, which predates BN); the conv biases stay.
- He init (the paper initialised A from N(0, 0.01) and the deeper nets from A's layers, noting
  afterwards that Glorot init works without pre-training).
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract import ZooModel
from ..errors import InvalidArgumentError
from ..layers.basic import AdaptiveAvgPool2d, LocalResponseNorm, he_init
from ..registry import Paper, Published, register

_M = "M"
CFGS: dict[str, list] = {
    "A": [64, _M, 128, _M, 256, 256, _M, 512, 512, _M, 512, 512, _M],
    "A-LRN": [64, "LRN", _M, 128, _M, 256, 256, _M, 512, 512, _M, 512, 512, _M],
    "B": [64, 64, _M, 128, 128, _M, 256, 256, _M, 512, 512, _M, 512, 512, _M],
    "C": [64, 64, _M, 128, 128, _M, 256, 256, (256, 1), _M, 512, 512, (512, 1), _M,
          512, 512, (512, 1), _M],
    "D": [64, 64, _M, 128, 128, _M, 256, 256, 256, _M, 512, 512, 512, _M, 512, 512, 512, _M],
    "E": [64, 64, _M, 128, 128, _M, 256, 256, 256, 256, _M, 512, 512, 512, 512, _M,
          512, 512, 512, 512, _M],
}


class VGG(ZooModel):
    """features (conv [BN] ReLU ... max pool) x 5 stages, then FC-4096, FC-4096, FC-classes."""

    classifier_name = "classifier.6"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, cfg: str = "D",
                 batch_norm: bool = False, dropout: float = 0.5) -> None:
        super().__init__(num_classes, in_chans)
        if cfg not in CFGS:
            raise InvalidArgumentError(f"cfg must be one of {', '.join(CFGS)}; got {cfg!r}")
        if not 0.0 <= dropout < 1.0:
            raise InvalidArgumentError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        chs, reduction = in_chans, 1
        for item in CFGS[cfg]:
            if item == _M:  # timm's stages: each block's last ReLU, before its pool
                self.feature_info.append(
                    dict(num_chs=chs, reduction=reduction, module=f"features.{len(layers) - 1}"))
                layers.append(nn.MaxPool2d(2, 2))
                reduction *= 2
            elif item == "LRN":
                layers.append(LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0))
            else:
                out, k = item if isinstance(item, tuple) else (item, 3)
                layers.append(nn.Conv2d(chs, out, k, padding=k // 2))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out))
                layers.append(nn.ReLU(inplace=True))
                chs = out
        self.features = nn.Sequential(*layers)  # N x 512 x 7 x 7 at 224 x 224
        self.feature_info.append(dict(num_chs=chs, reduction=reduction, module=f"features.{len(layers) - 1}"))
        self.avgpool = AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(chs * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes) if num_classes else nn.Identity(),
        )
        self.num_features = chs
        self.head_hidden_size = 4096  # width of forward_head(..., pre_logits=True)
        he_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        x = self.classifier[:-1](x)
        return x if pre_logits else self.classifier[-1](x)


def vgg(num_classes: int = 1000, in_chans: int = 3, cfg: str = "D", batch_norm: bool = False,
        dropout: float = 0.5) -> VGG:
    return VGG(num_classes, in_chans, cfg=cfg, batch_norm=batch_norm, dropout=dropout)


PAPER = Paper(
    title="Very Deep Convolutional Networks for Large-Scale Image Recognition",
    authors="K. Simonyan, A. Zisserman", year=2015, url="https://arxiv.org/abs/1409.1556",
)
# name: (cfg, paper's Table 2 params in millions, Table 3 top-1/top-5 val error at S=256, Q=256)
_PAPER_NETS = {
    "vgg11": ("A", 133, 29.6, 10.4), "vgg11_lrn": ("A-LRN", 133, 29.7, 10.5),
    "vgg13": ("B", 133, 28.7, 9.9), "vgg16_c": ("C", 134, 28.1, 9.4),
    "vgg16": ("D", 138, 27.0, 8.8), "vgg19": ("E", 144, 27.3, 9.0),
}
# the configurations torchvision publishes (with and without BN); their figures come from its
# weights' rows (hub.table)
_TORCHVISION = ("vgg11", "vgg13", "vgg16", "vgg19")

for _name, (_cfg, _m, _top1, _top5) in _PAPER_NETS.items():
    _pub = Published(source=f"Simonyan & Zisserman 2015, Table 2 (params, rounded to millions) "
                     f"and Table 3 (config {_cfg}, train/test scale 256, ILSVRC-2012 val)",
                     params=_m * 1e6, top1_err=_top1, top5_err=_top5)
    register(_name, vgg, family="vgg", paper=PAPER, input_size=(3, 224, 224), recipe="vgg",
             kwargs=dict(cfg=_cfg), published=_pub,
             description=f"VGG configuration {_cfg}" + (" (torchvision-compatible)"
                                                        if _name in _TORCHVISION else ""))
    if _name in _TORCHVISION:
        register(f"{_name}_bn", vgg, family="vgg", paper=PAPER, input_size=(3, 224, 224), recipe="vgg",
                 kwargs=dict(cfg=_cfg, batch_norm=True),
                 description=f"VGG configuration {_cfg} with BatchNorm (torchvision-compatible)")
