"""Step 1 of a training run: the plan. Which model, data, recipe, seed and output folder, and
for --resume the saved state to continue from. A cnnzoo run folder brings its own model, data,
seed and recipe; a torch.save checkpoint brings weights (and maybe optimizer state) only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, InvalidArgumentError
from ..registry import get_entry
from . import checkpoint as ckpt
from .recipes import Recipe, apply_overrides, default_recipe_for, get_recipe, recipe_from_dict


@dataclass
class Plan:
    model_name: str
    input_size: tuple[int, int, int]  # the model's native (C, H, W)
    recipe: Recipe
    data: str | None  # the --data spec (None: the built-in MNIST subset)
    seed: int
    deterministic: bool
    out: str | Path | None  # None: runs/MODEL-TIME
    resume: str | Path | None = None
    saved_weights: dict[str, torch.Tensor] | None = None  # from a cnnzoo training checkpoint
    saved_state: dict[str, Any] | None = None  # its optimizer, scheduler, RNG, step, history
    torch_checkpoint: dict[str, Any] | None = None  # a torch.save file given as `resume`


def resolve_plan(*, model_name: str | None, data: str | None, recipe: str | Recipe | None,
                 overrides: dict[str, Any] | None, config: str | None, out: str | Path | None,
                 resume: str | Path | None, seed: int, deterministic: bool,
                 epochs: int | None) -> Plan:
    """The arguments of `fit` made complete; raises on an unknown model, recipe or resume file."""
    saved_weights = saved_state = torch_checkpoint = None
    if resume is not None:
        rpath = Path(resume)
        if rpath.suffix in ckpt.TORCH_SUFFIXES:
            torch_checkpoint = _read_torch_checkpoint(rpath)
        else:
            saved_weights, saved_state = ckpt.read_training_state(rpath)
            saved = saved_state["run"]
            if model_name is not None and model_name != saved["model"]:
                raise InvalidArgumentError(
                    f"--resume {resume} is a run of {saved['model']}, not {model_name}")
            model_name, data = saved["model"], saved["data"]
            seed, deterministic = saved["seed"], saved["deterministic"]
            recipe = recipe_from_dict(saved["recipe"])
            out = out or (rpath if rpath.is_dir() else rpath.parent)
    if model_name is None:
        raise InvalidArgumentError("name a model to train (see `cnnzoo list`)")
    input_size = get_entry(model_name).input_size
    recipe = _resolve_recipe(recipe, model_name=model_name, input_size=input_size, overrides=overrides,
                             config=config, resumed=saved_state is not None, epochs=epochs)
    return Plan(model_name=model_name, input_size=input_size, recipe=recipe, data=data, seed=seed,
                deterministic=deterministic, out=out, resume=resume, saved_weights=saved_weights,
                saved_state=saved_state, torch_checkpoint=torch_checkpoint)


def _read_torch_checkpoint(path: Path) -> dict[str, Any]:
    found = ckpt.load_torch_file(path)
    if not isinstance(found, dict) or "model" not in found:
        raise CheckpointError(f"{path}: expected a dict with a 'model' state_dict (torchvision "
                              "reference checkpoint layout)")
    return found


def _resolve_recipe(recipe: str | Recipe | None, *, model_name: str, input_size: tuple[int, int, int],
                    overrides: dict[str, Any] | None, config: str | None, resumed: bool,
                    epochs: int | None) -> Recipe:
    """A named (or the model's default) recipe with --config and --set applied; a resumed run
    keeps its own recipe. `epochs` replaces the run length."""
    if not isinstance(recipe, Recipe):
        recipe = get_recipe(recipe or default_recipe_for(model_name, input_size), overrides, config)
    elif overrides and not resumed:
        recipe = apply_overrides(recipe, overrides)
    if epochs is not None:
        if recipe.iterations is not None:  # paper milestones in iterations -> same fractions, in epochs
            frac = [m / recipe.iterations for m in recipe.milestones]
            recipe = dataclasses.replace(recipe, iterations=None, milestones=[f * epochs for f in frac])
        recipe = dataclasses.replace(recipe, epochs=epochs)
    return recipe
