"""cnnzoo: the landmark convolutional networks, their costs, training and deployment."""

from .checkpoint import save_model
from .errors import CnnzooError, InputShapeError, InvalidArgumentError, UnknownModelError
from .registry import create_model, list_models, load_model, model_info
from .version import __version__

__all__ = [
    "__version__",
    "create_model",
    "list_models",
    "model_info",
    "load_model",
    "save_model",
    "CnnzooError",
    "InputShapeError",
    "InvalidArgumentError",
    "UnknownModelError",
]


def __getattr__(name: str) -> object:  # lazy: the analyzer pulls in more than `import cnnzoo` needs
    if name == "analyze":
        from .analysis import analyze

        return analyze
    raise AttributeError(f"module 'cnnzoo' has no attribute {name!r}")
