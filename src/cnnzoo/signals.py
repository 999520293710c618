"""Stop signals: Ctrl-C (SIGINT), SIGTERM (how SLURM, Kubernetes, spot and preemptible
instances stop a job; torchrun forwards it to every rank) and SIGHUP (a closed terminal).

- While a CLI command runs (`cli_handlers`), SIGTERM and SIGHUP raise `Stopped`, a
  KeyboardInterrupt like Ctrl-C's: every verb unwinds (its atomic writers remove their
  temporary files, run folders are unlocked) and the CLI exits 128 + the signal's number
  (130 SIGINT, 143 SIGTERM, 129 SIGHUP) with one line and no traceback.
- While a run trains (`deferred`), a stop signal only records itself: the loop stops between
  two optimizer steps, saves the exact state at that step and raises `Stopped`. A second
  Ctrl-C stops at once (a person insists); a repeated SIGTERM/SIGHUP does not (a scheduler
  and torchrun may both deliver one: the save must finish).
A signal someone else handles or ignores (`nohup`, a host application) is left alone.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

# SIGHUP does not exist on Windows
STOP_SIGNALS: tuple[int, ...] = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                                      if hasattr(signal, n))
_received: list[int] = []  # the stop signals this process received, first first


class Stopped(KeyboardInterrupt):
    """A stop signal ended the work; the CLI exits `exit_code` (128 + the signal's number)."""

    def __init__(self, signum: int = signal.SIGINT, *args: Any) -> None:
        super().__init__(signum, *args)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def name(signum: int) -> str:
    """SIGTERM, SIGHUP, SIGINT..."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def stopped_by() -> int | None:
    """The first stop signal this process received (None: none)."""
    return _received[0] if _received else None


def _record(signum: int) -> None:
    _received.append(int(signum))


def _raise(signum: int, frame: object) -> None:
    _record(signum)
    raise Stopped(signum)


def _ours(sig: int, handler: Any) -> bool:
    """Whether `sig` is at its default (or the CLI's own handler): ours to take."""
    if sig == signal.SIGINT:
        return handler is signal.default_int_handler
    return handler is signal.SIG_DFL or handler is _raise


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def cli_handlers() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `Stopped` while the block runs; the handlers before it come back
    after. Ctrl-C keeps Python's own handler (KeyboardInterrupt)."""
    _received.clear()
    old: dict[int, Any] = {}
    if _on_main_thread():
        for sig in STOP_SIGNALS:
            handler = signal.getsignal(sig)
            if sig != signal.SIGINT and handler is signal.SIG_DFL:
                old[sig] = signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def leave_to_parent(worker_id: int = 0) -> None:
    """A data loader's worker process leaves stop signals to its parent: SLURM and a terminal's
    Ctrl-C reach every process of the job, and a worker that died of one would fail its parent's
    next batch before the parent could save. They are blocked and taken by a thread that ends
    the worker only on its parent's own SIGTERM (the loader's last resort for a stuck worker);
    the parent stops its workers itself. Where sigwaitinfo is missing (macOS), nothing changes."""
    if not hasattr(signal, "sigwaitinfo"):
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # threads started later inherit it
    threading.Thread(target=_parents_sigterm_only, name="cnnzoo-stop-signals", daemon=True).start()


def _parents_sigterm_only() -> None:
    while True:
        info = signal.sigwaitinfo(set(STOP_SIGNALS))
        if info.si_signo == signal.SIGTERM and info.si_pid == os.getppid():
            os._exit(0)  # as torch's own handler does for its parent's SIGTERM


@contextmanager
def deferred(escalate: bool = True) -> Iterator[Callable[[], int]]:
    """While the block runs, a stop signal is only recorded; yields the check "which stop signal
    was asked" (0: none). With `escalate`, a second Ctrl-C raises `Stopped` at once (off under
    torchrun, which forwards the terminal's Ctrl-C to ranks that already got it)."""
    asked: list[int] = []
    if not _on_main_thread():
        yield lambda: 0
        return

    def handler(signum: int, frame: object) -> None:
        _record(signum)
        if escalate and signum == signal.SIGINT and signal.SIGINT in asked:
            raise Stopped(signum)
        asked.append(int(signum))

    old = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    taken = [sig for sig, h in old.items() if _ours(sig, h)]
    for sig in taken:
        signal.signal(sig, handler)
    try:
        yield lambda: asked[0] if asked else 0
    finally:
        for sig in taken:
            signal.signal(sig, old[sig])
