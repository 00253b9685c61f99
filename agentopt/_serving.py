"""Serve an ASGI app with uvicorn in a background thread, on loopback.

Shared by the simulated provider (:class:`agentopt.sim.SimServer`) and the
tracker's loopback gateway (:class:`agentopt.gateway.server.GatewayServer`):
bind first (``port=0`` picks a free port, known as soon as :meth:`start`
returns), serve in a daemon thread with its own event loop, stop by asking
uvicorn to exit, then forcing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal, Self

from agentopt._uvicorn_protocol import coalescing_protocol
from agentopt.exceptions import AgentOptError

__all__ = ["ThreadedServer"]


class ThreadedServer:
    """uvicorn in a daemon thread; a context manager. ``error`` is the exception
    class raised when binding or starting fails, or ``url`` is read before
    ``start()`` (each subclass names its own component)."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "agentopt-server",
        error: type[AgentOptError] = AgentOptError,
        lifespan: Literal["auto", "on", "off"] = "off",
        log_level: str = "warning",
        backlog: int = 1024,
        uvloop: bool = False,
        on_stop: Callable[[], None] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
        graceful_seconds: float = 2.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self.error = error
        self.lifespan = lifespan
        self.log_level = log_level
        self.backlog = backlog
        self.uvloop = uvloop
        self.on_stop = on_stop  # run in the server's loop when stop() begins
        self.on_close = on_close  # awaited in the server's loop after serving ends
        self.graceful_seconds = graceful_seconds  # how long stop() lets requests finish
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._failure: BaseException | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        if self._thread is None:
            raise self.error(f"{self.name} is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Self:
        """Bind, serve in a daemon thread, and return once it accepts connections."""
        if self._thread is not None:
            return self
        try:
            import uvicorn
        except ImportError as exc:  # the 'server' extra
            raise self.error(f"{self.name} needs uvicorn: pip install 'agentopt[server]'") from exc
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise self.error(f"cannot bind {self.name} to {self.host}:{self.port}: {exc}") from exc
        sock.listen(self.backlog)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=coalescing_protocol() or _best("httptools", "h11"),
            loop="none",
            lifespan=self.lifespan,
            log_config=None,  # never reconfigure the host program's logging
            log_level=self.log_level,
            access_log=False,
            timeout_graceful_shutdown=max(1, round(self.graceful_seconds)),
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def run() -> None:
            loop = _new_loop() if self.uvloop else asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                task = loop.create_task(self._server.serve(sockets=[sock]))
                loop.call_soon(_when_started, self._server, started)
                loop.run_until_complete(task)
            except BaseException as exc:  # reported by start()
                self._failure = exc
            finally:
                started.set()
                if self.on_close is not None:
                    with contextlib.suppress(Exception):
                        loop.run_until_complete(self.on_close())
                with contextlib.suppress(Exception):
                    loop.close()
                sock.close()

        self._thread = threading.Thread(target=run, name=f"{self.name}-{self.port}", daemon=True)
        self._thread.start()
        if not started.wait(timeout) or not self._server.started:
            self.stop()
            raise self.error(f"{self.name} did not start on port {self.port}: {self._failure}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if self._server is not None:
            self._server.should_exit = True
        if self.on_stop is not None and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.on_stop)
        thread.join(timeout)
        if thread.is_alive() and self._server is not None:
            self._server.force_exit = True
            thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._thread is not None else "stopped"
        return f"{type(self).__name__}({where})"


def _when_started(server: Any, started: threading.Event) -> None:
    if server.started or server.should_exit:
        started.set()
        return
    asyncio.get_running_loop().call_later(0.005, _when_started, server, started)


def _best(preferred: str, fallback: str) -> str:
    try:
        __import__(preferred)
        return preferred
    except ImportError:
        return fallback


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()
