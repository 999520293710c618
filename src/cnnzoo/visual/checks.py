"""Choices the visualisations make for the user, made so they do not mislead: which layer Grad-CAM
reads by default, whether a top-9 channel is ranked before or after its activation (and whether
it ever fires), whether a model's weights are trained at all."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import InvalidArgumentError

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Hardswish)


def _leaf_outputs(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(name, module, output shape) of every leaf module, in execution order, for one input."""
    seen: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    hooks = []
    for name, m in model.named_modules():
        if name and not any(True for _ in m.children()):
            hooks.append(m.register_forward_hook(
                lambda mod, i, o, n=name: seen.append((n, mod, tuple(o.shape)))
                if isinstance(o, torch.Tensor) else None))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return seen


def default_cam_layer(model: nn.Module, x: torch.Tensor) -> str:
    """Grad-CAM's default layer: the last one whose output is a map with spatial extent > 1
    (LeNet-5's forward_features is 1x1, which gives a uniform heat map)."""
    outs = _leaf_outputs(model, x)
    calls = [n for n, _, _ in outs]
    # a module called more than once (a shared activation) has no single map to hook
    spatial = [n for n, _, s in outs if len(s) == 4 and s[2] * s[3] > 1 and calls.count(n) == 1]
    if not spatial:
        raise InvalidArgumentError("no layer of this model outputs a spatial map larger than 1x1; "
                                   "Grad-CAM needs one (pass --layer)")
    return spatial[-1]


def activation_after(model: nn.Module, x: torch.Tensor, layer: str) -> nn.Module | None:
    """The activation module that runs right after `layer` (None: the layer is itself an
    activation, or no activation module follows it directly)."""
    outs = _leaf_outputs(model, x)
    inside = [k for k, (n, _, _) in enumerate(outs) if n == layer or n.startswith(layer + ".")]
    if not inside:
        return None
    i = inside[-1]  # a container (LeNet-5's c3): what runs after its last leaf
    if outs[i][0] == layer and _is_activation(outs[i][1]):
        return None
    nxt = outs[i + 1][1] if i + 1 < len(outs) else None
    return nxt if nxt is not None and _is_activation(nxt) else None


def _is_activation(m: nn.Module) -> bool:
    # the zoo's own activations (LeNet-5's scaled tanh) are parameter-free modules named so
    name = type(m).__name__.lower()
    return isinstance(m, ACTIVATIONS) or (not any(True for _ in m.parameters())
                                          and any(k in name for k in ("relu", "tanh", "squash", "act", "sigmoid")))


def top9_notes(model: nn.Module, x: torch.Tensor, layer: str, channel: int,
               top: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """(what the ranking reads, warnings): top-9 ranks the layer's output. Where an activation
    follows the layer the values are pre-activation, and the order is the same after it (the
    maximum commutes with a monotonic activation); a channel whose best response is <= 0 before
    a ReLU never fires."""
    act = activation_after(model, x, layer)
    kind = (f"ranked pre-activation: {layer}'s output before its {type(act).__name__} (same order after it)"
            if act is not None else f"ranked by {layer}'s output")
    warnings = []
    best = max((t["value"] for t in top), default=0.0)
    if best <= 0 and (act is None or isinstance(act, (nn.ReLU, nn.ReLU6))):
        warnings.append(f"channel {channel} of {layer} never fires on these images (largest response "
                        f"{best:.3g} <= 0): its top-9 are arbitrary")
    return kind, warnings


def untrained(record: dict[str, Any]) -> bool:
    """Weights from a registered name (random initialisation), not from a model file."""
    return bool(record.get("untrained"))
