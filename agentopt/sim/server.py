"""SimServer: the simulator on loopback, in a background thread.

>>> from agentopt.sim import SimServer
>>> with SimServer("default", time_scale=0.0, seed=0) as sim:   # doctest: +SKIP
...     client = openai.OpenAI(base_url=sim.openai_base_url, api_key="x")
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

from agentopt._serving import ThreadedServer
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
        self._server = ThreadedServer(
            self.app,
            host=host,
            port=port,
            name="agentopt-sim",
            error=SimulatorError,
            log_level=log_level,
            backlog=2048,
            uvloop=True,
            on_stop=self.app.close,  # wake hanging requests so shutdown is prompt
        )

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def _thread(self) -> object | None:  # kept for tests that check shutdown
        return self._server._thread

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
        if not self._server.started:
            raise SimulatorError("the SimServer is not started")
        return self._server.url

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: float = 10.0) -> SimServer:
        """Bind, start serving in a daemon thread, and return once it accepts connections."""
        self._server.start(timeout)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: wake hanging requests, close connections, join the thread."""
        self._server.stop(timeout)

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
        where = self._server.url if self._server.started else "stopped"
        return f"SimServer(world={self.world.name!r}, {where})"
