"""The experiments the analyzer answers: 1x1 reductions in the inception module (seed 001's
GoogLeNet table) and two stacked 3x3 convolutions in place of one 5x5 (seed 003, VGG sec. 2.3),
the latter with a short training run of two small nets that differ only in that."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..analysis import analyze, receptive_field
from .common import QUICK_SMALL, Budget, Context, Scratch, pyplot, save_figure, summarize, train_arms, values, verdict
from .figures import arms_figure
from .nets import INCEPTION_3A, INCEPTION_3A_IN, SmallConvNet, naive_inception, one_5x5, reduced_inception, two_3x3
from .verdicts import RULE, combine, count_part, decide, describe

PAPER_3A = {"params": 159e3, "macs": 128e6, "source": "Szegedy et al. 2015, Table 1 (seed 001): "
            "inception (3a) 159K params, 128M ops"}
STACK_C, STACK_HW = 64, 56  # the comparison's C and H = W (any C, H, W give 25:18)


def _costs(model: nn.Module, size: tuple[int, int, int]) -> dict[str, Any]:
    r = analyze(model, input_size=size)
    conv = [row for row in r.rows if row.kind == "conv"]
    with torch.no_grad():
        out_shape = list(model.eval()(torch.zeros(1, *size)).shape[1:])
    return {"params": r.total_params, "macs": r.total_macs, "conv_macs": sum(row.macs for row in conv),
            "conv_weights": sum(_weights(row) for row in conv), "out_shape": out_shape,
            "conv_layers": len(conv)}


def _weights(row: Any) -> int:
    c_in = row.in_shape[0] // (row.groups or 1)
    return row.filters * c_in * row.kernel[0] * row.kernel[1]


def inception_reduction(ctx: Context) -> dict[str, Any]:
    """Naive vs 1x1-reduced inception module at GoogLeNet's 3a shape (28x28x192 in)."""
    size = (INCEPTION_3A_IN, 28, 28)
    c1, _, c3, _, c5, _ = INCEPTION_3A
    naive = _costs(naive_inception(INCEPTION_3A_IN, c1, c3, c5), size)
    reduced = _costs(reduced_inception(), size)
    ratio = naive["conv_macs"] / reduced["conv_macs"]
    off = reduced["conv_macs"] / PAPER_3A["macs"] - 1
    ok = abs(off) <= 0.01
    text = (f"1x1 reductions cut the module's multiply-adds {ratio:.2f}x ({naive['conv_macs'] / 1e6:.1f}M "
            f"-> {reduced['conv_macs'] / 1e6:.1f}M) and its output from {naive['out_shape'][0]} to "
            f"{reduced['out_shape'][0]} channels; the reduced module's conv MACs are "
            f"{off * 100:+.2f}% off the paper's 128M")
    measured = {"naive": naive, "reduced": reduced, "mac_ratio": round(ratio, 3),
                "param_ratio": round(naive["params"] / reduced["params"], 3),
                "reduced_vs_paper_macs_pct": round(100 * off, 3),
                "reduced_vs_paper_params_pct": round(100 * (reduced["params"] / PAPER_3A["params"] - 1), 3)}
    plot = _bars(ctx, "inception-reduction", ["naive (Fig. 2a)", "1x1-reduced (Fig. 2b)"],
                 [naive["conv_macs"] / 1e6, reduced["conv_macs"] / 1e6], [naive["params"] / 1e3,
                 reduced["params"] / 1e3], paper_macs=PAPER_3A["macs"] / 1e6,
                 title="Inception (3a), 28x28x192 in")
    return {"paper": PAPER_3A, "measured": measured, "plot": plot,
            "verdict": verdict("reproduced" if ok else "contradicted", text,
                               "reduced conv MACs within 1% of the paper's 128M (params: the "
                               "paper's 159K counts weights in K = 1024: 163,328 / 1024 = 159.5K)")}


def _bars(ctx: Context, name: str, labels: list[str], macs: list[float], params: list[float], *,
          title: str, paper_macs: float | None = None) -> str:
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    a1.bar(labels, macs, color=["tab:red", "tab:blue"])
    if paper_macs is not None:
        a1.axhline(paper_macs, color="k", ls="--", lw=1, label=f"paper: {paper_macs:g}M")
        a1.legend()
    a1.set_ylabel("multiply-adds (M)")
    a2.bar(labels, params, color=["tab:red", "tab:blue"])
    a2.set_ylabel("parameters (K)")
    for ax in (a1, a2):
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, ctx.out / f"{name}.png")


def stacked_3x3(ctx: Context) -> dict[str, Any]:
    """One 5x5 conv vs two stacked 3x3 convs (C -> C): counts, then two small nets trained."""
    c, hw = STACK_C, STACK_HW
    size = (c, hw, hw)
    five, three = one_5x5(c), two_3x3(c)
    counts = {"C": c, "H": hw, "W": hw,
              "one_5x5": {**_costs(five, size), "receptive_field": list(receptive_field(five, size))},
              "two_3x3": {**_costs(three, size), "receptive_field": list(receptive_field(three, size))},
              "formula": {"one_5x5_params": 25 * c * c, "two_3x3_params": 18 * c * c,
                          "one_5x5_macs": 25 * c * c * hw * hw, "two_3x3_macs": 18 * c * c * hw * hw}}
    exact = (counts["one_5x5"]["params"] == 25 * c * c and counts["two_3x3"]["params"] == 18 * c * c
             and counts["one_5x5"]["macs"] == 25 * c * c * hw * hw
             and counts["two_3x3"]["macs"] == 18 * c * c * hw * hw
             and counts["one_5x5"]["receptive_field"] == counts["two_3x3"]["receptive_field"] == [5, 5])
    runs = train_arms(ctx, "stack", {block: Scratch(f"exp_stack_{block}", SmallConvNet, (1, 28, 28),
                                                    {"block": block}) for block in ("5x5", "3x3")},
                      recipe="lenet", budget=ctx.pick(smoke=Budget(128, 1, 32), quick=QUICK_SMALL,
                                                      full=Budget(None, 8, 128)))
    parts = [count_part("the counts are 25C^2 vs 18C^2 and receptive field 5 for both", exact,
                        "exact" if exact else "NOT exact"),
             decide(values(runs, "3x3"), values(runs, "5x5"), claim="the two-3x3 net has the lower test error")]
    summary = summarize(runs)
    text = (f"counts: 25C^2 vs 18C^2 params and MACs, receptive field 5 for both: "
            f"{'exact' if exact else 'NOT exact'}; test error (mean +/- std): " + ", ".join(
                f"{arm} {s['test_err_pct']['mean']:.2f} +/- {s['test_err_pct']['std']:.2f}%"
                for arm, s in summary.items()) + "; " + describe(parts[1]))
    return {"paper": {"params": "25C^2 vs 18C^2", "macs": "25C^2HW vs 18C^2HW", "receptive_field": 5,
                      "error": "VGG sec. 4.1: a net with 5x5 convs in place of B's 3x3 pairs had "
                               "7% higher top-1 error (ImageNet)"},
            "measured": {"counts": counts, "arms": summary, "parts": parts, "runs": runs},
            "plot": arms_figure(ctx, "stacked-3x3", runs, "one 5x5 vs two 3x3 convs (same receptive field)"),
            "verdict": verdict(combine(parts), text, RULE)}
