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
