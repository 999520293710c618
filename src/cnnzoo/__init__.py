"""cnnzoo: the landmark convolutional networks, their costs, training and deployment."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .errors import CnnzooError, InputShapeError, InvalidArgumentError, UnknownModelError
from .version import __version__

if TYPE_CHECKING:
    from .analysis import analyze
    from .modelfile import save_model
    from .registry import create_model, list_models, load_model, model_info

__all__ = [
    "__version__",
    "create_model",
    "list_models",
    "model_info",
    "load_model",
    "save_model",
    "analyze",
    "CnnzooError",
    "InputShapeError",
    "InvalidArgumentError",
    "UnknownModelError",
]

# Imported on first use, so `import cnnzoo.cli` (and `cnnzoo --help`) does not import torch.
_LAZY = {"create_model": ".registry", "list_models": ".registry", "model_info": ".registry",
         "load_model": ".registry", "save_model": ".modelfile", "analyze": ".analysis"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnnzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
