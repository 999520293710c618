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
    compare,
    count_test_images,
    noise_pts,
    pyplot,
    save_figure,
    train,
    verdict,
)
from .nets import SmallConvNet, SmallGoogLeNet

DEPTHS = (20, 56)


def degradation(ctx: Context) -> dict[str, Any]:
    """plain-20/56 vs ResNet-20/56: training error per epoch, as He et al. Fig. 6."""
    budget = ctx.pick(smoke=Budget(32, 2, 16), quick=Budget(512, 4, 32), full=Budget(None, None, 128))
    # MNIST digits are not mirrored: CIFAR's flips stay for CIFAR; a constant rate for the short sizes
    extra: dict[str, Any] = {} if ctx.size == "full" else {"augment": "none", "schedule": "constant"}
    runs = {f"{kind}{d}": train(ctx, f"{kind}{d}", tag=f"{kind}{d}", recipe="cifar_resnet",
                                budget=budget, overrides=extra)
            for kind in ("plain", "resnet") for d in DEPTHS}
    lo, hi = DEPTHS
    last = {k: r["train_err_pct"][-1] for k, r in runs.items()}
    tol = noise_pts(last[f"plain{lo}"], budget.limit_train or 50000)
    plain_gap = last[f"plain{hi}"] - last[f"plain{lo}"]
    res_gap = last[f"resnet{hi}"] - last[f"resnet{lo}"]
    if plain_gap > tol and res_gap <= tol:
        status, said = "reproduced", f"plain-{hi} trains worse than plain-{lo}, ResNet-{hi} does not"
    elif plain_gap > tol:
        status, said = "partly", (f"plain-{hi} trains worse than plain-{lo}, but so does ResNet-{hi} "
                                  f"than ResNet-{lo} at this size")
    elif plain_gap < -tol:
        status, said = "contradicted", f"plain-{hi} trains better than plain-{lo} here"
    else:
        status, said = "not shown", f"plain-{lo} and plain-{hi} train alike at this size"
    text = (f"final training error: plain-{lo} {last[f'plain{lo}']:.2f}%, plain-{hi} {last[f'plain{hi}']:.2f}%, "
            f"ResNet-{lo} {last[f'resnet{lo}']:.2f}%, ResNet-{hi} {last[f'resnet{hi}']:.2f}%: {said}")
    return {"paper": {"figure": "He et al. 2016, Fig. 6 (CIFAR-10 training error)",
                      "test_err_pct": {"plain20": 7.5, "plain56": 9.5, "resnet20": 8.75, "resnet56": 6.97},
                      "note": "plain test errors read off Fig. 6 (approximate); ResNet's from Table 6"},
            "measured": {"runs": runs, "final_train_err_pct": last, "plain_gap_pts": round(plain_gap, 3),
                         "resnet_gap_pts": round(res_gap, 3), "noise_pts": tol},
            "plot": _curves(ctx, runs, "degradation",
                            "training error (solid), final test error (dashed)", ("plain", "resnet")),
            "verdict": verdict(status, text, f"a deeper net 'trains worse' when its final-epoch training "
                                             f"error is more than {tol} points higher")}


def _curves(ctx: Context, runs: dict[str, dict[str, Any]], name: str, title: str,
            groups: Sequence[str]) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.8), sharey=True, squeeze=False)
    colors = iter(["tab:orange", "tab:red", "tab:cyan", "tab:blue", "tab:green", "tab:purple"])
    for ax, group in zip(axes[0], groups):
        for key, r in runs.items():
            if not key.startswith(group):
                continue
            c = next(colors)
            ax.plot(r["epochs"], r["train_err_pct"], "o-", color=c, label=f"{key} train")
            ax.axhline(r["test_err_pct"], color=c, ls="--", lw=1, label=f"{key} test {r['test_err_pct']:.2f}%")
        ax.set_xlabel("epoch")
        ax.set_title(group or name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("error (%)")
    fig.suptitle(title)
    return save_figure(fig, ctx.out / f"{name}.png")


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
    """lenet5 trained with different seeds; the members' mean softmax vs each member."""
    n = ctx.pick(smoke=3, quick=3, full=5)
    budget = ctx.pick(smoke=Budget(256, 1, 32), quick=Budget(2000, 2, 32), full=Budget(None, 6, 32))
    runs = [train(ctx, "lenet5", tag=f"lenet5-seed{ctx.seed + i}", recipe="lenet", budget=budget,
                  seed=ctx.seed + i) for i in range(n)]
    errs = ensemble_errors([Path(r["out"]) / MODEL_FILE for r in runs], runs[0]["data"])
    tol = noise_pts(errs["member_mean_err_pct"], errs["images"])
    gain = errs["member_mean_err_pct"] - errs["ensemble_err_pct"]
    if errs["ensemble_err_pct"] > errs["member_mean_err_pct"]:
        status = "contradicted"
    elif errs["ensemble_err_pct"] <= errs["best_member_err_pct"] and gain > tol:
        status = "reproduced"
    else:
        status = "partly"
    text = (f"{n} members {', '.join(f'{e:.2f}' for e in errs['members_err_pct'])}% (mean "
            f"{errs['member_mean_err_pct']:.2f}%), ensemble {errs['ensemble_err_pct']:.2f}%: "
            f"{gain:+.2f} points vs the members' mean, best member {errs['best_member_err_pct']:.2f}%")
    return {"paper": {"figure": "Szegedy et al. 2015, Table 3: 1 model 10.07% top-5 -> 7 models 8.09% "
                                "(144 crops: 7.89% -> 6.67%); Krizhevsky et al. 2012: 5 CNNs 16.4% vs 18.2%"},
            "measured": {**errs, "runs": runs, "gain_pts": round(gain, 3), "noise_pts": tol},
            "plot": _ensemble_plot(ctx, errs),
            "verdict": verdict(status, text, f"the ensemble is no worse than the members' mean; "
                                             f"'reproduced' when it also beats the best member and the "
                                             f"mean by more than {tol} points")}


def _ensemble_plot(ctx: Context, errs: dict[str, Any]) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    labels = [f"member {i + 1}" for i in range(len(errs["members_err_pct"]))] + ["ensemble"]
    ax.bar(labels, errs["members_err_pct"] + [errs["ensemble_err_pct"]],
           color=["tab:gray"] * len(errs["members_err_pct"]) + ["tab:blue"])
    ax.axhline(errs["member_mean_err_pct"], color="k", ls="--", lw=1,
               label=f"members' mean {errs['member_mean_err_pct']:.2f}%")
    ax.set_ylabel("top-1 test error (%)")
    ax.legend()
    ax.set_title(f"lenet5 ensemble (mean softmax), {errs['images']} test images")
    return save_figure(fig, ctx.out / "ensemble.png")


def _pair(ctx: Context, name: str, pair: dict[str, str | Scratch], recipe: str, budget: Budget
          ) -> dict[str, dict[str, Any]]:
    return {key: train(ctx, model, tag=f"{name}-{key}", recipe=recipe, budget=budget)
            for key, model in pair.items()}


def lrn(ctx: Context) -> dict[str, Any]:
    """The same net with and without LRN; full size: vgg11 vs vgg11_lrn (VGG Table 3, A vs A-LRN)."""
    if ctx.size == "full":
        runs = _pair(ctx, "lrn", {"without": "vgg11", "with": "vgg11_lrn"}, "vgg", Budget(None, None, 256))
    else:
        runs = _pair(ctx, "lrn", {key: Scratch(f"exp_lrn_{key}", SmallConvNet, (1, 28, 28),
                                                {"lrn": key == "with"}) for key in ("without", "with")},
                     "lenet", ctx.pick(smoke=Budget(128, 1, 32), quick=QUICK_SMALL))
    tol = noise_pts(runs["without"]["test_err_pct"], count_test_images(runs["without"]["data"]))
    help_pts = runs["without"]["test_err_pct"] - runs["with"]["test_err_pct"]
    status = "contradicted" if help_pts > tol else "reproduced"
    text = (f"without LRN {runs['without']['test_err_pct']:.2f}%, with LRN {runs['with']['test_err_pct']:.2f}% "
            f"test error: " + ("LRN helped here, unlike VGG's A-LRN" if help_pts > tol else
                               "LRN does not improve the net, as VGG found"))
    return {"paper": {"figure": "Simonyan & Zisserman 2015, Table 3: A 29.6% / 10.4%, A-LRN 29.7% / "
                                "10.5% top-1 / top-5 (LRN does not improve)"},
            "measured": {"runs": runs, "lrn_gain_pts": round(help_pts, 3), "noise_pts": tol},
            "plot": _pair_plot(ctx, runs, "lrn"),
            "verdict": verdict(status, text, f"LRN 'improves' the net when it lowers the test error "
                                             f"by more than {tol} points")}


def _pair_plot(ctx: Context, runs: dict[str, dict[str, Any]], name: str) -> str:
    keyed = {f"{name}-{k}": r for k, r in runs.items()}
    return _curves(ctx, keyed, name, f"{name}: training error (solid), final test error (dashed)", ("",))


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
    runs = _pair(ctx, "aux", pair, recipe, budget)
    tol = noise_pts(runs["off"]["test_err_pct"], count_test_images(runs["off"]["data"]))
    gain = runs["off"]["test_err_pct"] - runs["on"]["test_err_pct"]
    status, said = compare(gain, tol, shown="the auxiliary classifier lowers the test error",
                           absent="the auxiliary classifier makes no measurable difference at this size",
                           opposite="the net without the auxiliary classifier is the more accurate here")
    text = f"aux off {runs['off']['test_err_pct']:.2f}%, on {runs['on']['test_err_pct']:.2f}% test error: {said}"
    return {"paper": {"figure": "Szegedy et al. 2015 (GoogLeNet): the auxiliary networks' effect is "
                                "'relatively minor (around 0.5%)'; Szegedy et al. 2016 (Inception v3) "
                                "sec. 4: they act as regularizers, no faster early training"},
            "measured": {"runs": runs, "aux_gain_pts": round(gain, 3), "noise_pts": tol},
            "plot": _pair_plot(ctx, runs, "aux-heads"),
            "verdict": verdict(status, text, f"an effect is measured when the errors differ by more "
                                             f"than {tol} points")}
