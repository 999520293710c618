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

from ..bounds import check
from ..data.datasets import parse_spec
from ..errors import InvalidArgumentError, TrainingStateError
from ..precision import cpu_has_amx_bf16
from ..registry import get_entry
from . import state as ckpt
from .recipes import RESUME_MAY_CHANGE, Recipe, get_recipe, recipe_from_dict, validate, with_overrides


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
    overwrite: bool = False  # replace a run already in `out`
    resume_changes: list[str] = dataclasses.field(default_factory=list)  # "lr 0.1 -> 0.01", applied
    pretrained: bool | str = False  # published weights to start from (cnnzoo.hub); not on resume
    # the published weights' mean/std normalise the data: kept by the run, so a resume uses them too
    pretrained_stats: bool | str = False


def resolve_plan(*, model_name: str | None, data: str | None, recipe: str | Recipe | None,
                 overrides: dict[str, Any] | None, config: str | None, out: str | Path | None,
                 resume: str | Path | None, seed: int, deterministic: bool,
                 epochs: int | None, overwrite: bool = False) -> Plan:
    """The arguments of `fit` made complete; raises on an unknown model, recipe or resume file."""
    saved_weights = saved_state = torch_checkpoint = None
    changes: list[str] = []
    if resume is not None:
        rpath = Path(resume)
        if rpath.suffix in ckpt.TORCH_SUFFIXES:
            torch_checkpoint = _read_torch_checkpoint(rpath)
        else:
            saved_weights, saved_state = ckpt.read_training_state(rpath, resume=True)
            saved = saved_state["run"]
            _check_same_run(resume, saved, model_name=model_name, data=data, recipe=recipe)
            model_name, data = saved["model"], saved["data"]
            seed, deterministic = saved["seed"], saved["deterministic"]
            before = recipe_from_dict(saved["recipe"])
            recipe = _with_epochs(with_overrides(before, overrides, config), epochs)
            changes = _resume_changes(resume, before, recipe)
            recipe = _keep_precision(recipe, saved.get("precision"))
            out = out or (rpath if rpath.is_dir() else rpath.parent)
    if model_name is None:
        raise InvalidArgumentError("name a model to train (see `cnnzoo list`)")
    entry = get_entry(model_name)
    input_size = entry.input_size
    if saved_state is None:
        if not isinstance(recipe, Recipe):
            recipe = get_recipe(recipe or entry.recipe)
        recipe = _with_epochs(with_overrides(recipe, overrides, config), epochs)
    return Plan(model_name=model_name, input_size=input_size, recipe=recipe, data=data, seed=check("seed", seed),
                deterministic=deterministic, out=out, resume=resume, saved_weights=saved_weights,
                saved_state=saved_state, torch_checkpoint=torch_checkpoint, overwrite=overwrite,
                resume_changes=changes,
                pretrained_stats=(saved_state or {}).get("run", {}).get("pretrained", False))


def _keep_precision(recipe: Recipe, saved: dict[str, str] | None) -> Recipe:
    """A resumed run keeps the precision and memory format its "auto" settings resolved to when
    it started, so a change of the rule (or a resume on another machine) does not switch them
    mid-run. Runs saved before the record held them resolved to the rule of that time: bf16 and
    channels_last on CUDA and on AMX CPUs only."""
    if saved is None:
        old = torch.cuda.is_available() or cpu_has_amx_bf16()
        saved = {"amp": "bf16" if old else "off", "channels_last": "on" if old else "off"}
    keep = {k: saved[k] for k in ("amp", "channels_last") if getattr(recipe, k) == "auto" and k in saved}
    return dataclasses.replace(recipe, **keep) if keep else recipe


def _check_same_run(resume: str | Path, saved: dict[str, Any], *, model_name: str | None, data: str | None,
                    recipe: str | Recipe | None) -> None:
    """A resumed cnnzoo run keeps its model, data and recipe: asking for others is refused."""
    if model_name is not None and model_name != saved["model"]:
        raise InvalidArgumentError(f"--resume {resume} is a run of {saved['model']}, not {model_name}")
    if data is not None and str(parse_spec(data)) != saved["data"]:
        raise InvalidArgumentError(
            f"--resume {resume} is a run on --data {saved['data']}, not {data}: a resumed run keeps its "
            "data; start a new run (another --out) to train on other data")
    name = recipe.name if isinstance(recipe, Recipe) else recipe
    if name is not None and name != saved["recipe"]["name"]:
        raise InvalidArgumentError(
            f"--resume {resume} is a run with recipe {saved['recipe']['name']}, not {name}: a resumed run "
            "keeps its recipe; start a new run (another --out) for another one")


def _resume_changes(resume: str | Path, before: Recipe, after: Recipe) -> list[str]:
    """The fields a resume changes, as "field old -> new"; raises on a field it may not change."""
    changed = {f.name: (getattr(before, f.name), getattr(after, f.name)) for f in dataclasses.fields(Recipe)
               if getattr(before, f.name) != getattr(after, f.name)}
    if "epochs" in changed and before.iterations is not None:  # --epochs replaced the iterations
        changed.pop("milestones", None)
    refused = [f"{k} ({a} -> {b})" for k, (a, b) in changed.items() if k not in RESUME_MAY_CHANGE]
    if refused:
        raise InvalidArgumentError(
            f"--resume {resume} continues the same run, which cannot change {', '.join(refused)}; a resumed "
            f"run may change only {', '.join(RESUME_MAY_CHANGE)}. Start a new run (another --out) instead")
    return [f"{k} {a} -> {b}" for k, (a, b) in changed.items()]


def _read_torch_checkpoint(path: Path) -> dict[str, Any]:
    found = ckpt.load_torch_file(path)
    if not isinstance(found, dict) or "model" not in found:
        raise TrainingStateError(f"{path}: expected a dict with a 'model' state_dict (torchvision "
                                 "reference checkpoint layout)")
    return found


def _with_epochs(recipe: Recipe, epochs: int | None) -> Recipe:
    """`epochs` replaces the run length; an iteration-based recipe's milestones keep their fractions."""
    if epochs is None:
        return recipe
    if recipe.iterations is not None:  # paper milestones in iterations -> same fractions, in epochs
        frac = [m / recipe.iterations for m in recipe.milestones]
        recipe = dataclasses.replace(recipe, iterations=None, milestones=[f * epochs for f in frac])
    recipe = dataclasses.replace(recipe, epochs=epochs)
    validate(recipe)
    return recipe
