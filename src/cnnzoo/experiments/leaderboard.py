"""`cnnzoo experiment leaderboard`: one network of each family, each with its adapted recipe,
trained on the same images, its epoch selected on a held-out validation split and the test set
scored once, in one table and one accuracy-vs-multiply-adds chart beside the published rows of
Zalando's Fashion-MNIST README (results submitted to its benchmark table, not re-tested by us).

Sizes: smoke (the tests': a tiny copy of the data, two members, two epochs), quick (2 CPU cores,
21 minutes measured: 10,000 training images x 3 epochs each), full (a GPU: all 60,000 images, 15
epochs, translations and flips)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..files import atomic_write_text
from . import board_nets as bn
from .common import Budget, Context, Scratch, data_spec, pyplot, registered, verdict
from .nets import SmallGoogLeNet

PUBLISHED_BY = ("Zalando Research, Fashion-MNIST README, benchmark table of submitted results "
                "(github.com/zalandoresearch/fashion-mnist; not re-tested by the publisher or by cnnzoo)")
# name, test accuracy (%), parameters where the README states them, its note
PUBLISHED = [
    {"name": "2 conv, <100K params", "test_acc_pct": 92.5, "params": None,
     "note": "2 conv layers, under 100K parameters"},
    {"name": "VGG16", "test_acc_pct": 93.5, "params": None, "note": ""},
    {"name": "GoogLeNet", "test_acc_pct": 93.7, "params": None, "note": ""},
    {"name": "ResNet-18", "test_acc_pct": 94.9, "params": None, "note": "flips, translation, rotation"},
    {"name": "MobileNet", "test_acc_pct": 95.0, "params": None, "note": "flips"},
    {"name": "DenseNet-BC 768K", "test_acc_pct": 95.4, "params": 768_000, "note": ""},
    {"name": "WRN-28-10", "test_acc_pct": 95.9, "params": None, "note": ""},
    {"name": "WRN-40-4", "test_acc_pct": 96.7, "params": None, "note": ""},
]


@dataclass(frozen=True)
class Member:
    """One family's representative: a zoo name or a builder (trained under a temporary name),
    the recipe it is adapted from and what the adaptation changes."""

    family: str
    label: str
    model: str | Callable[..., nn.Module]
    recipe: str
    side: int = 32  # the input side it trains at (28x28 images are padded to 32 for 32x32 nets)
    overrides: dict[str, Any] = field(default_factory=dict)


_FAST = {"batch_size": 128}  # the `fast` recipe (one-cycle, label smoothing, nesterov) at batch 128
_SCALED = {"schedule": "onecycle", "pct_start": 0.2}  # a plateau / exp schedule needs more epochs than a budget has
MEMBERS = [
    Member("lenet", "LeNet-5", "lenet5", "lenet"),
    Member("vgg", "VGG-style (2x2 conv3, 28x28)", bn.small_vgg, "vgg", 28, {"batch_size": 128, "lr": 0.05, **_SCALED}),
    # lr 0.01: at 0.05 NiN (no batch norm) stayed at chance; 0.01 reached 16.8% in a 4,000-image
    # validation probe, but the quick size's 234 steps still end near chance (docs/experiments.md)
    Member("nin", "NiN (nin_cifar, 1 channel)", "nin_cifar", "fast", 32, {**_FAST, "lr": 0.01}),
    Member("googlenet", "GoogLeNet-style (3 inception)", lambda num_classes=10, in_chans=1: SmallGoogLeNet(
        num_classes, in_chans, aux=False), "googlenet", 28, {"lr": 0.05, **_SCALED}),
    Member("resnet_cifar", "ResNet-20", "resnet20", "cifar_resnet"),
    Member("resnet_cifar", "ResNet-56", "resnet56", "cifar_resnet"),
    Member("resnet_cifar", "plain-20", "plain20", "cifar_resnet"),
    Member("resnet_cifar", "WRN-16-2 (pre-activation)", lambda num_classes=10, in_chans=1: _wrn(num_classes, in_chans),
           "cifar_resnet"),
    Member("densenet", "DenseNet-BC (k=12, 3x6)", bn.small_densenet_bc, "fast", 32, _FAST),
    Member("mobilenet", "MobileNet v1 (0.5x, 32x32)", bn.small_mobilenet_v1, "fast", 32, _FAST),
    Member("mobilenet", "MobileNet v2 (32x32)", bn.small_mobilenet_v2, "fast", 32, _FAST),
    Member("shufflenet", "ShuffleNet v2 (0.5x, 32x32)", bn.small_shufflenet_v2, "fast", 32, _FAST),
    Member("squeezenet", "SqueezeNet 1.1 (32x32)", bn.small_squeezenet, "fast", 32, {**_FAST, "lr": 0.05}),
]
PUBLISHED_ROWS = [{**p, "source": "published", "by": PUBLISHED_BY} for p in PUBLISHED]
SMOKE_MEMBERS = ("LeNet-5", "GoogLeNet-style (3 inception)")
VAL_IMAGES = 2000  # held out of the training set (stratified, fixed seed) to select the epoch


def _wrn(num_classes: int, in_chans: int) -> nn.Module:
    from ..models.resnet_cifar import cifar_resnet

    return cifar_resnet(num_classes, in_chans, depth=16, block="wide", widen=2, shortcut="B")


def budget_of(ctx: Context) -> Budget:
    return ctx.pick(smoke=Budget(64, 2, 32), quick=Budget(10000, 3, 128), full=Budget(None, 15, 128))


def _settings(ctx: Context, member: Member, budget: Budget) -> dict[str, Any]:
    """The member's recipe adaptation at this size: its batch, epochs, validation every epoch,
    the best epoch kept; translations and flips at the full size only (3 epochs of augmented
    images would measure the augmentation, not the net)."""
    out = {**member.overrides, "workers": 0, "eval_every": 1, "keep": "best",
           "val_split": ctx.pick(smoke=20, quick=VAL_IMAGES, full=5000),
           "augment": "shift-flip" if ctx.size == "full" else "none"}
    if budget.limit_train is not None:
        out["limit_train"] = budget.limit_train
    if ctx.size == "smoke":
        out["batch_size"] = budget.batch_size
    return out


def _count(member: Member, name: str) -> tuple[int, int]:
    """(parameters, multiply-adds of one image) at the member's training input."""
    from ..analysis import analyze
    from ..registry import create_model

    report = analyze(create_model(name, num_classes=10, in_chans=1), (1, member.side, member.side))
    return int(report.total_params), int(report.total_macs)


def train_member(ctx: Context, member: Member, budget: Budget) -> dict[str, Any]:
    """Train one member; its row: validation of the kept epoch, the test scored once."""
    from ..train import fit

    tag = "".join(c if c.isalnum() else "_" for c in member.label.lower()).strip("_")[:40]
    scratch = Scratch(f"board_{tag}", member.model, (1, member.side, member.side)) if callable(member.model) else None
    ctx.say(f"leaderboard: training {member.label}")
    load = round(os.getloadavg()[0], 2)  # a shared machine inflates train_time_s: say how busy it was
    with (registered(scratch) if scratch else contextlib.nullcontext(member.model)) as name:
        params, macs = _count(member, name)
        res = fit(name, data=data_spec(ctx), recipe=member.recipe, overrides=_settings(ctx, member, budget),
                  out=ctx.out / "runs" / tag, epochs=budget.epochs, seed=ctx.seed, device=ctx.device, overwrite=True)
    return {"family": member.family, "model": member.label, "zoo_name": member.model if scratch is None else None,
            "recipe": member.recipe, "adapted": {k: v for k, v in member.overrides.items()},
            "params": params, "macs": macs, "images": budget.limit_train,
            "epochs": res["epochs"], "kept_epoch": res["kept_epoch"], "val_images": res["val_images"],
            "val_acc_pct": res["val_acc_pct"], "test_acc_pct": res["test_acc_pct"],
            "test_images": res["test_images"], "train_time_s": res["train_time_s"], "input": res["input"],
            "load_avg_1min": load, "run": res["out"], "source": "measured (cnnzoo)"}


def leaderboard(ctx: Context) -> dict[str, Any]:
    """The experiment: every member, then the table (markdown) and the chart."""
    budget = budget_of(ctx)
    members = [m for m in MEMBERS if ctx.size != "smoke" or m.label in SMOKE_MEMBERS]
    load = {"before": [round(x, 2) for x in os.getloadavg()]}
    rows = []
    for m in members:  # the table grows member by member: a stopped run keeps what it measured
        rows.append(train_member(ctx, m, budget))
        atomic_write_text(ctx.out / "leaderboard.md", markdown_table(rows, PUBLISHED_ROWS))
        atomic_write_text(ctx.out / "leaderboard_rows.json", json.dumps(rows, indent=1) + "\n")
    load["after"] = [round(x, 2) for x in os.getloadavg()]
    published = PUBLISHED_ROWS
    best = max(rows, key=lambda r: r["test_acc_pct"])
    floor = PUBLISHED[0]["test_acc_pct"]
    status = "reproduced" if best["test_acc_pct"] >= floor else "not reproduced"
    text = (f"best measured: {best['model']} {best['test_acc_pct']:.2f}% test accuracy "
            f"({budget.limit_train or 'all'} images x {budget.epochs} epochs each); published rows "
            f"{floor}-{PUBLISHED[-1]['test_acc_pct']}% after full-length training" +
            ("" if status == "reproduced" else ": this size trains far shorter than the published runs"))
    table = markdown_table(rows, published)
    atomic_write_text(ctx.out / "leaderboard.md", table)
    return {"paper": {"figure": "Fashion-MNIST README: " + ", ".join(f"{p['name']} {p['test_acc_pct']}%"
                                                                   for p in PUBLISHED), "by": PUBLISHED_BY},
            "measured": {"rows": rows, "published": published, "seed": ctx.seed, "load_avg": load,
                         "selection": "each member's epoch chosen on its validation split; test scored once",
                         "table": "leaderboard.md"},
            "plot": plot(ctx, rows, published),
            "verdict": verdict(status, text, f"'reproduced' when the best member reaches the published "
                                             f"'2 conv, <100K params' row ({floor}%)")}


def markdown_table(rows: list[dict[str, Any]], published: list[dict[str, Any]]) -> str:
    """Measured and published rows together, by test accuracy; the published ones marked."""
    head = ("| model | family | test acc (%) | val acc (%) | params | M multiply-adds | images x epochs "
            "(kept) | train s | source |\n|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in sorted(rows + published, key=lambda r: -r["test_acc_pct"]):
        if r["source"] == "published":
            params = f"{r['params'] / 1e3:.0f}K" if r["params"] else "-"
            lines.append(f"| {r['name']} | - | {r['test_acc_pct']:.1f} | - | {params} | - | - | - | "
                         f"published (Fashion-MNIST README){', ' + r['note'] if r['note'] else ''} |")
        else:
            lines.append(f"| {r['model']} | {r['family']} | {r['test_acc_pct']:.2f} | {r['val_acc_pct']:.2f} | "
                         f"{r['params'] / 1e3:.1f}K | {r['macs'] / 1e6:.1f} | {r['images'] or 'all'} x "
                         f"{r['epochs']} ({r['kept_epoch']}) | {r['train_time_s']:.0f} | measured |")
    return head + "\n".join(lines) + f"\n\nPublished rows: {PUBLISHED_BY}.\n"


def plot(ctx: Context, rows: list[dict[str, Any]], published: list[dict[str, Any]]) -> str:
    """Left: ours, test accuracy vs multiply-adds (log), bubble area ~ parameters, labels placed
    off every bubble and label. Right: the published accuracies (no multiply-adds published),
    labelled in order, spaced so that no two labels overlap."""
    from ..analysis.bubbles import place_labels

    plt = pyplot()
    fig, (ax, side) = plt.subplots(1, 2, figsize=(13, 7), sharey=True, gridspec_kw={"width_ratios": [3, 1]})
    ys = [r["test_acc_pct"] for r in rows] + [p["test_acc_pct"] for p in published]
    span = max(ys) - min(ys)
    ax.set_ylim(min(ys) - 0.15 * span - 0.5, max(ys) + 0.1 * span + 0.5)  # room for whole bubbles
    xs = [max(r["macs"], 1) / 1e6 for r in rows]
    ax.set_xscale("log")
    ax.set_xlim(min(xs) / 4, max(xs) * 6)
    biggest = max(r["params"] for r in rows) or 1
    sizes = [max(1500.0 * r["params"] / biggest, 15) for r in rows]
    ax.scatter(xs, [r["test_acc_pct"] for r in rows], s=sizes, alpha=0.45, c=range(len(rows)), cmap="tab20",
               edgecolors="black", linewidths=0.6, zorder=2)
    for p in published:
        ax.axhline(p["test_acc_pct"], color="grey", lw=0.5, ls=":", zorder=1)
    ax.set_xlabel("multiply-adds per image (millions, log scale)")
    ax.set_ylabel("Fashion-MNIST test accuracy (%)")
    ax.set_title(f"measured here, seed {ctx.seed} (bubble area ~ parameters)", fontsize=10)
    ax.grid(alpha=0.3)
    side.set_xlim(0, 1)
    side.set_xticks([])
    side.set_title("published: Zalando's Fashion-MNIST README\n(submitted results, not re-tested)", fontsize=9)
    fig.tight_layout()
    fig.canvas.draw()
    circles = [(*ax.transData.transform((x, r["test_acc_pct"])), (s / 3.1416) ** 0.5 * fig.dpi / 72)
               for x, r, s in zip(xs, rows, sizes)]
    place_labels(fig, ax, circles, [f"{r['model']}\n{r['params'] / 1e3:.0f}K params" for r in rows])
    _published_labels(fig, side, published)
    fig.savefig(ctx.out / "leaderboard.png", format="png", dpi=100)  # no second layout pass: labels are placed
    plt.close(fig)
    return "leaderboard.png"


def _published_labels(fig: Any, side: Any, published: list[dict[str, Any]], gap_px: float = 15.0) -> None:
    """A marker at each published accuracy and its label to the right, pushed apart (in pixels)
    so that labels of close accuracies (93.5 / 93.7) stack instead of overlapping."""
    side.scatter([0.06] * len(published), [p["test_acc_pct"] for p in published], marker="s", color="tab:red", s=18)
    to_px, to_data = side.transData.transform, side.transData.inverted().transform
    order = sorted(published, key=lambda p: p["test_acc_pct"])
    ys = [to_px((0, p["test_acc_pct"]))[1] for p in order]
    for i in range(1, len(ys)):  # upwards: each label at least gap_px above the one below
        ys[i] = max(ys[i], ys[i - 1] + gap_px)
    top = side.get_window_extent().y1 - gap_px
    shift = max(0.0, ys[-1] - top) if ys else 0.0
    for p, y in zip(order, ys):
        ly = to_data((0, y - shift))[1]
        side.plot([0.06, 0.16], [p["test_acc_pct"], ly], color="grey", lw=0.6)
        side.text(0.18, ly, f"{p['name']} {p['test_acc_pct']}%", fontsize=8.5, va="center")
