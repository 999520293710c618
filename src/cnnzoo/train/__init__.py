"""Training: recipes (paper recipes as data), the engine, resumable checkpoints, torchrun/DDP."""

from .recipes import RECIPES, Recipe, get_recipe  # noqa: F401


def __getattr__(name):  # lazy: `import cnnzoo.train.recipes` should not pull the engine in
    if name in ("fit", "evaluate_file"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
