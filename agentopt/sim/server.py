"""SimServer: the simulator on loopback, in a background thread.

>>> from agentopt.sim import SimServer
>>> with SimServer("default", time_scale=0.0, seed=0) as sim:   # doctest: +SKIP
...     client = openai.OpenAI(base_url=sim.openai_base_url, api_key="x")
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

from agentopt.exceptions import SimulatorError
from agentopt.sim.app import SimApp, create_app
from agentopt.sim.world import World

__all__ = ["SimServer"]


class SimServer:
    """Serve a world over HTTP with uvicorn (httptools + uvloop) on ``host:port``.

    ``port=0`` (the default) picks a free port; read it from ``port`` or ``url``
    once started. Use as a context manager or call ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        world: str | Path | World | dict[str, Any] = "default",
        *,
        seed: int | None = None,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.app: SimApp = create_app(world, seed=seed, time_scale=time_scale)
        self.host = host
        self.port = port
        self.log_level = log_level
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ addresses
    @property
    def world(self) -> World:
        return self.app.world

    @property
    def stats(self) -> Counter[str]:
        """Requests served so far by outcome: ``ok``, ``error_404``, ``fault_429``, …"""
        return self.app.stats

    def inject(self, model: str, fault: str | int, times: int = 1) -> None:
        """Make the next ``times`` requests to ``model`` fail with ``fault``: an HTTP
        status (429, 500, 529, …) or ``"hang"``, ``"drop"``, ``"truncate"``,
        ``"malformed"``. For tests of retries and fallbacks without a special world."""
        m = self.world.get(model)
        if m is None:
            raise SimulatorError(f"no model {model!r} in world {self.world.name!r}")
        self.app.faults.inject(m.name, str(fault), times)

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        if self._thread is None:
            raise SimulatorError("the SimServer is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: float = 10.0) -> SimServer:
        """Bind, start serving in a daemon thread, and return once it accepts connections."""
        if self._thread is not None:
            return self
        try:
            import uvicorn
        except ImportError as exc:  # the 'server' extra
            raise SimulatorError(
                "the simulator needs uvicorn: pip install 'agentopt[server]'"
            ) from exc

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise SimulatorError(
                f"cannot bind the simulator to {self.host}:{self.port}: {exc}"
            ) from exc
        sock.listen(2048)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=_best("httptools", "h11"),
            loop="none",
            lifespan="off",
            log_level=self.log_level,
            access_log=False,
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def run() -> None:
            loop = _new_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                task = loop.create_task(self._server.serve(sockets=[sock]))
                loop.call_soon(_when_started, self._server, started)
                loop.run_until_complete(task)
            except BaseException as exc:  # reported to start() / stop()
                self._error = exc
            finally:
                started.set()
                with contextlib.suppress(Exception):
                    loop.close()
                sock.close()

        self._thread = threading.Thread(target=run, name=f"agentopt-sim-{self.port}", daemon=True)
        self._thread.start()
        if not started.wait(timeout) or not self._server.started:
            self.stop()
            raise SimulatorError(f"the simulator did not start on port {self.port}: {self._error}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: wake hanging requests, close connections, join the thread."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if self._server is not None:
            self._server.should_exit = True
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.app.close)
        thread.join(timeout)
        if thread.is_alive() and self._server is not None:
            self._server.force_exit = True
            thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> SimServer:
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
        return f"SimServer(world={self.world.name!r}, {where})"


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
