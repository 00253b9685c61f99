"""One litellm call between its start and its record (see :mod:`litellm_capture`).

Whoever records the call (the wrapper on the caller's thread, or litellm's
success event) marks it done; a reader that must wait for it (``stop()``,
``records``) waits on an event made only then, so the usual call, which
nobody waits for, never builds one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from agentopt.tracking.pipeline import Pipeline
from agentopt.tracking.recorder import Exchange

__all__ = ["PendingCall"]

_wake_lock = threading.Lock()


@dataclass(slots=True)
class PendingCall:
    """A litellm call routed and tagged, not recorded yet."""

    pipeline: Pipeline
    exchange: Exchange
    started: float
    returned: bool = False  # the caller got its answer (or its stream ended)
    streaming: bool = False  # a stream was handed to the caller and is not over
    finished: bool = False  # recorded (or given up): see mark_done()
    waiter: threading.Event | None = None  # made only when someone waits (wait())

    def mark_done(self) -> None:
        """The call is recorded: wake whoever waits for it."""
        with _wake_lock:
            self.finished = True
            waiter = self.waiter
        if waiter is not None:
            waiter.set()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until :meth:`mark_done`; whether it came."""
        with _wake_lock:
            if self.finished:
                return True
            if self.waiter is None:
                self.waiter = threading.Event()
            waiter = self.waiter
        return waiter.wait(timeout)
