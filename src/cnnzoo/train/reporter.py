"""How a training run talks to whoever started it.

The library never draws on the terminal: `fit` calls these hooks, and this base ignores them
all (a quiet run, and every rank but 0 under torchrun). The CLI passes a subclass that prints
and draws a progress bar (cnnzoo.commands._progress).
"""

from __future__ import annotations


class Reporter:
    """No-op hooks of a training run. Messages are one line each, in rich markup ([bold]...[/])."""

    # Progress hooks cost a host sync (and a metric all-reduce) every `log_every` steps, so the
    # loop calls `epoch_progress` only for a reporter that shows it.
    wants_progress: bool = False

    def message(self, text: str) -> None:
        """A line for the user: the run's setup, an epoch's summary, a note."""

    def epoch_begins(self, *, epoch: int, epochs: int, steps: int, done: int) -> None:
        """Epoch `epoch` (1-based) of `epochs` starts with `done` of its `steps` already run."""

    def epoch_progress(self, *, done: int, metrics: dict[str, float]) -> None:
        """`done` steps of the epoch are run; metrics: loss, acc, img_s so far this epoch."""

    def epoch_ends(self) -> None:
        """The epoch's training steps are over (its evaluation and summary follow)."""

    def run_ends(self) -> None:
        """The run stopped, finished or failed; nothing follows."""


class PrintReporter(Reporter):
    """Plain lines on stdout: each message, and the epoch's progress at most every `every`
    seconds. No terminal control codes, so a notebook cell (or a log file) shows it as it comes."""

    wants_progress = True

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self._epoch = self._epochs = self._steps = 0
        self._last = 0.0

    def message(self, text: str) -> None:
        from rich.text import Text  # messages carry rich markup ([bold]...[/]); print the words

        print(Text.from_markup(text).plain, flush=True)

    def epoch_begins(self, *, epoch: int, epochs: int, steps: int, done: int) -> None:
        import time

        self._epoch, self._epochs, self._steps, self._last = epoch, epochs, steps, time.monotonic()

    def epoch_progress(self, *, done: int, metrics: dict[str, float]) -> None:
        import time

        if time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        parts = [f"epoch {self._epoch}/{self._epochs}: step {done}/{self._steps}"]
        parts += [f"{k} {v:.4g}" for k, v in metrics.items() if k in ("loss", "acc")]
        if "img_s" in metrics:
            parts.append(f"{metrics['img_s']:,.0f} img/s")
        print(", ".join(parts), flush=True)
