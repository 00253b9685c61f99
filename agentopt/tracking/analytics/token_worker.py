"""Token counting in a child process, so it never holds the GIL of the process that serves calls.

litellm's ``token_counter`` costs a few hundred microseconds of pure-Python
CPU per call. Run in a thread of the gateway daemon it took about a third of
the daemon's CPU and, holding the GIL, delayed the event loop that answers
callers. :class:`TokenWorker` runs :func:`~agentopt.tracking.analytics.
token_estimate.estimate` in ``python -m agentopt.tracking.analytics.
token_worker`` instead: a plain child process (not ``multiprocessing``, which
would re-import a user's ``__main__``), at a lower scheduling priority, that
imports litellm once and then answers batches over its stdin/stdout.

The protocol is private to this module: each message is an 8-byte
little-endian length and a pickle (protocol 5). A request is a list of
``(model, request_body, response_body)``; the answer is a list, in the same
order, of ``(input, output)`` or None. Both ends are ours; nothing else writes
to the pipe (the child points its own ``sys.stdout`` at stderr first, so a
print from a library cannot corrupt the stream).

If the child cannot start or dies, :meth:`TokenWorker.count` raises
:class:`WorkerFailed`; the caller (the estimator's thread) then counts that
batch itself, so no estimate is lost to a dead worker.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import IO, Any

__all__ = ["TokenWorker", "WorkerFailed", "main", "shared_worker"]

_HEADER = struct.Struct("<Q")
Item = tuple[str | None, Any, Any]


class WorkerFailed(RuntimeError):
    """The counting process could not start, or died while counting."""


def _send(stream: IO[bytes], obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=5)
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next message, or EOFError when the other end closed the pipe."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return pickle.loads(payload)


class TokenWorker:
    """A client of one counting child process, started at the first batch."""

    def __init__(self, *, nice: int = 10) -> None:
        self.nice = nice
        self.command = [sys.executable, "-m", __name__, str(nice)]
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the child now (it imports litellm), rather than at the first batch."""
        with self._lock:
            self._ensure()

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._pid != os.getpid():  # a forked copy: the child belongs to the parent
            self._proc, self._pid = None, os.getpid()
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        if self._proc is not None:
            self.restarts += 1
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError as e:
            self._proc = None
            raise WorkerFailed(f"the token-counting process did not start: {e}") from e
        return self._proc

    def count(self, items: list[Item]) -> list[tuple[int, int] | None]:
        """Counts for ``items``, in order; :class:`WorkerFailed` if the child fails."""
        with self._lock:
            proc = self._ensure()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                _send(proc.stdin, items)
                answer = _receive(proc.stdout)
            except (OSError, EOFError, pickle.PickleError, ValueError) as e:
                self._stop(proc)
                code = proc.poll()
                raise WorkerFailed(
                    f"the token-counting process (pid {proc.pid}) failed: "
                    f"{type(e).__name__}; exit code {code}"
                ) from e
        if not isinstance(answer, list) or len(answer) != len(items):
            raise WorkerFailed("the token-counting process answered out of protocol")
        return answer

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def close(self) -> None:
        """Let the child finish and exit (it stops at the end of its input)."""
        with self._lock:
            if self._proc is not None:
                self._stop(self._proc)
                self._proc = None

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


_SHARED: TokenWorker | None = None
_SHARED_LOCK = threading.Lock()


def shared_worker() -> TokenWorker:
    """This process's counting child, shared by every estimator in it (a test suite
    or a notebook may make many daemons and trackers; each would otherwise start its
    own child and import litellm again). It exits with this process."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None or _SHARED._pid != os.getpid():
            _SHARED = TokenWorker()
            atexit.register(_SHARED.close)
        return _SHARED


def main(argv: list[str] | None = None) -> int:
    """The child: count each batch read from stdin until it closes."""
    args = sys.argv[1:] if argv is None else argv
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # library prints go to stderr
    inp = sys.stdin.buffer
    with contextlib.suppress(OSError, ValueError):
        os.nice(int(args[0]) if args else 10)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    with contextlib.suppress(Exception):  # if it fails, estimate() answers None for each call
        import litellm  # noqa: F401  (once, before the first batch)
    from agentopt.tracking.analytics.token_estimate import estimate

    while True:
        try:
            items = _receive(inp)
        except EOFError:
            return 0
        answer: list[tuple[int, int] | None] = []
        for model, request_body, response_body in items:
            try:
                answer.append(estimate(model, request_body, response_body))
            except Exception:  # estimate() catches the counter's errors; this is the rest
                answer.append(None)
        _send(out, answer)


if __name__ == "__main__":
    raise SystemExit(main())
