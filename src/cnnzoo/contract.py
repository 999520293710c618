"""The contract every zoo model follows (timm's shape, kept small).

    forward(x)                      -> logits (in training mode, models with auxiliary
                                       classifiers return a `AuxOutputs`)
    forward_features(x)             -> the last feature map (N, num_features, h, w)
    forward_head(f, pre_logits=False) -> logits, or the vector fed to the last linear layer
    reset_classifier(num_classes)   -> a new last layer (num_classes=0 gives an identity)
    num_features, feature_info      -> channels of forward_features; per-stage channels/reduction

Subclasses set `classifier_name` to the dotted name of their last linear layer, so that
`reset_classifier` and weight surgery work without per-family code.

The output protocol lives here too, written once for every caller: `logits_of(output)` (the main
logits of a tensor, an AuxOutputs or torchvision's output tuples), `classification_loss` (with
the auxiliary heads' weighted losses) and `min_input_size` (a meta-device probe that goes through
forward_features/forward_head, so that `forward` can call it when an input is too small).
"""

from __future__ import annotations

import re
import types
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputShapeError

# Messages PyTorch raises when a feature map shrinks below a kernel (one list for the contract's
# forward and the analyzer's diagnosis).
SIZE_ERROR = re.compile(
    r"(too small|Kernel size can't be greater|smaller than kernel|greater than actual input"
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # dynamo keys its compiled code (and its recompile limit of 8) on the code object: with
        # one inherited forward shared by every family, a process compiling a few models ran
        # the later ones eager. Each class gets its own copy of the forward it inherits.
        if "forward" not in cls.__dict__:
            f = cls.forward
            copy = types.FunctionType(f.__code__.replace(), f.__globals__, f.__name__,
                                      f.__defaults__, f.__closure__)
            copy.__qualname__, copy.__doc__ = f"{cls.__qualname__}.forward", f.__doc__
            copy.__annotations__ = dict(f.__annotations__)
            cls.forward = copy

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling() and not torch.jit.is_scripting():
            self.check_input(x)
            try:
                return self.forward_head(self.forward_features(x))
            except RuntimeError as err:
                if SIZE_ERROR.search(str(err)):
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
        """Smallest square H=W this network accepts (-1 if none up to `limit`)."""
        return min_input_size(self, self.in_chans, limit)

    def _too_small_error(self, x: torch.Tensor) -> InputShapeError:
        smallest = self.min_input_size()
        need = f"at least {smallest}x{smallest}" if smallest > 0 else "a larger input"
        return InputShapeError(
            f"input {tuple(x.shape[-2:])} is too small for {type(self).__name__}: "
            f"it needs H and W of {need}"
        )


class AuxModel(ZooModel):
    """A ZooModel with auxiliary classifiers. Subclasses implement `features_with_aux(x, with_aux)`
    returning (features, list of aux logits) and list the aux heads' last layers in
    `aux_classifier_names`. In training mode (and aux_logits=True) forward returns AuxOutputs;
    in eval mode, plain logits."""

    aux_weight: float = 0.3
    aux_classifier_names: tuple[str, ...] = ()
    aux_logits: bool = True

    def features_with_aux(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_with_aux(x, False)[0]

    def _forward_aux(self, x: torch.Tensor) -> AuxOutputs:
        feats, aux = self.features_with_aux(x, True)
        return AuxOutputs(self.forward_head(feats), tuple(aux), self.aux_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor | AuxOutputs:
        if not (self.training and self.aux_logits):
            return super().forward(x)
        if torch.compiler.is_compiling() or torch.jit.is_scripting():
            return self._forward_aux(x)
        self.check_input(x)
        try:
            return self._forward_aux(x)
        except RuntimeError as err:
            if not SIZE_ERROR.search(str(err)):
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


# -- the output protocol --------------------------------------------------------------------------
def logits_of(out: Any) -> torch.Tensor:
    """The main logits of any model output: a tensor, our AuxOutputs, or torchvision's
    GoogLeNetOutputs/InceptionOutputs (whose first field is the logits)."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    return out[0]


def aux_logits_of(out: Any) -> tuple[torch.Tensor, ...]:
    """The auxiliary heads' logits of an output (none for a plain tensor)."""
    if isinstance(out, torch.Tensor):
        return ()
    aux = out.aux if isinstance(out, AuxOutputs) else out[1:]
    return tuple(a for a in aux if isinstance(a, torch.Tensor))


def classification_loss(out: Any, target: torch.Tensor, *, label_smoothing: float = 0.0,
                        aux_weight: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, main logits): cross-entropy of the main logits plus `aux_weight` times that of
    each auxiliary head; `aux_weight` defaults to the output's own (the paper's; GoogLeNet 0.3)."""
    logits = logits_of(out)
    loss = F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)
    aux = aux_logits_of(out)
    if aux:
        w = aux_weight if aux_weight is not None else getattr(out, "aux_weight", 0.3)
        for a in aux:
            loss = loss + w * F.cross_entropy(a.float(), target, label_smoothing=label_smoothing)
    return loss, logits


# -- the minimum-input probe ----------------------------------------------------------------------
def meta_state(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """Meta stand-ins for a model's parameters and buffers (None when it is already on meta):
    probing and tracing with them costs no memory and leaves the real weights untouched."""
    named = list(model.named_parameters(remove_duplicate=False)) + list(
        model.named_buffers(remove_duplicate=False))
    if all(t.is_meta for _, t in named):
        return None
    return {n: torch.empty_like(t, device="meta") for n, t in named}


def call_with_state(model: nn.Module, x: torch.Tensor, state: dict[str, torch.Tensor] | None) -> Any:
    """model(x), with the parameters and buffers of `state` in place of the model's own."""
    if state is None:
        return model(x)
    return torch.func.functional_call(model, state, (x,), strict=False, tie_weights=True)


class _Logits(nn.Module):
    """Runs a zoo model's features and head directly, not through its forward (whose size
    errors call the probe)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Any:
        m = self.model
        if isinstance(m, ZooModel):
            return m.forward_head(m.forward_features(x))
        return m(x)


def min_input_size(model: nn.Module, channels: int, limit: int = 2048) -> int:
    """Smallest square H=W that `model` accepts with `channels` input channels, found by
    bisection on the meta device in eval mode; -1 if none up to `limit`."""
    probe = _Logits(model)
    state = meta_state(model)
    if state is not None:
        state = {f"model.{k}": v for k, v in state.items()}
    was = {m: m.training for m in model.modules()}
    model.eval()

    def fits(s: int) -> bool:
        try:
            with torch.no_grad():
                call_with_state(probe, torch.empty(1, channels, s, s, device="meta"), state)
            return True
        except Exception:
            return False

    try:
        if not fits(limit):
            return -1
        lo, hi = 1, limit
        while lo < hi:  # output sizes only grow with the input, so bisect
            mid = (lo + hi) // 2
            if fits(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo
    finally:
        for m, t in was.items():
            m.training = t
