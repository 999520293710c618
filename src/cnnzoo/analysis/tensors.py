"""Finding the tensors inside a call's arguments or a module's output (tuples, lists, dicts)."""

from __future__ import annotations

from typing import Any

import torch


def first_tensor(obj: Any) -> torch.Tensor | None:
    """The first tensor met depth-first in `obj`, or None."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for o in obj:
            t = first_tensor(o)
            if t is not None:
                return t
    if isinstance(obj, dict):
        return first_tensor(list(obj.values()))
    return None


def tensors(obj: Any) -> list[torch.Tensor]:
    """Every tensor in `obj`, depth-first."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in tensors(o)]
    if isinstance(obj, dict):
        return tensors(list(obj.values()))
    return []
