"""The terminal side of `cnnzoo train`: run messages on a rich console and a transient
progress bar per epoch (steps, running loss/accuracy, images per second, time left)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ..train.reporter import Reporter


class ConsoleReporter(Reporter):
    def __init__(self, console: Console, *, progress: bool) -> None:
        self.console = console
        self.wants_progress = progress
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def epoch_begins(self, *, epoch: int, epochs: int, steps: int, done: int) -> None:
        if not self.wants_progress:
            return
        if self._bar is None:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stats]}"), TimeRemainingColumn(),
                                 console=self.console, transient=True)
            self._bar.start()
        self._task = self._bar.add_task(f"epoch {epoch}/{epochs}", total=steps, completed=done, stats="")

    def epoch_progress(self, *, done: int, metrics: dict[str, float]) -> None:
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
