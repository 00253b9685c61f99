"""Run a :class:`~agentopt.gateway.app.GatewayApp` with uvicorn in a background thread.

Binds ``127.0.0.1`` on an ephemeral port (``port=0``) by default; ``url`` is
known once :meth:`GatewayServer.start` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from types import TracebackType
from typing import Any

from agentopt.exceptions import TrackingError
from agentopt.gateway.app import GatewayApp

__all__ = ["GatewayServer"]


class GatewayServer:
    """Serve ``app`` on loopback in a daemon thread; ``start()`` / ``stop()``."""

    def __init__(self, app: GatewayApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        if self._thread is None:
            raise TrackingError("the gateway is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> GatewayServer:
        """Bind and serve; returns once the gateway accepts connections."""
        if self._thread is not None:
            return self
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise TrackingError(
                f"cannot bind the gateway to {self.host}:{self.port}: {exc}"
            ) from exc
        sock.listen(1024)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=_best("httptools", "h11"),
            loop="none",
            lifespan="on",
            log_config=None,  # never reconfigure the host program's logging
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                task = loop.create_task(self._server.serve(sockets=[sock]))
                loop.call_soon(_when_started, self._server, started)
                loop.run_until_complete(task)
            except BaseException as exc:  # reported by start()
                self._error = exc
            finally:
                started.set()
                with contextlib.suppress(Exception):
                    loop.run_until_complete(self.app.aclose())
                with contextlib.suppress(Exception):
                    loop.close()
                sock.close()

        self._thread = threading.Thread(
            target=run, name=f"agentopt-gateway-{self.port}", daemon=True
        )
        self._thread.start()
        if not started.wait(timeout) or not self._server.started:
            self.stop()
            raise TrackingError(f"the gateway did not start on port {self.port}: {self._error}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and join the thread (idempotent)."""
        thread = self._thread
        if thread is None:
            return
        if self._server is not None:
            self._server.should_exit = True
        thread.join(timeout)
        if thread.is_alive() and self._server is not None:
            self._server.force_exit = True
            thread.join(timeout)
        self._thread = None
        self._loop = None

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
        where = self.url if self._thread is not None else "stopped"
        return f"GatewayServer({where})"


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
