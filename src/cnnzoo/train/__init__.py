"""Training: recipes (paper recipes as data), `fit` (a run in named steps: plan, data, build,
loop), the engine, logs, resumable checkpoints, torchrun/DDP, and `evaluate_file`."""

from .recipes import RECIPES, Recipe, get_recipe
from .reporter import PrintReporter, Reporter

__all__ = ["RECIPES", "PrintReporter", "Recipe", "Reporter", "evaluate_file", "fit", "get_recipe"]


def __getattr__(name: str) -> object:  # lazy: `import cnnzoo.train.recipes` should not pull the engine in
    if name == "fit":
        from .run import fit

        return fit
    if name == "evaluate_file":
        from .evaluation import evaluate_file

        return evaluate_file
    raise AttributeError(name)
