"""Network In Network (Lin, Chen, Yan 2013): the origin of the 1x1 convolution (seeds 002, 004).

An mlpconv block is a spatial convolution followed by two 1x1 convolutions (the paper's
"cascaded cross channel parametric pooling"), each with a ReLU: a small multilayer perceptron
slid over every position. There is no fully connected layer: the last 1x1 convolution has one
channel per class and global average pooling turns its maps into logits.

`nin_cifar` is the authors' released CIFAR-10 definition (three mlpconv blocks, 192-wide);
`nin_imagenet` the authors' ImageNet model from the Caffe model zoo (four blocks, the fourth
1024-wide). Caffe pools with ceil rounding; ceil_mode=True keeps its sizes (32 -> 16 -> 8 on
CIFAR-10, 54 -> 27 on ImageNet). The final pooling is adaptive, so other input sizes work
(28x28 Fashion-MNIST: 28 -> 14 -> 7).
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract import ZooModel
from ..errors import InvalidArgumentError
from ..registry import Paper, Published, register

# One mlpconv block: (kernel, stride, padding, widths of the spatial conv and its two 1x1s),
# then the pooling after it ("max", "avg" or None) and whether dropout follows that pooling.
CONFIGS = {
    "cifar": [((5, 1, 2, (192, 160, 96)), "max", True),
              ((5, 1, 2, (192, 192, 192)), "avg", True),
              ((3, 1, 1, (192, 192, None)), None, False)],
    "imagenet": [((11, 4, 0, (96, 96, 96)), "max", False),
                 ((5, 1, 2, (256, 256, 256)), "max", False),
                 ((3, 1, 1, (384, 384, 384)), "max", True),
                 ((3, 1, 1, (1024, 1024, None)), None, False)],
}


def _relu_conv(in_chs: int, out_chs: int, k: int = 1, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(in_chs, out_chs, k, stride, padding), nn.ReLU(inplace=True)]


class NiN(ZooModel):
    classifier_name = "classifier.0"  # the last 1x1 conv: one output map per class

    def __init__(self, num_classes: int = 10, in_chans: int = 3, config: str = "cifar",
                 dropout: float = 0.5) -> None:
        super().__init__(num_classes, in_chans)
        if config not in CONFIGS:
            raise InvalidArgumentError(f"config must be one of {sorted(CONFIGS)}, got {config!r}")
        layers: list[nn.Module] = []
        self.feature_info, reduction, chs = [], 1, in_chans
        for (k, stride, pad, (w0, w1, w2)), pool, drop in CONFIGS[config]:
            layers += _relu_conv(chs, w0, k, stride, pad) + _relu_conv(w0, w1)
            chs, reduction = w1, reduction * stride
            if w2 is not None:  # the last block's second 1x1 is the classifier
                layers += _relu_conv(w1, w2)
                chs = w2
            self.feature_info.append(dict(num_chs=chs, reduction=reduction,
                                          module=f"features.{len(layers) - 1}"))
            if pool:
                kind = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
                layers.append(kind(3, 2, ceil_mode=True))
                reduction *= 2
            if drop:
                layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.num_features = chs
        final = nn.Conv2d(chs, num_classes, 1)
        self.classifier = nn.Sequential(final, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        for m in self.modules():  # He init (the authors' Caffe files used fixed Gaussians)
            if isinstance(m, nn.Conv2d):
                if m is final:
                    nn.init.normal_(m.weight, 0.0, 0.01)
                else:
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # N x 192 x 8 x 8 at 32 (cifar); N x 1024 x 6 x 6 at 224

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:  # the classifier is a conv applied at every position; pool the features
            return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return torch.flatten(self.classifier(x), 1)


def nin(num_classes: int = 10, in_chans: int = 3, config: str = "cifar") -> NiN:
    return NiN(num_classes, in_chans, config=config)


_PAPER = Paper("Network In Network", "Lin, Chen, Yan", 2013, "https://arxiv.org/abs/1312.4400")
register("nin_cifar", nin, family="nin", input_size=(3, 32, 32), num_classes=10,
         kwargs={"config": "cifar"}, paper=_PAPER,
         published=(Published("Lin et al. 2013, Table 1 (NIN + Dropout)", top1_err=10.41,
                              dataset="CIFAR-10"),
                    Published("Lin et al. 2013, Table 1 (NIN + Dropout + Augmentation)",
                              top1_err=8.81, dataset="CIFAR-10")),
         description="NiN, the authors' CIFAR-10 model: three mlpconv blocks, global average pooling")
register("nin_imagenet", nin, family="nin", input_size=(3, 224, 224), num_classes=1000,
         kwargs={"config": "imagenet"}, paper=_PAPER,
         description="NiN, the authors' ImageNet model (Caffe model zoo): four mlpconv blocks")
