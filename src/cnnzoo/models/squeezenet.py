"""SqueezeNet 1.0 (Iandola et al. 2016, Table 1) and 1.1 (the reference repo's cheaper variant:
3x3/64 first conv, pools moved earlier). torchvision-compatible layout and names.

Fire module: squeeze 1x1 (s1x1) + ReLU, then expand 1x1 (e1x1) and 3x3 (e3x3) in parallel + ReLU,
concatenated. No FC layer: a 1x1 conv to num_classes, ReLU, global average pool.
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract import ZooModel
from ..errors import InvalidArgumentError
from ..registry import Paper, Published, register


def init_weights(net: nn.Module, final: nn.Conv2d) -> None:
    """torchvision's SqueezeNet init: Kaiming-uniform convs, the class conv at std 0.01, zero biases.
    PyTorch's default conv init shrinks the signal through the fires until the net cannot start."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            if m is final:
                nn.init.normal_(m.weight, 0.0, 0.01)
            else:
                nn.init.kaiming_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class Fire(nn.Module):
    def __init__(self, in_chs: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_chs, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


# "M" = max pool 3x3/2 (ceil mode); (s1x1, e1x1, e3x3) = fire module. Index = torchvision's key.
CONFIGS = {
    "1_0": dict(stem=(96, 7), layers=["M", (16, 64, 64), (16, 64, 64), (32, 128, 128), "M",
                                      (32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256),
                                      "M", (64, 256, 256)]),
    "1_1": dict(stem=(64, 3), layers=["M", (16, 64, 64), (16, 64, 64), "M", (32, 128, 128),
                                      (32, 128, 128), "M", (48, 192, 192), (48, 192, 192),
                                      (64, 256, 256), (64, 256, 256)]),
}


class SqueezeNet(ZooModel):
    classifier_name = "classifier.1"  # a 1x1 conv

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, version: str = "1_0",
                 dropout: float = 0.5) -> None:
        super().__init__(num_classes, in_chans)
        if version not in CONFIGS:
            raise InvalidArgumentError(f"version must be one of {sorted(CONFIGS)}, got {version!r}")
        cfg = CONFIGS[version]
        chs, k = cfg["stem"]
        layers: list[nn.Module] = [nn.Conv2d(in_chans, chs, k, stride=2), nn.ReLU(inplace=True)]
        self.feature_info, reduction = [], 2
        for spec in cfg["layers"]:
            if spec == "M":
                self.feature_info.append(dict(num_chs=chs, reduction=reduction,
                                              module=f"features.{len(layers) - 1}"))
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
                reduction *= 2
            else:
                layers.append(Fire(chs, *spec))
                chs = spec[1] + spec[2]
        self.features = nn.Sequential(*layers)
        self.feature_info.append(dict(num_chs=chs, reduction=reduction, module=f"features.{len(layers) - 1}"))
        self.num_features = chs
        final = nn.Conv2d(chs, num_classes, 1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), final, nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d(1))
        init_weights(self, final)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # N x 512 x 13 x 13 at 224 (1.0; 1.1: 13 x 13 too)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:  # the classifier is a conv applied at every position; pool the features
            return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return torch.flatten(self.classifier(x), 1)


def squeezenet(num_classes: int = 1000, in_chans: int = 3, version: str = "1_0") -> SqueezeNet:
    return SqueezeNet(num_classes, in_chans, version=version)


_PAPER = Paper("SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
               "Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer", 2016, "https://arxiv.org/abs/1602.07360")
register("squeezenet1_0", squeezenet, family="squeezenet", input_size=(3, 224, 224),
         kwargs={"version": "1_0"}, paper=_PAPER,
         published=Published(source="Iandola et al. 2016, Table 1", params=1_248_424),
         description="SqueezeNet 1.0 (fire modules), torchvision-compatible")
register("squeezenet1_1", squeezenet, family="squeezenet", input_size=(3, 224, 224),
         kwargs={"version": "1_1"}, paper=_PAPER,
         description="SqueezeNet 1.1 (2.4x less computation than 1.0), torchvision-compatible")
