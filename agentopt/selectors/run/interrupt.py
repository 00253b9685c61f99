"""Ctrl-C during a selection: stop cleanly, keep what was paid for, say how to resume.

While ``select_best()`` runs in the main thread (directly, or blocking a running
event loop as a sync call inside ``asyncio.run`` or Jupyter does), SIGINT
presses a :class:`StopSignal` instead of raising wherever the interpreter
happens to be:

- the first press stops *starting* evaluations; those already running finish
  and are written to the store;
- a second press cancels the running ones too.

The selector then prints one line (``interrupted; N observations kept …;
re-run to resume``) and raises a plain ``KeyboardInterrupt``: no chain of
``CancelledError`` tracebacks, and no evaluation lost that had finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

__all__ = [
    "RunInfo",
    "StopSignal",
    "block_sigint_in_this_thread",
    "interrupted_line",
    "sigint_presses",
]


class StopSignal:
    """Thread-safe stop request; the selection loop and the evaluator poll ``event``."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.presses = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[object] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object] | None) -> None:
        """Where a second press cancels: the selection's own task on its own loop."""
        with self._lock:
            self._loop, self._task = loop, task

    def press(self) -> None:
        with self._lock:
            self.presses += 1
            self.event.set()
            loop, task, hard = self._loop, self._task, self.presses >= 2
        if hard and loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)

    @property
    def pressed(self) -> bool:
        return self.event.is_set()


#: printed at the first Ctrl-C of a selection
STOPPING_LINE = "agentopt: stopping after the evaluations running now (Ctrl-C again to drop them)"


@contextlib.contextmanager
def sigint_presses(stop: StopSignal) -> Iterator[None]:
    """While inside, SIGINT presses ``stop``. Only the main thread can own signals;
    elsewhere, or when SIGINT is ignored or left to the OS, this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN / SIG_DFL: the user chose; leave it
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.press()
        if stop.presses == 1:  # say at once that the press was heard
            print(STOPPING_LINE, file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def block_sigint_in_this_thread() -> None:
    """Keep SIGINT away from this worker thread (an initializer for the evaluation
    threads): the kernel then delivers Ctrl-C to the main thread, whose handler
    acts at once instead of when the main thread next happens to wake."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


@dataclass
class RunInfo:
    """What a run kept, for the interruption line."""

    kept: int = 0
    store_path: Path | None = None


def interrupted_line(info: RunInfo) -> str:
    n = f"{info.kept} observation{'s' if info.kept != 1 else ''}"
    if info.store_path is not None:
        return f"agentopt: interrupted; {n} kept in {info.store_path}; re-run to resume"
    return (
        f"agentopt: interrupted; {n} kept in memory; call select_best() again to resume "
        "(store= keeps them across processes)"
    )


def print_interrupted(info: RunInfo) -> None:
    print(interrupted_line(info), file=sys.stderr, flush=True)
