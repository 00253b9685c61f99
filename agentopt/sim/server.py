"""SimServer: the simulator on loopback, in a background thread.

>>> from agentopt.sim import SimServer
>>> with SimServer("default", time_scale=0.0, seed=0) as sim:   # doctest: +SKIP
...     client = openai.OpenAI(base_url=sim.openai_base_url, api_key="x")
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentopt._serving import ThreadedServer
from agentopt.exceptions import SimulatorError
from agentopt.sim.app import SimApp, create_app
from agentopt.sim.world import World

__all__ = ["SimServer"]


class SimServer(ThreadedServer):
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
        clock: Callable[[], float] | None = None,
    ) -> None:
        app: SimApp = create_app(world, seed=seed, time_scale=time_scale, clock=clock)
        super().__init__(
            app,
            host=host,
            port=port,
            name="agentopt-sim",
            error=SimulatorError,
            log_level=log_level,
            backlog=2048,
            uvloop=True,
            on_stop=app.close,  # wake hanging requests so shutdown is prompt
        )
        self.app: SimApp = app

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
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def __repr__(self) -> str:
        where = self.url if self.started else "stopped"
        return f"SimServer(world={self.world.name!r}, {where})"
