"""The contract every zoo model follows (timm's shape, kept small).

    forward(x)                      -> logits (in training mode, models with auxiliary
                                       classifiers return a `AuxOutputs`)
    forward_features(x)             -> the last feature map (N, num_features, h, w)
    forward_head(f, pre_logits=False) -> logits, or the vector fed to the last linear layer
    reset_classifier(num_classes)   -> a new last layer (num_classes=0 gives an identity)
    num_features, feature_info      -> channels of forward_features; per-stage channels/reduction

Subclasses set `classifier_name` to the dotted name of their last linear layer, so that
`reset_classifier` and weight surgery work without per-family code.
"""

from __future__ import annotations

import copy
import re
from typing import NamedTuple

import torch
from torch import nn

from .errors import InputShapeError

# Messages PyTorch raises when a feature map shrinks below a kernel.
_SIZE_ERROR = re.compile(
    r"(output size is too small|Kernel size can't be greater|input image .* smaller than kernel"
    r"|non-positive|Calculated (padded )?input size|negative dimension|size of tensor)",
    re.IGNORECASE,
)


class AuxOutputs(NamedTuple):
    """Training-mode output of models with auxiliary classifiers (GoogLeNet, Inception v3)."""

    logits: torch.Tensor
    aux: tuple[torch.Tensor, ...]
    aux_weight: float  # the paper's weight of each auxiliary loss (GoogLeNet: 0.3)


class ZooModel(nn.Module):
    classifier_name: str = "fc"

    def __init__(self, num_classes: int, in_chans: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 0
        self.feature_info: list[dict] = []  # dicts: num_chs, reduction, module

    # -- the contract ---------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor):
        if not torch.compiler.is_compiling() and not torch.jit.is_scripting():
            self.check_input(x)
            try:
                return self.forward_head(self.forward_features(x))
            except RuntimeError as err:
                if _SIZE_ERROR.search(str(err)):
                    raise self._too_small_error(x) from err
                raise
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last linear layer; 0 gives an identity (features out)."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        old = self.get_classifier()
        # Remember the layer's shape, so that a classifier removed with 0 can be put back.
        if isinstance(old, nn.Linear):
            self._classifier_spec = ("linear", old.in_features, 1)
        elif isinstance(old, nn.Conv2d):  # e.g. SqueezeNet's conv classifier
            self._classifier_spec = ("conv", old.in_channels, old.kernel_size)
        elif not isinstance(old, nn.Identity):
            raise TypeError(f"{type(self).__name__} must override reset_classifier")
        kind, width, ks = getattr(self, "_classifier_spec", None) or (
            "linear", getattr(self, "head_hidden_size", None) or self.num_features, 1)
        if not num_classes:
            new: nn.Module = nn.Identity()
        elif kind == "linear":
            new = nn.Linear(width, num_classes)
        else:
            new = nn.Conv2d(width, num_classes, ks)
        ref = next(self.parameters(), None)
        if ref is not None:  # keep the model's device and dtype
            new = new.to(device=ref.device, dtype=ref.dtype)
        parent_name, _, child = self.classifier_name.rpartition(".")
        parent = self.get_submodule(parent_name) if parent_name else self
        setattr(parent, child, new)
        self.num_classes = num_classes

    # -- input checks -----------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise InputShapeError(
                f"{type(self).__name__} expects a 4-D batch (N, C, H, W); got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_chans:
            raise InputShapeError(
                f"{type(self).__name__} was built for {self.in_chans} input channel(s) "
                f"(in_chans={self.in_chans}); got {x.shape[1]} in shape {tuple(x.shape)}"
            )

    def min_input_size(self, limit: int = 1024) -> int:
        """Smallest square H=W this network accepts, found by probing a meta-device copy."""
        name = getattr(self, "model_name", None)
        if name is not None:  # rebuild on the meta device: no copy of the real weights
            from .registry import create_model

            with torch.device("meta"):
                probe = create_model(name, num_classes=max(self.num_classes, 1),
                                     in_chans=self.in_chans, **getattr(self, "arch_kwargs", {}))
        else:
            probe = copy.deepcopy(self).to("meta")
        probe.eval()

        def ok(s: int) -> bool:
            try:
                with torch.no_grad():
                    probe.forward_head(probe.forward_features(
                        torch.empty(1, self.in_chans, s, s, device="meta")))
                return True
            except Exception:
                return False

        lo, hi = 1, limit
        if not ok(hi):
            return -1
        while lo < hi:  # output sizes only grow with the input, so bisect
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _too_small_error(self, x: torch.Tensor) -> InputShapeError:
        smallest = self.min_input_size()
        need = f"at least {smallest}x{smallest}" if smallest > 0 else "a larger input"
        return InputShapeError(
            f"input {tuple(x.shape[-2:])} is too small for {type(self).__name__}: "
            f"it needs H and W of {need}"
        )
