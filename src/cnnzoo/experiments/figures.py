"""The trained experiments' figures: each arm's training-error curve (mean of the seeds, the
band their min..max) and its test error over the seeds, as bars or against multiply-adds."""

from __future__ import annotations

from typing import Any

from .common import Context, pyplot, save_figure, values

COLORS = ["tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:cyan", "tab:brown",
          "tab:gray"]


def arms_figure(ctx: Context, name: str, runs: list[dict[str, Any]], title: str, *,
                macs: dict[str, float] | None = None, paper: dict[str, tuple[float, float]] | None = None,
                paper_label: str = "paper") -> str:
    """NAME.png: curves, then test error per arm (against `macs` when given); `paper` maps an arm
    to (multiply-adds, accuracy %) for a third panel with the paper's own points."""
    plt = pyplot()
    arms = list(dict.fromkeys(r["arm"] for r in runs))
    panels = 3 if paper else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.9))
    _curves(axes[0], runs, arms)
    _test_errors(axes[1], runs, arms, macs)
    if paper:
        ax = axes[2]
        xs, ys = zip(*paper.values())
        ax.plot(xs, ys, "ks--")
        for label, (x, y) in paper.items():
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("multiply-adds (M)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(paper_label, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, ctx.out / f"{name}.png")


def _curves(ax: Any, runs: list[dict[str, Any]], arms: list[str]) -> None:
    for arm, color in zip(arms, COLORS * 4):
        curves = [r["train_err_pct"] for r in runs if r["arm"] == arm]
        n = min(len(c) for c in curves)
        epochs = [r["epochs"] for r in runs if r["arm"] == arm][0][:n]
        cols = [[c[i] for c in curves] for i in range(n)]
        ax.plot(epochs, [sum(v) / len(v) for v in cols], "o-", color=color, label=arm)
        ax.fill_between(epochs, [min(v) for v in cols], [max(v) for v in cols], color=color, alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training error (%)")
    ax.set_title(f"training error, mean of {len(runs) // max(1, len(arms))} seeds (band: min..max)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _test_errors(ax: Any, runs: list[dict[str, Any]], arms: list[str], macs: dict[str, float] | None) -> None:
    for i, (arm, color) in enumerate(zip(arms, COLORS * 4)):
        errs = values(runs, arm)
        mean = sum(errs) / len(errs)
        x = macs[arm] if macs else i
        ax.errorbar([x], [mean], yerr=[[mean - min(errs)], [max(errs) - mean]], fmt="o", color=color,
                    capsize=4, label=f"{arm}: {mean:.2f}%")
        ax.scatter([x] * len(errs), errs, color=color, s=10, alpha=0.6)
    if macs:
        ax.set_xscale("log")
        ax.set_xlabel("multiply-adds (M, the analyzer's)")
    else:
        ax.set_xticks(range(len(arms)), arms)
    ax.set_ylabel("test error (%)")
    ax.set_title("test error: mean (dot), min..max of the seeds (bar)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
