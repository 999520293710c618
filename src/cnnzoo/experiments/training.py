"""The experiments that train: degradation (He et al. Fig. 6), ensembles, LRN (VGG Table 3,
A vs A-LRN) and GoogLeNet's auxiliary classifier. Each trains through `cnnzoo.train.fit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from ..runfolder import MODEL_FILE
from .common import (
    QUICK_SMALL,
    Budget,
    Context,
    Scratch,
    pyplot,
    save_figure,
    summarize,
    train,
    train_arms,
    values,
    verdict,
)
from .figures import arms_figure
from .nets import SmallConvNet, SmallGoogLeNet
from .verdicts import MIN_MARGIN_PTS, RULE, combine, decide, describe, spread

DEPTHS = (20, 56)
LRN_NOTHING_PTS = 0.5  # "adds nothing": LRN's gain, if any, is below half a point


def degradation(ctx: Context) -> dict[str, Any]:
    """plain-20/56 vs ResNet-20/56: training error per epoch, as He et al. Fig. 6, over seeds."""
    budget = ctx.pick(smoke=Budget(32, 2, 16), quick=Budget(4000, 6, 64), full=Budget(None, None, 128))
    # The short sizes anneal the rate to zero (cosine) so each net's training error has levelled
    # off by the last epoch, the point compared, after a one-epoch warm-up: at 0.1 from the first
    # step ResNet-56's loss rose above chance (2.85 in epoch 1) and it never caught up in 375
    # steps; He et al. warm their deepest net up the same way (sec. 4.2, ResNet-110).
    extra: dict[str, Any] = {} if ctx.size == "full" else {"augment": "none", "schedule": "cosine",
                                                          "warmup_epochs": 1}
    runs = train_arms(ctx, "degradation", {f"{kind}{d}": f"{kind}{d}" for kind in ("plain", "resnet")
                                           for d in DEPTHS}, recipe="cifar_resnet", budget=budget, overrides=extra)
    lo, hi = DEPTHS
    parts = [decide(values(runs, f"plain{lo}", "train_err_pct"), values(runs, f"plain{hi}", "train_err_pct"),
                    claim=f"plain-{hi} trains worse than plain-{lo} (final training error)"),
             decide(values(runs, f"resnet{hi}", "train_err_pct"), values(runs, f"resnet{lo}", "train_err_pct"),
                    claim=f"ResNet-{hi} trains better than ResNet-{lo} (final training error)")]
    summary = summarize(runs)
    text = "final training error (mean +/- std): " + ", ".join(
        f"{arm} {s['final_train_err_pct']['mean']:.2f} +/- {s['final_train_err_pct']['std']:.2f}%"
        for arm, s in summary.items()) + "; " + "; ".join(describe(p) for p in parts)
    return {"paper": {"figure": "He et al. 2016, Fig. 6 (CIFAR-10 training error)",
                      "test_err_pct": {"plain20": 7.5, "plain56": 9.5, "resnet20": 8.75, "resnet56": 6.97},
                      "note": "plain test errors read off Fig. 6 (approximate); ResNet's from Table 6"},
            "measured": {"arms": summary, "parts": parts, "runs": runs},
            "plot": arms_figure(ctx, "degradation", runs, "plain and residual nets: training error (He et al. Fig. 6)"),
            "verdict": verdict(combine(parts), text, RULE)}


def ensemble_errors(files: Sequence[str | Path], data: str | None) -> dict[str, Any]:
    """Each member's and the mean-softmax ensemble's top-1 test error (%) on `data`'s test split,
    in fp32 on the CPU; members share the first one's preprocessing (same model, same data)."""
    from ..data.datasets import load_split, parse_spec
    from ..data.preprocess import Preprocess
    from ..ensemble import Ensemble, combine_logits, members_from_files

    loaded = members_from_files(files)
    prep = Preprocess.from_record(loaded[0][1]["preprocess"])
    test = load_split(parse_spec(data), "test")
    model = Ensemble([m.float().cpu() for m, _ in loaded]).eval()
    wrong = torch.zeros(len(loaded) + 1)
    with torch.no_grad():
        for start in range(0, len(test), 1000):
            x = prep.eval_batch(test.images[start:start + 1000])
            y = test.labels[start:start + 1000]
            logits = model.member_logits(x)
            wrong[:-1] += (logits.argmax(-1) != y).sum(1).float()
            wrong[-1] += (combine_logits(logits, "mean").argmax(-1) != y).sum().float()
    errs = [round(100 * w / len(test), 3) for w in wrong.tolist()]
    return {"members_err_pct": errs[:-1], "ensemble_err_pct": errs[-1],
            "member_mean_err_pct": round(sum(errs[:-1]) / len(loaded), 3),
            "best_member_err_pct": min(errs[:-1]), "images": len(test)}


def ensemble(ctx: Context) -> dict[str, Any]:
    """Per seed group, lenet5 members (seeds 10g, 10g + 1, ...); their mean softmax vs each member."""
    n = ctx.pick(smoke=2, quick=3, full=5)
    budget = ctx.pick(smoke=Budget(256, 1, 32), quick=Budget(None, 3, 64), full=Budget(None, 6, 32))
    groups = []
    for g in ctx.seed_list:
        runs = [train(ctx, "lenet5", tag=f"lenet5-seed{10 * g + i}", recipe="lenet", budget=budget,
                      seed=10 * g + i) for i in range(n)]
        groups.append({"group_seed": g, **ensemble_errors([Path(r["out"]) / MODEL_FILE for r in runs],
                                                          runs[0]["data"]), "runs": runs})
    members = [e["member_mean_err_pct"] for e in groups]
    ens = [e["ensemble_err_pct"] for e in groups]
    best = [e["best_member_err_pct"] for e in groups]
    parts = [decide(ens, members, claim="the ensemble beats its members' mean"),
             decide(ens, best, threshold=-MIN_MARGIN_PTS, claim="the ensemble is no worse than the best member")]
    text = (f"{len(groups)} groups of {n} members: members' mean {spread(members)['mean']:.2f}%, best member "
            f"{spread(best)['mean']:.2f}%, ensemble {spread(ens)['mean']:.2f}% (means over the groups); "
            + "; ".join(describe(p) for p in parts))
    return {"paper": {"figure": "Szegedy et al. 2015, Table 3: 1 model 10.07% top-5 -> 7 models 8.09% "
                                "(144 crops: 7.89% -> 6.67%); Krizhevsky et al. 2012: 5 CNNs 16.4% vs 18.2%"},
            "measured": {"groups": groups, "parts": parts, "arms": {
                "members_mean": {"test_err_pct": spread(members)}, "best_member": {"test_err_pct": spread(best)},
                "ensemble": {"test_err_pct": spread(ens)}},
                "runs": [r for e in groups for r in e["runs"]]},
            "plot": _ensemble_plot(ctx, groups),
            "verdict": verdict(combine(parts), text, RULE)}


def _ensemble_plot(ctx: Context, groups: list[dict[str, Any]]) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    width = 0.8 / (len(groups[0]["members_err_pct"]) + 1)
    for j, e in enumerate(groups):
        bars = e["members_err_pct"] + [e["ensemble_err_pct"]]
        for i, v in enumerate(bars):
            last = i == len(bars) - 1
            ax.bar(j + i * width, v, width, color="tab:blue" if last else "tab:gray",
                   label=("ensemble" if last else "members") if j == 0 and i >= len(bars) - 2 else None)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(groups))],
                  [f"seeds {10 * e['group_seed']}.." for e in groups])
    ax.set_ylabel("top-1 test error (%)")
    ax.legend()
    ax.set_title(f"lenet5 ensembles (mean softmax), {groups[0]['images']} test images")
    return save_figure(fig, ctx.out / "ensemble.png")


def lrn(ctx: Context) -> dict[str, Any]:
    """The same net with and without LRN; full size: vgg11 vs vgg11_lrn (VGG Table 3, A vs A-LRN)."""
    if ctx.size == "full":
        arms: dict[str, str | Scratch] = {"without": "vgg11", "with": "vgg11_lrn"}
        recipe, budget = "vgg", Budget(None, None, 256)
    else:
        arms = {key: Scratch(f"exp_lrn_{key}", SmallConvNet, (1, 28, 28), {"lrn": key == "with"})
                for key in ("without", "with")}
        recipe, budget = "lenet", ctx.pick(smoke=Budget(128, 1, 32), quick=QUICK_SMALL)
    runs = train_arms(ctx, "lrn", arms, recipe=recipe, budget=budget)
    part = decide(values(runs, "without"), values(runs, "with"), threshold=-LRN_NOTHING_PTS,
                  claim=f"LRN lowers the test error by less than {LRN_NOTHING_PTS} points")
    return _paired(ctx, "lrn", runs, [part], "Simonyan & Zisserman 2015, Table 3: A 29.6% / 10.4%, A-LRN "
                   "29.7% / 10.5% top-1 / top-5 (LRN does not improve)", "the same net with and without LRN")


def _paired(ctx: Context, name: str, runs: list[dict[str, Any]], parts: list[dict[str, Any]],
            paper: str, title: str) -> dict[str, Any]:
    summary = summarize(runs)
    text = "test error (mean +/- std): " + ", ".join(
        f"{arm} {s['test_err_pct']['mean']:.2f} +/- {s['test_err_pct']['std']:.2f}%" for arm, s in summary.items()
    ) + "; " + "; ".join(describe(p) for p in parts)
    return {"paper": {"figure": paper}, "measured": {"arms": summary, "parts": parts, "runs": runs},
            "plot": arms_figure(ctx, name, runs, title), "verdict": verdict(combine(parts), text, RULE)}


def aux_heads(ctx: Context) -> dict[str, Any]:
    """A small GoogLeNet-style net with its auxiliary classifier on and off (full: googlenet)."""
    if ctx.size == "full":
        from ..registry import get_entry

        g = get_entry("googlenet")
        off: str | Scratch = Scratch("exp_googlenet_noaux", g.builder, g.input_size, {"aux_logits": False}, 1000)
        pair, recipe, budget = {"off": off, "on": "googlenet"}, "googlenet", Budget(None, None, 128)
    else:
        pair = {key: Scratch(f"exp_aux_{key}", SmallGoogLeNet, (1, 28, 28), {"aux": key == "on"})
                for key in ("off", "on")}
        recipe, budget = "lenet", ctx.pick(smoke=Budget(128, 1, 32), quick=QUICK_SMALL)
    runs = train_arms(ctx, "aux", pair, recipe=recipe, budget=budget)
    part = decide(values(runs, "on"), values(runs, "off"), claim="the auxiliary classifier lowers the test error")
    return _paired(ctx, "aux-heads", runs, [part], "Szegedy et al. 2015 (GoogLeNet): the auxiliary networks' "
                   "effect is 'relatively minor (around 0.5%)'; Szegedy et al. 2016 (Inception v3) sec. 4: "
                   "they act as regularizers, no faster early training", "auxiliary classifier off and on")
