"""The terminal side of `cnnzoo train`: run messages on a rich console and a transient
progress bar per epoch (steps, running loss/accuracy, images per second, time left). Without a
terminal (a pipe, CI) there is no bar: a progress line at most every PROGRESS_EVERY seconds
instead, and in both cases the run's estimated time once the first steps are timed."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ..train.reporter import Reporter

PROGRESS_EVERY = 10.0  # seconds between progress lines when there is no bar
ESTIMATE_AFTER = 3.0  # seconds of steps timed before the run's time is estimated


def _duration(s: float) -> str:
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


class ConsoleReporter(Reporter):
    def __init__(self, console: Console, *, progress: bool) -> None:
        self.console = console
        self.wants_progress = progress
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._epoch = self._epochs = self._steps = self._done0 = 0
        self._t0 = self._last_line = 0.0
        self._estimated = False

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def epoch_begins(self, *, epoch: int, epochs: int, steps: int, done: int) -> None:
        self._epoch, self._epochs, self._steps, self._done0 = epoch, epochs, steps, done
        self._t0 = self._last_line = time.monotonic()
        if not self.wants_progress:
            return
        if self._bar is None:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
                                 console=self.console, transient=True)
            self._bar.start()
        self._task = self._bar.add_task(f"epoch {epoch}/{epochs}", total=steps, completed=done, stats="")

    def epoch_progress(self, *, done: int, metrics: dict[str, float]) -> None:
        now = time.monotonic()
        rate = (done - self._done0) / max(now - self._t0, 1e-9)  # steps per second this epoch
        left = ((self._steps - done) + (self._epochs - self._epoch) * self._steps) / rate if rate > 0 else None
        if not self._estimated and left is not None and now - self._t0 >= ESTIMATE_AFTER:
            self._estimated = True
            self.console.print(f"estimated time left: {_duration(left)} ({rate:.1f} steps/s, "
                               f"{self._epochs - self._epoch + 1} epochs to go)", highlight=False)
        if self._bar is None and now - self._last_line >= PROGRESS_EVERY:
            self._last_line = now
            m = metrics
            self.console.print(f"  epoch {self._epoch}/{self._epochs} step {done}/{self._steps}  loss {m['loss']:.4f}  "
                               f"acc {100 * m['acc']:.2f}%  {m['img_s']:,.0f} img/s"
                               + (f"  run ETA {_duration(left)}" if left is not None else ""), highlight=False)
        if self._bar is not None and self._task is not None:
            m = metrics
            self._bar.update(self._task, completed=done,
                             stats=f"loss {m['loss']:.4f} acc {100 * m['acc']:.2f}% {m['img_s']:,.0f} img/s")

    def epoch_ends(self) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.remove_task(self._task)
            self._task = None

    def run_ends(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
