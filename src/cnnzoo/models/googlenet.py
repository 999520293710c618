"""GoogLeNet (Inception v1), Szegedy et al. 2014, as the paper's Table 1 (= seed 001's table),
and torchvision's variant, state_dict-compatible with `torchvision.models.googlenet`.

Paper (`googlenet`): convs with bias + ReLU, no BN; LRN after the first pool and after conv3
(Caffe's reference: n=5, alpha=1e-4 divided by n, beta=0.75, k=1); 5x5 convs in the third branch;
3x3/2 max pools in ceil mode; two auxiliary classifiers on 4a and 4d (avg pool 5x5/3, 1x1 conv
128, FC 1024, dropout 0.7, FC), each weighted 0.3 in the loss; dropout 0.4 before the last FC.

torchvision (`googlenet_tv`) departs from the paper: BN (eps 1e-3) after every conv and no conv
bias; no LRN; 3x3 instead of 5x5 in the third branch (a bug kept for its weights); maxpool4 is
2x2/2; the aux heads pool adaptively to 4x4; dropout 0.2; optional `transform_input` (re-normalise
ImageNet-normalised input to [-1, 1]; off by default here, as in torchvision without weights).
The global 7x7 average pool is adaptive in both, so smaller inputs work in eval mode.
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract import AuxModel
from ..errors import InvalidArgumentError
from ..layers.basic import AdaptiveAvgPool2d, ConvBnAct, LocalResponseNorm, transform_input
from ..layers.inception import InceptionAux, InceptionModule
from ..registry import Paper, Published, register

# Table 1 of the paper (seed 001): #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_TABLE: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
POOL_BEFORE = {"4a": "maxpool3", "5a": "maxpool4"}  # 3x3/2 max pools between the stages
AUX_AFTER = {"4a": "aux1", "4d": "aux2"}


class GoogLeNet(AuxModel):
    classifier_name = "fc"
    aux_classifier_names = ("aux1.fc2", "aux2.fc2")
    aux_weight = 0.3  # paper, Sec. 5: "their loss is added to the total loss ... weight 0.3"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, *, batch_norm: bool = False,
                 lrn: bool = True, branch3_kernel: int = 5, pool4_kernel: int = 3,
                 aux_pool: str = "avg5s3", dropout: float = 0.4, aux_logits: bool = True,
                 transform_input: bool = False) -> None:
        super().__init__(num_classes, in_chans)
        if transform_input and in_chans != 3:
            raise InvalidArgumentError("transform_input re-normalises RGB input; it needs in_chans=3")
        self.aux_logits = aux_logits
        self.transform_input = transform_input

        def conv(i: int, o: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
            return ConvBnAct(i, o, k, stride=stride, padding=padding, bn=batch_norm, bn_eps=1e-3)

        # Stem: 7x7/2, pool, (LRN), 1x1 reduce, 3x3, (LRN), pool. N x 3 x 224 x 224 -> 192 x 28 x 28
        self.conv1 = conv(in_chans, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.lrn1 = LocalResponseNorm(5, alpha=1e-4 / 5, beta=0.75, k=1.0) if lrn else nn.Identity()
        self.conv2 = conv(64, 64, 1)
        self.conv3 = conv(64, 192, 3, padding=1)
        self.lrn2 = LocalResponseNorm(5, alpha=1e-4 / 5, beta=0.75, k=1.0) if lrn else nn.Identity()
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)

        chs = 192
        self.stage_names: list[str] = []
        self.feature_info = [dict(num_chs=64, reduction=2, module="conv1"),
                             dict(num_chs=192, reduction=4, module="conv3")]
        for name, cols in INCEPTION_TABLE.items():
            if name in POOL_BEFORE:
                self.feature_info.append(dict(num_chs=chs, reduction=self.feature_info[-1]["reduction"] * 2,
                                              module=self.stage_names[-1]))
                k = 3 if POOL_BEFORE[name] == "maxpool3" else pool4_kernel
                setattr(self, POOL_BEFORE[name], nn.MaxPool2d(k, 2, ceil_mode=True))
                self.stage_names.append(POOL_BEFORE[name])
            block = InceptionModule(chs, *cols, conv=conv, branch3_kernel=branch3_kernel)
            setattr(self, f"inception{name}", block)
            self.stage_names.append(f"inception{name}")
            chs = block.out_chs
            if name in AUX_AFTER and aux_logits:
                pool = nn.AvgPool2d(5, 3) if aux_pool == "avg5s3" else AdaptiveAvgPool2d(4)
                setattr(self, AUX_AFTER[name], InceptionAux(chs, num_classes, conv=conv, pool=pool))
        self.feature_info.append(dict(num_chs=chs, reduction=32, module="inception5b"))
        self.num_features = chs  # 1024

        self.avgpool = nn.AdaptiveAvgPool2d(1)  # the paper's 7x7/1 average pool at 224x224
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(chs, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's init (truncated normal, std 0.01); the paper used DistBelief's defaults.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.01, a=-2, b=2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def features_with_aux(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.transform_input:
            x = transform_input(x)
        x = self.maxpool1(self.conv1(x))           # N x 64 x 56 x 56
        x = self.conv3(self.conv2(self.lrn1(x)))   # N x 192 x 56 x 56
        x = self.maxpool2(self.lrn2(x))            # N x 192 x 28 x 28
        aux = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            if with_aux and name[-2:] in AUX_AFTER:  # after 4a (N x 512 x 14 x 14) and 4d (528)
                aux.append(getattr(self, AUX_AFTER[name[-2:]])(x))
        return x, aux                                # N x 1024 x 7 x 7

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)


def googlenet(num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True) -> GoogLeNet:
    """The paper's GoogLeNet (Table 1): LRN, 5x5 branches, biased convs without BN."""
    return GoogLeNet(num_classes, in_chans, aux_logits=aux_logits)


def googlenet_tv(num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                 transform_input: bool = False) -> GoogLeNet:
    """torchvision's GoogLeNet: BN, 3x3 third branch, 2x2 maxpool4, adaptive aux pooling."""
    return GoogLeNet(num_classes, in_chans, batch_norm=True, lrn=False, branch3_kernel=3,
                     pool4_kernel=2, aux_pool="adaptive", dropout=0.2, aux_logits=aux_logits,
                     transform_input=transform_input)


PAPER = Paper("Going Deeper with Convolutions", "Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, "
              "Erhan, Vanhoucke, Rabinovich", 2014, "https://arxiv.org/abs/1409.4842")

register("googlenet", googlenet, family="googlenet", paper=PAPER, input_size=(3, 224, 224), recipe="googlenet",
         published=(
             # Table 1's "ops" column summed (1502M) but with conv1 at the rule's 118M instead of
             # its printed 34M (see docs/models-multibranch.md); the text says "1.5 billion".
             # top-5: Table 5, one model and one crop (6.67 is the 7-model, 144-crop ensemble)
             Published(source="Szegedy et al. 2014, Table 1 (ops column, conv1 corrected), Table 5",
                       macs=1586e6, top5_err=10.07),
         ),
         description="GoogLeNet as in the paper's Table 1: LRN, 5x5 branches, 2 aux classifiers")
register("googlenet_tv", googlenet_tv, family="googlenet", paper=PAPER, input_size=(3, 224, 224),
         recipe="googlenet",
         description="torchvision's GoogLeNet (BN, 3x3 for 5x5); loads its state_dict")
