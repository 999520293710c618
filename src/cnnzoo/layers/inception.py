"""The GoogLeNet-style inception module, the auxiliary classifier head, and the training-mode
forward that returns auxiliary logits. Written once; used by googlenet, googlenet_tv and
bn_inception (and the aux forward by inception_v3).

Branch names branch1..branch4 and aux names conv/fc1/fc2 are torchvision's (checkpoint keys).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..contract import _SIZE_ERROR, AuxOutputs, ZooModel
from ..errors import InputShapeError

ConvFn = Callable[..., nn.Module]  # conv(in_chs, out_chs, kernel_size, stride=, padding=)


class InceptionModule(nn.Module):
    """Four parallel branches concatenated on channels (Szegedy et al. 2014, Fig. 2b):

        branch1: 1x1                                  (#1x1; 0 drops the branch)
        branch2: 1x1 reduce -> 3x3                    (#3x3 reduce, #3x3)
        branch3: 1x1 reduce -> 5x5                    (#5x5 reduce, #5x5); kernel 3 gives
                 torchvision's variant, double=True two stacked 3x3 (BN-Inception)
        branch4: 3x3 pool -> 1x1 projection           (pool proj; 0 = pool output passed through)

    stride=2 (BN-Inception 3c/4e) puts the stride on the last conv of branches 2-3 and the pool.
    """

    def __init__(self, in_chs: int, c1x1: int, c3x3_red: int, c3x3: int, c5x5_red: int, c5x5: int,
                 pool_proj: int, *, conv: ConvFn, branch3_kernel: int = 5, double: bool = False,
                 pool: str = "max", stride: int = 1) -> None:
        super().__init__()
        if stride == 1:
            pool_layer: nn.Module = (nn.MaxPool2d(3, 1, padding=1, ceil_mode=True) if pool == "max"
                                     else nn.AvgPool2d(3, 1, padding=1))
        else:  # the reduction modules pool 3x3/2 (ceil mode, as Caffe)
            pool_layer = nn.MaxPool2d(3, stride, ceil_mode=True)
        k = branch3_kernel
        self.branch1 = conv(in_chs, c1x1, 1) if c1x1 else None
        self.branch2 = nn.Sequential(conv(in_chs, c3x3_red, 1),
                                     conv(c3x3_red, c3x3, 3, stride=stride, padding=1))
        if double:
            self.branch3 = nn.Sequential(conv(in_chs, c5x5_red, 1), conv(c5x5_red, c5x5, 3, padding=1),
                                         conv(c5x5, c5x5, 3, stride=stride, padding=1))
        else:
            self.branch3 = nn.Sequential(conv(in_chs, c5x5_red, 1),
                                         conv(c5x5_red, c5x5, k, stride=stride, padding=k // 2))
        self.branch4 = nn.Sequential(pool_layer, conv(in_chs, pool_proj, 1)) if pool_proj else pool_layer
        self.out_chs = c1x1 + c3x3 + c5x5 + (pool_proj or in_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.branch2(x), self.branch3(x), self.branch4(x)]
        if self.branch1 is not None:
            outs.insert(0, self.branch1(x))
        return torch.cat(outs, 1)


class InceptionAux(nn.Module):
    """GoogLeNet's auxiliary classifier: pool to 4x4, 1x1 conv 128 + ReLU, FC 1024 + ReLU,
    dropout 0.7, FC. The paper pools 5x5/3 (4x4 from a 14x14 map); torchvision pools adaptively."""

    def __init__(self, in_chs: int, num_classes: int, *, conv: ConvFn, pool: nn.Module,
                 dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = pool
        self.conv = conv(in_chs, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        if x.shape[-2:] != (4, 4):  # fc1 is sized for the paper's 4x4 grid
            raise InputShapeError(
                f"auxiliary classifier needs a 4x4 pooled map, got {tuple(x.shape[-2:])}: train at "
                "the native input size (224x224), or build the model with aux_logits=False")
        x = torch.flatten(self.conv(x), 1)
        return self.fc2(self.dropout(self.act(self.fc1(x))))


class AuxModel(ZooModel):
    """A ZooModel with auxiliary classifiers. Subclasses implement `features_with_aux(x, with_aux)`
    returning (features, list of aux logits) and list the aux heads' last layers in
    `aux_classifier_names`. In training mode (and aux_logits=True) forward returns AuxOutputs;
    in eval mode, plain logits."""

    aux_weight: float = 0.3
    aux_classifier_names: tuple[str, ...] = ()
    aux_logits: bool = True

    def features_with_aux(self, x: torch.Tensor, with_aux: bool):
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_with_aux(x, False)[0]

    def _forward_aux(self, x: torch.Tensor) -> AuxOutputs:
        feats, aux = self.features_with_aux(x, True)
        return AuxOutputs(self.forward_head(feats), tuple(aux), self.aux_weight)

    def forward(self, x: torch.Tensor):
        if not (self.training and self.aux_logits):
            return super().forward(x)
        if torch.compiler.is_compiling() or torch.jit.is_scripting():
            return self._forward_aux(x)
        self.check_input(x)
        try:
            return self._forward_aux(x)
        except RuntimeError as err:
            if not _SIZE_ERROR.search(str(err)):
                raise
            smallest = self.min_input_size()  # of the eval-mode network
            if 0 < smallest <= min(x.shape[-2:]):
                raise InputShapeError(
                    f"input {tuple(x.shape[-2:])} is too small for the auxiliary classifier(s) of "
                    f"{type(self).__name__} in training mode: train at the native input size, or "
                    "build the model with aux_logits=False") from err
            raise self._too_small_error(x) from err

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the main classifier and the last layer of every auxiliary head."""
        super().reset_classifier(num_classes)
        if not self.aux_logits:
            return
        for name in self.aux_classifier_names:
            old = self.get_submodule(name)
            in_features = old.in_features if isinstance(old, nn.Linear) else old.in_features_
            new: nn.Module = nn.Linear(in_features, num_classes) if num_classes else _Identity(in_features)
            if isinstance(old, nn.Linear):
                new = new.to(device=old.weight.device, dtype=old.weight.dtype)
            parent, _, child = name.rpartition(".")
            setattr(self.get_submodule(parent), child, new)


class _Identity(nn.Identity):
    """An identity that remembers the width it stands in for (so a later reset can restore it)."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features_ = in_features
