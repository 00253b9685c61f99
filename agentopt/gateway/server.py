"""Run a :class:`~agentopt.gateway.app.GatewayApp` with uvicorn in a background thread.

Binds ``127.0.0.1`` on an ephemeral port (``port=0``) by default; ``url`` is
known once :meth:`GatewayServer.start` returns.
"""

from __future__ import annotations

from types import TracebackType

from agentopt._serving import ThreadedServer
from agentopt.exceptions import TrackingError
from agentopt.gateway.app import GatewayApp

__all__ = ["GatewayServer"]


class GatewayServer:
    """Serve ``app`` on loopback in a daemon thread; ``start()`` / ``stop()``."""

    def __init__(self, app: GatewayApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server = ThreadedServer(
            app,
            host=host,
            port=port,
            name="agentopt-gateway",
            error=TrackingError,
            lifespan="on",
            on_close=app.aclose,
        )

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        if not self._server.started:
            raise TrackingError("the gateway is not running")
        return self._server.url

    @property
    def running(self) -> bool:
        return self._server.running

    def start(self, timeout: float = 10.0) -> GatewayServer:
        """Bind and serve; returns once the gateway accepts connections."""
        self._server.start(timeout)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and join the thread (idempotent)."""
        self._server.stop(timeout)

    def __enter__(self) -> GatewayServer:
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
        return f"GatewayServer({where})"
