"""What every experiment shares: its run context and sizes, training a (possibly unregistered)
network through `cnnzoo.train.fit`, the per-epoch curves it wrote, tolerances, verdicts, plots."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from torch import nn

from ..errors import InvalidArgumentError
from ..runfolder import read_metrics

SIZES = ("smoke", "quick", "full")  # smoke: the tests' seconds-long path; quick: CPU minutes; full: GPU
SMOKE_TRAIN, SMOKE_TEST = 256, 100  # images of the smoke size's own small copy of the data
SEEDS = {"smoke": 1, "quick": 3, "full": 3}  # runs per arm unless --seeds says otherwise


@dataclass
class Context:
    """One experiment run: where it writes, on what data and device, at which size."""

    size: str = "quick"
    out: Path = Path("experiments")
    data: str | None = None  # a --data spec (run_experiment resolves None: datafind.py)
    device: str | None = None
    seed: int = 0  # the first seed; the others follow it
    say: Callable[[str], None] = field(default=lambda text: None)
    overwrite: bool = False  # replace the results and runs of an earlier run in `out`
    seeds: int | None = None  # runs per arm; None: SEEDS[size]

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise InvalidArgumentError(f"size must be one of {', '.join(SIZES)}, got {self.size!r}")
        if self.seeds is not None and not 1 <= self.seeds <= 100:
            raise InvalidArgumentError(f"--seeds must be 1 to 100, got {self.seeds}")
        self.out = Path(self.out)

    @property
    def seed_list(self) -> list[int]:
        """The seeds every arm trains with: seed, seed + 1, ..."""
        return list(range(self.seed, self.seed + (self.seeds or SEEDS[self.size])))

    def pick(self, **by_size: Any) -> Any:
        """The value for this run's size: ctx.pick(smoke=1, quick=3, full=30)."""
        return by_size[self.size]


@dataclass(frozen=True)
class Budget:
    """How long one training run is: images (None: all), epochs, batch size."""

    limit_train: int | None
    epochs: int | None  # None: the recipe's own length
    batch_size: int

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {"batch_size": self.batch_size, "workers": 0}
        if self.epochs is not None:  # the curves are training error: score the test set once, at the end
            out["eval_every"] = self.epochs
        if self.limit_train is not None:
            out["limit_train"] = self.limit_train
        return out


# the small 28x28 nets' quick size: 12,000 Fashion-MNIST images x 4 epochs, 4-6 minutes for two
# arms x 3 seeds on 2 cores (docs/experiments.md, "How the quick sizes were chosen")
QUICK_SMALL = Budget(12000, 4, 64)


@dataclass(frozen=True)
class Scratch:
    """A network the registry does not hold, trained under a temporary name."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]
    kwargs: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 10


@contextlib.contextmanager
def registered(scratch: Scratch) -> Iterator[str]:
    """`fit` trains registered names: register `scratch` for the run, remove it afterwards so
    the zoo's catalogue (and its contract tests) never see it."""
    from .. import registry

    registry.get_entry("lenet5")  # the zoo's own models first (their import registers them)
    registry.register(scratch.name, scratch.builder, family="experiment", input_size=scratch.input_size,
                      kwargs=scratch.kwargs, num_classes=scratch.num_classes,
                      paper=registry.Paper("cnnzoo experiment network", "", 0, ""))
    try:
        yield scratch.name
    finally:
        registry.unregister(scratch.name)


def data_spec(ctx: Context) -> str:
    """The run's data: the smoke size writes a small copy (train and test) of the chosen data."""
    spec = ctx.data or "embedded"
    if ctx.size != "smoke":
        return spec
    from ..data.datasets import load_split, parse_spec
    from ..data.kinds import kind_of
    from ..data.mnist import SPLITS, write_idx

    root = ctx.out / "_smoke_data"
    kind = "fashion-mnist" if kind_of(spec).name == "fashion-mnist" else "mnist"
    if (root / f"{SPLITS['test'][1]}.gz").is_file():  # written by this run's first training
        return f"{kind}:{root}"
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", SMOKE_TRAIN), ("test", SMOKE_TEST)):
        part = load_split(parse_spec(spec), split)
        if not part.in_memory or part.shape[0] != 1:
            raise InvalidArgumentError(f"the smoke size takes MNIST-like data, not {spec}")
        images, labels = SPLITS[split]
        write_idx(root / f"{images}.gz", part.images[:n, 0].numpy())
        write_idx(root / f"{labels}.gz", part.labels[:n].numpy())
    return f"{kind}:{root}"


def train(ctx: Context, model: str | Scratch, *, tag: str, recipe: str, budget: Budget,
          seed: int | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """One `fit` run into ctx.out/runs/TAG: its result and its per-epoch history."""
    out = ctx.out / "runs" / tag
    name = model if isinstance(model, str) else model.name
    ctx.say(f"training {tag} ({name}, {budget.limit_train or 'all'} images x {budget.epochs} epochs)")
    from ..train import fit

    settings = {**budget.overrides(), **(overrides or {})}
    with (contextlib.nullcontext(model) if isinstance(model, str) else registered(model)) as name:
        result = fit(name, data=data_spec(ctx), recipe=recipe, overrides=settings, out=out,
                     epochs=budget.epochs, seed=ctx.seed if seed is None else seed, device=ctx.device,
                     overwrite=ctx.overwrite)
    history = read_metrics(out)
    return {"tag": tag, "model": name, "seed": ctx.seed if seed is None else seed, "out": str(out),
            "test_err_pct": result["test_top1_err_pct"],
            "train_err_pct": [train_err(row) for row in history],
            "epochs": [row["epoch"] for row in history], "seconds": result["train_time_s"],
            "images": budget.limit_train, "data": result["data"]}


def train_err(row: dict[str, Any]) -> float:
    """Training error (%) of an epoch: 100 - its running training accuracy, as He et al. plot."""
    return round(100 * (1 - row["train_acc"]), 3)


def verdict(status: str, text: str, tolerance: str) -> dict[str, str]:
    """status: 'reproduced', 'not reproduced' or 'contradicted', as verdicts.py decides them
    for trained comparisons (the analyzer's inception-reduction: within 1% of the paper)."""
    return {"status": status, "text": text, "tolerance": tolerance}


def pyplot() -> Any:
    """matplotlib's pyplot, never an interactive backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> str:
    from ..files import save_figure as write_figure

    fig.tight_layout()
    try:
        write_figure(fig, path, format="png", dpi=100)
    finally:
        pyplot().close(fig)
    return path.name


def train_arms(ctx: Context, name: str, arms: dict[str, str | Scratch], *, recipe: str, budget: Budget,
               overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every arm trained with every seed of ctx.seed_list (seed-major): one run dict each, with
    its "arm" and "seed"."""
    return [{"arm": arm, **train(ctx, model, tag=f"{name}-{arm}-s{seed}", recipe=recipe, budget=budget,
                                 seed=seed, overrides=overrides)}
            for seed in ctx.seed_list for arm, model in arms.items()]


def values(runs: list[dict[str, Any]], arm: str, key: str = "test_err_pct") -> list[float]:
    """One arm's value per seed; a curve (train_err_pct) gives its last epoch's."""
    picked = [r[key] for r in runs if r["arm"] == arm]
    return [v[-1] if isinstance(v, list) else v for v in picked]


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per arm: the seeds' spread of test error, final training error and seconds."""
    from .verdicts import spread

    arms = list(dict.fromkeys(r["arm"] for r in runs))
    return {arm: {"test_err_pct": spread(values(runs, arm)),
                  "final_train_err_pct": spread(values(runs, arm, "train_err_pct")),
                  "train_time_s": spread(values(runs, arm, "seconds"))} for arm in arms}
