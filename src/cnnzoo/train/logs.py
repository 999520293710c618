"""A run's logs on disk: metrics.csv (written by cnnzoo.runfolder), the training curves,
TensorBoard scalars, and the confusion-matrix plot of `cnnzoo eval --plot-confusion`.

Files are written atomically and rewritten whole each epoch, so a run killed at any moment
leaves complete logs of the epochs it finished.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files import atomic_path
from ..runfolder import CURVES_FILE, TENSORBOARD_DIR, write_metrics


def _pyplot():  # matplotlib only when a plot is drawn, and never an interactive backend
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_png(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    _pyplot().close(fig)


def plot_curves(path: Path, history: list[dict], title: str, label_smoothing: float = 0.0) -> Any:
    """Loss and top-1 accuracy per epoch: train (the mean over the epoch's steps), validation (at
    the end of each epoch) and the test split's one score (a star at the kept epoch). With label
    smoothing the loss is the smoothed cross-entropy, and the axis says so. Returns the figure's
    axes' labels for tests (the figure itself is written and closed)."""
    from matplotlib.ticker import MaxNLocator

    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = _pyplot().subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [h["train_loss"] for h in history], "o-", label="train (mean over the epoch)")
    a2.plot(ep, [100 * h["train_acc"] for h in history], "o-", label="train (mean over the epoch)")
    for ax, key, scale in ((a1, "loss", 1), (a2, "acc", 100)):
        for split, style in (("val", "o-"), ("test", "*")):
            pts = [(h["epoch"], scale * h[f"{split}_{key}"]) for h in history if h.get(f"{split}_{key}") is not None]
            if pts:
                ax.plot(*zip(*pts), style, markersize=12 if split == "test" else 6,
                        label="validation (end of epoch)" if split == "val" else "test (once, kept weights)")
    loss = f"loss (cross-entropy, label smoothing {label_smoothing:g})" if label_smoothing else "loss (cross-entropy)"
    for ax, ylabel in ((a1, loss), (a2, "top-1 accuracy (%)")):
        ax.set_xlabel("epoch"), ax.set_ylabel(ylabel), ax.legend(fontsize=8), ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    fig.suptitle(title)
    fig.tight_layout()
    labels = {"loss": a1.get_ylabel(), "xticks": [float(t) for t in a1.get_xticks()],
              "legend": [t.get_text() for t in a1.get_legend().get_texts()]}
    _save_png(fig, path)
    return labels


def plot_confusion(path: str | Path, confusion: list[list[int]], classes: list[str], title: str) -> Any:
    """Row-normalised confusion matrix: colours and the numbers in the cells are the same
    quantity, the percentage of each true class's images given each prediction (the colorbar
    says so); class names up to 30 classes, numbers up to 15. Returns the colorbar's label."""
    import numpy as np

    cm = np.asarray(confusion, dtype=float)
    pct = 100 * cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(classes)
    size = min(4 + 0.35 * n, 30)
    fig, ax = _pyplot().subplots(figsize=(size, size))
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    if n <= 30:
        ax.set_xticks(range(n), classes, rotation=90)
        ax.set_yticks(range(n), classes)
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        ax.text(j, i, f"{pct[i, j]:.0f}" if pct[i, j] >= 1 else "<1", ha="center", va="center",
                                fontsize=7, color="white" if pct[i, j] > 50 else "black")
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    bar = fig.colorbar(im, fraction=0.046)
    bar.set_label("% of the true class's images (each row sums to 100)")
    fig.tight_layout()
    _save_png(fig, path)
    return bar.ax.get_ylabel()


class TensorBoardLog:
    """Scalars to TensorBoard when the tensorboard package is installed; otherwise nothing."""

    def __init__(self, out_dir: Path, enabled: bool) -> None:
        self.w = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.w = SummaryWriter(str(out_dir / TENSORBOARD_DIR))
            except Exception:  # tensorboard not installed
                self.w = None

    def log(self, row: dict) -> None:
        if self.w is None:
            return
        for k, v in row.items():
            if k not in ("epoch", "step") and isinstance(v, (int, float)):
                self.w.add_scalar(k, v, row["epoch"])
        self.w.flush()

    def close(self) -> None:
        if self.w is not None:
            self.w.close()


class RunLogs:
    """All of a run's per-epoch logs; on ranks other than 0 (`enabled` False) it writes nothing."""

    def __init__(self, out_dir: Path, *, enabled: bool, title: str, label_smoothing: float = 0.0) -> None:
        self.out_dir, self.enabled, self.title = out_dir, enabled, title
        self.label_smoothing = label_smoothing
        self.tb = TensorBoardLog(out_dir, enabled)

    def epoch_done(self, history: list[dict], plot: bool = True) -> None:
        """metrics.csv and TensorBoard; the curves too with `plot` (a PNG costs ~0.4 s)."""
        if not self.enabled:
            return
        write_metrics(self.out_dir, history)
        if plot:
            plot_curves(self.out_dir / CURVES_FILE, history, self.title, self.label_smoothing)
        self.tb.log(history[-1])

    def close(self) -> None:
        self.tb.close()
