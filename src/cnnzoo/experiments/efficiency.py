"""The four claims of issue 26 about what a layer buys: NiN's 1x1 convolutions (Lin et al.
2013), depthwise separable convolutions and the width multiplier (Howard et al. 2017, Tables 4
and 6) and batch normalisation (Ioffe & Szegedy 2015). Each trains its arms with several seeds
(common.train_arms) and decides with verdicts.decide; multiply-adds are the analyzer's."""

from __future__ import annotations

from typing import Any

from ..analysis import analyze
from .common import Budget, Context, Scratch, summarize, train_arms, values, verdict
from .figures import arms_figure
from .nets import PlainConvNet, SmallMobileNet, SmallNiN
from .verdicts import RULE, combine, count_part, decide, describe

ALPHAS = (1.0, 0.75, 0.5, 0.25)
# Howard et al. 2017 at 224x224 on ImageNet: Table 4 (full vs separable convs) and Table 6.
PAPER_TABLE4 = {"conv": (4866, 71.7), "separable": (569, 70.6)}  # million mult-adds, top-1 %
PAPER_TABLE6 = {"1.0": (569, 70.6), "0.75": (325, 68.4), "0.5": (149, 63.7), "0.25": (41, 50.6)}
PAPER_SEPARABLE_COST_PTS = 71.7 - 70.6  # Table 4: 1.1 points of top-1
MOBILE_QUICK_ALPHA = 0.5  # the separable experiment's width at the quick size (1.0 at full)


def _macs(net: Scratch) -> float:
    """The analyzer's multiply-adds (millions) of a scratch net at its input size."""
    model = net.builder(net.num_classes, net.input_size[0], **net.kwargs)
    return round(analyze(model, input_size=net.input_size).total_macs / 1e6, 3)


def _text(summary: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{arm} {s['test_err_pct']['mean']:.2f} +/- {s['test_err_pct']['std']:.2f}%"
                     for arm, s in summary.items())


def _result(ctx: Context, name: str, runs: list[dict[str, Any]], parts: list[dict[str, Any]],
            paper: dict[str, Any], plot: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    summary = summarize(runs)
    text = f"test error (mean +/- std of {len(ctx.seed_list)} seeds): {_text(summary)}; " + "; ".join(
        describe(p) for p in parts)
    return {"paper": paper, "measured": {"arms": summary, "parts": parts, "runs": runs, **(extra or {})},
            "plot": plot, "verdict": verdict(combine(parts), text, RULE)}


def nin_1x1(ctx: Context) -> dict[str, Any]:
    """NiN with and without its 1x1 layers, equal epochs (full: nin_cifar's own widths)."""
    scale = ctx.pick(smoke=0.125, quick=0.5, full=1.0)
    size = (1, 28, 28) if ctx.size != "full" else (3, 32, 32)
    arms = {key: Scratch(f"exp_nin_{key}", SmallNiN, size, {"scale": scale, "one_by_one": key == "mlpconv"})
            for key in ("mlpconv", "no-1x1")}
    budget = ctx.pick(smoke=Budget(128, 1, 32), quick=Budget(15000, 5, 64), full=Budget(None, 30, 128))
    runs = train_arms(ctx, "nin", arms, recipe="lenet", budget=budget)
    part = decide(values(runs, "mlpconv"), values(runs, "no-1x1"),
                  claim="the 1x1 layers lower the test error")
    macs = {k: _macs(v) for k, v in arms.items()}
    paper = {"figure": "Lin et al. 2013: NIN's mlpconv (1x1 'cascaded cross channel parametric pooling') "
                       "makes the net more discriminative; CIFAR-10 test error 10.41% (no augmentation)",
             "test_err_pct": {"nin_cifar": 10.41}}
    plot = arms_figure(ctx, "nin-1x1", runs, f"NiN (x{scale} widths) with and without its 1x1 layers")
    return _result(ctx, "nin-1x1", runs, [part], paper, plot, {"macs_m": macs, "width_scale": scale})


def _mobile(ctx: Context, tag: str, alpha: float, separable: bool) -> Scratch:
    return Scratch(f"exp_mobile_{tag}", SmallMobileNet, (1, 32, 32), {"alpha": alpha, "separable": separable})


def _mobile_budget(ctx: Context) -> Budget:
    return ctx.pick(smoke=Budget(128, 1, 32), quick=Budget(10000, 3, 64), full=Budget(None, 30, 128))


def separable_accuracy_part(separable_errs: list[float], conv_errs: list[float]) -> dict[str, Any]:
    """Table 4's accuracy claim: conv error - separable error > -1.1 points, i.e. separable
    convs cost less than the paper's 1.1 points of accuracy."""
    return decide(separable_errs, conv_errs, threshold=-PAPER_SEPARABLE_COST_PTS,
                  claim="separable convs cost at most the paper's 1.1 points (sep. error - conv error < 1.1)")


def separable(ctx: Context) -> dict[str, Any]:
    """A small MobileNet at 32x32 with depthwise separable vs full 3x3 convs (Table 4)."""
    alpha = ctx.pick(smoke=0.25, quick=MOBILE_QUICK_ALPHA, full=1.0)
    arms = {"separable": _mobile(ctx, "sep", alpha, True), "conv": _mobile(ctx, "conv", alpha, False)}
    macs = {k: _macs(v) for k, v in arms.items()}
    runs = train_arms(ctx, "separable", arms, recipe="lenet", budget=_mobile_budget(ctx))
    ratio = macs["conv"] / macs["separable"]
    cost = count_part("full convs cost 8-9x the separable net's multiply-adds (at least 7x)", ratio >= 7,
                      f"{ratio:.2f}x ({macs['conv']:.1f}M vs {macs['separable']:.1f}M)")
    acc = separable_accuracy_part(values(runs, "separable"), values(runs, "conv"))
    paper = {"figure": "Howard et al. 2017, Table 4: Conv MobileNet 71.7% top-1, 4866M mult-adds, 29.3M "
                       "params; MobileNet 70.6%, 569M, 4.2M (ImageNet, 224x224)",
             "mult_adds_m": {k: v[0] for k, v in PAPER_TABLE4.items()},
             "top1_acc_pct": {k: v[1] for k, v in PAPER_TABLE4.items()}, "macs_ratio": round(4866 / 569, 2)}
    plot = arms_figure(ctx, "separable", runs, f"MobileNet (alpha {alpha}, 32x32): separable vs full convs",
                       macs=macs, paper={k: v for k, v in PAPER_TABLE4.items()},
                       paper_label="paper: Table 4 (ImageNet, 224x224)")
    return _result(ctx, "separable", runs, [cost, acc], paper, plot,
                   {"macs_m": macs, "macs_ratio": round(ratio, 2), "alpha": alpha})


def width_multiplier(ctx: Context) -> dict[str, Any]:
    """Separable MobileNets at alpha 1, 0.75, 0.5, 0.25: test error against multiply-adds (Table 6)."""
    alphas = ALPHAS if ctx.size != "smoke" else ALPHAS[2:]  # the smoke size: two thin nets, seconds
    arms = {f"{a:g}": _mobile(ctx, f"a{int(a * 100)}", a, True) for a in alphas}
    macs = {k: _macs(v) for k, v in arms.items()}
    runs = train_arms(ctx, "width", arms, recipe="lenet", budget=_mobile_budget(ctx))
    keys = list(arms)
    parts = [decide(values(runs, wide), values(runs, thin), claim=f"alpha {wide} beats alpha {thin}")
             for wide, thin in zip(keys, keys[1:])]
    scaling = {k: round(macs[k] / macs[keys[0]], 3) for k in keys}
    paper = {"figure": "Howard et al. 2017, Table 6 (ImageNet, 224x224): alpha 1.0 70.6% 569M; 0.75 68.4% "
                       "325M; 0.5 63.7% 149M; 0.25 50.6% 41M (accuracy falls smoothly, cost ~ alpha^2)",
             "mult_adds_m": {k: v[0] for k, v in PAPER_TABLE6.items()},
             "top1_acc_pct": {k: v[1] for k, v in PAPER_TABLE6.items()}}
    plot = arms_figure(ctx, "width-multiplier", runs, "MobileNet width multiplier: error vs multiply-adds",
                       macs=macs, paper={f"alpha {k}": v for k, v in PAPER_TABLE6.items()},
                       paper_label="paper: Table 6 (ImageNet, 224x224)")
    return _result(ctx, "width-multiplier", runs, parts, paper, plot,
                   {"macs_m": macs, "macs_vs_widest": scaling, "alpha_squared": {k: float(k) ** 2 for k in keys}})


def batchnorm(ctx: Context) -> dict[str, Any]:
    """The same six-conv net with and without batch normalisation, SGD at the same rate."""
    arms = {key: Scratch(f"exp_bn_{key}", PlainConvNet, (1, 28, 28), {"bn": key == "bn"})
            for key in ("bn", "no-bn")}
    budget = ctx.pick(smoke=Budget(128, 1, 32), quick=Budget(None, 3, 64), full=Budget(None, 20, 128))
    lr = 0.05
    runs = train_arms(ctx, "batchnorm", arms, recipe="cifar_resnet", budget=budget,
                      overrides={"lr": lr, "schedule": "constant", "augment": "none"})
    parts = [decide(values(runs, "bn"), values(runs, "no-bn"), claim="batch norm lowers the test error"),
             decide(values(runs, "bn", "train_err_pct"), values(runs, "no-bn", "train_err_pct"),
                    claim="batch norm lowers the final training error")]
    paper = {"figure": "Ioffe & Szegedy 2015, Fig. 2 and sec. 4.2: at Inception's own learning rate, "
                       "BN-Baseline reaches Inception's 72.2% accuracy in less than half the steps "
                       "(13.3M vs 31M); the same net trains faster with batch normalisation"}
    plot = arms_figure(ctx, "batchnorm", runs, f"six 3x3 convs with and without batch norm, SGD lr {lr}")
    return _result(ctx, "batchnorm", runs, parts, paper, plot, {"lr": lr})
