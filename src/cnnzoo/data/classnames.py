"""ImageNet-1k class names, in the standard index order (0 = tench ... 999 = toilet tissue).

imagenet_classes.txt was generated once, offline, from the installed torchvision:
`torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"]`, one name a line.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_FILE = Path(__file__).with_name("imagenet_classes.txt")


@lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    names = tuple(line.rstrip("\n") for line in _FILE.read_text(encoding="utf-8").splitlines())
    if len(names) != 1000:  # a damaged install: better a clear error than shifted names
        raise RuntimeError(f"{_FILE} holds {len(names)} names, expected 1000")
    return names


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names (index i = class i of every ImageNet model)."""
    return list(_names())
