"""Run a :class:`~agentopt.gateway.app.GatewayApp` with uvicorn in a background thread.

Binds ``127.0.0.1`` on an ephemeral port (``port=0``) by default; ``url`` is
known once :meth:`GatewayServer.start` returns.
"""

from __future__ import annotations

from agentopt._serving import ThreadedServer
from agentopt.exceptions import TrackingError
from agentopt.gateway.app import GatewayApp

__all__ = ["GatewayServer"]


class GatewayServer(ThreadedServer):
    """Serve ``app`` on loopback in a daemon thread; ``start()`` / ``stop()``."""

    def __init__(self, app: GatewayApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(
            app,
            host=host,
            port=port,
            name="agentopt-gateway",
            error=TrackingError,
            lifespan="on",
            on_close=app.aclose,
        )
