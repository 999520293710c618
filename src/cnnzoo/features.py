"""Multi-scale backbones, timm's `features_only` API: `create_model(name, features_only=True,
out_indices=(...))` gives a module whose forward returns the feature maps of the stages
`feature_info` names, for a detector's or segmenter's neck.

The stages come from each model's own `feature_info` (declared next to its builder: one module
per resolution step), plus the stem, found generically: the last module that runs once, before
the first declared stage, at a finer resolution than that stage (ResNet's `relu` at stride 2,
DenseNet's `features.relu0`), as timm lists its `act1`. The maps are taken with forward hooks
while the network's own `forward_features` runs, so nothing is rebuilt and a classifier's state
dict loads into the backbone (its head keys are dropped).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from .errors import InvalidArgumentError


class FeatureInfo:
    """The stages a backbone returns: channels, reduction (input stride) and module name each."""

    def __init__(self, stages: Sequence[dict[str, Any]], out_indices: Sequence[int]) -> None:
        self.stages = [dict(s) for s in stages]
        self.out_indices = tuple(out_indices)

    def _get(self, key: str, idx: int | Sequence[int] | None) -> Any:
        if idx is None:
            return [self.stages[i][key] for i in self.out_indices]
        if isinstance(idx, int):
            return self.stages[self.out_indices[idx]][key]
        return [self.stages[self.out_indices[i]][key] for i in idx]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        return self._get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        return self._get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        return self._get("module", idx)

    def get_dicts(self) -> list[dict[str, Any]]:
        return [dict(self.stages[i], index=i) for i in self.out_indices]

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.get_dicts()[i]

    def __len__(self) -> int:
        return len(self.out_indices)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.get_dicts())

    def __repr__(self) -> str:
        return f"FeatureInfo({self.get_dicts()})"


class _Reached(Exception):
    """Stops the probe at the first declared stage: the stem lies before it."""


def _probe(model: nn.Module, size: tuple[int, int, int],
           until: str) -> list[tuple[str, tuple[int, ...]]]:
    """(module name, output shape) of every module call that completes before module `until`
    starts, in completion order, on the meta device."""
    calls: list[tuple[str, tuple[int, ...]]] = []
    handles = []

    def stop(*_: Any) -> None:
        raise _Reached

    for name, m in model.named_modules():
        if name == until:
            handles.append(m.register_forward_pre_hook(stop))
        elif name:
            handles.append(m.register_forward_hook(
                lambda mod, i, o, n=name: calls.append((n, tuple(o.shape)))
                if isinstance(o, torch.Tensor) else None))
    try:
        x = torch.empty(1, *size, device="meta")
        with torch.no_grad():
            _meta_copy(model).forward_features(x)
    except _Reached:
        pass
    finally:
        for h in handles:
            h.remove()
    return calls


def _meta_copy(model: nn.Module) -> nn.Module:
    """The model itself when it lives on the meta device, else a shape-only copy (the hooks
    come along): probing costs no memory and no arithmetic."""
    p = next(model.parameters(), None)
    if p is None or p.device.type == "meta":
        return model
    memo: dict[int, Any] = {}
    for t in model.parameters():
        memo[id(t)] = nn.Parameter(torch.empty_like(t, device="meta"), t.requires_grad)
    for t in model.buffers():
        memo[id(t)] = torch.empty_like(t, device="meta")
    return copy.deepcopy(model, memo)


def stages_of(model: nn.Module, size: tuple[int, int, int]) -> list[dict[str, Any]]:
    """The model's declared `feature_info` stages, with the stem prepended where it has one
    at a finer resolution than the first declared stage."""
    declared = [dict(s) for s in getattr(model, "feature_info", None) or []]
    if not declared:
        raise InvalidArgumentError(
            f"{type(model).__name__} declares no feature_info stages; features_only needs them")
    first = declared[0]["module"]
    calls = _probe(model, size, first)
    counts: dict[str, int] = {}
    for n, _ in calls:
        counts[n] = counts.get(n, 0) + 1
    h = size[1]
    stem = None
    for n, shape in calls:
        leaf = not any(c.startswith(n + ".") for c, _ in calls)
        # run once (a shared activation's hook could not tell its calls apart), a leaf, finer
        # than the first stage
        if len(shape) == 4 and counts[n] == 1 and leaf and shape[2] < h:
            red = 2 ** round(math.log2(h / shape[2]))
            if red < declared[0]["reduction"]:
                stem = {"num_chs": shape[1], "reduction": red, "module": n}
    return ([stem] if stem else []) + declared


def _select(n: int, out_indices: Sequence[int] | None) -> tuple[int, ...]:
    if out_indices is None:
        return tuple(range(n))
    if isinstance(out_indices, int) or not len(out_indices):
        raise InvalidArgumentError(
            f"out_indices must be a non-empty sequence of stage indices in -{n}..{n - 1}, "
            f"got {out_indices!r}")
    picked = []
    for i in out_indices:
        if isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n:
            raise InvalidArgumentError(
                f"out_indices {tuple(out_indices)}: {i!r} is not a stage index; this model has "
                f"{n} stages (0..{n - 1}, or -{n}..-1 from the end)")
        picked.append(i % n)
    if len(set(picked)) != len(picked):
        raise InvalidArgumentError(f"out_indices {tuple(out_indices)} names a stage twice")
    return tuple(sorted(picked))


class _Keep:
    """Forward hook storing one stage's output in its backbone's list (an object, not a
    closure, so that a deep copy of the backbone hooks into the copy)."""

    def __init__(self, owner: FeatureNet, k: int) -> None:
        self.owner, self.k = owner, k

    def __call__(self, module: nn.Module, inp: Any, out: torch.Tensor) -> None:
        maps = self.owner._maps
        if self.k < len(maps):
            maps[self.k] = out


class FeatureNet(nn.Module):
    """A classifier without its head, returning a list of stage feature maps (shallow first).

    Its submodules are the classifier's own (same names, so state dicts match); the classifier's
    `forward_features` runs, and forward hooks on the chosen stages collect their outputs."""

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | None = None,
                 size: tuple[int, int] = (224, 224)) -> None:
        super().__init__()
        stages = stages_of(model, (int(getattr(model, "in_chans", 3)), *size))
        self.feature_info = FeatureInfo(stages, _select(len(stages), out_indices))
        head = getattr(model, "classifier_name", "fc").split(".")[0]
        self._head = head
        for name, child in model.named_children():
            if name != head:
                self.add_module(name, child)
        object.__setattr__(self, "_net", model)  # not a submodule: its head stays out
        self.model_name = getattr(model, "model_name", None)
        self.in_chans = int(getattr(model, "in_chans", 3))
        self._maps: list[torch.Tensor | None] = []
        modules = dict(model.named_modules())
        names = self.feature_info.module_name()
        for k, name in enumerate(names):
            modules[name].register_forward_hook(_Keep(self, k))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._maps = [None] * len(self.feature_info)
        try:
            self._net.forward_features(x)
            maps = list(self._maps)
        finally:
            self._maps = []
        return maps  # type: ignore[return-value]

    def train(self, mode: bool = True) -> FeatureNet:
        super().train(mode)
        self._net.training = mode
        return self

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Also takes the whole classifier's state dict: the head's keys are dropped."""
        keep = {k: v for k, v in state_dict.items()
                if k.split(".")[0] != self._head}
        return super().load_state_dict(keep, strict=strict, assign=assign)


def features_only(model: nn.Module, out_indices: Sequence[int] | None = None,
                  size: tuple[int, int] = (224, 224)) -> FeatureNet:
    """Wrap a built zoo model as a multi-scale backbone; `size` (H, W) is the input at which
    the stem is looked for (the model's native size)."""
    return FeatureNet(model, out_indices, size)
