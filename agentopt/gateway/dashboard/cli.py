"""``agentopt dashboard --store PATH|URL``: the dashboard over a SQLite file or a
PostgreSQL database (``postgresql://…``), without a daemon."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from agentopt._serving import ThreadedServer
from agentopt.exceptions import ConfigError
from agentopt.gateway.dashboard.app import create_dashboard_app

__all__ = ["DashboardServer", "cli_main"]


class DashboardServer(ThreadedServer):
    """The dashboard app in a background uvicorn thread (tests and the CLI)."""

    def __init__(
        self,
        store: str | Path,
        *,
        selections: list[str | Path] | None = None,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        app = create_dashboard_app(store, selections=selections or (), api_key=api_key)
        super().__init__(app, host=host, port=port, name="agentopt-dashboard", error=ConfigError)

    @property
    def dashboard_url(self) -> str:
        return self.url + "/dashboard"


def cli_main(args: argparse.Namespace) -> int:
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        raise ConfigError(
            f"refusing to serve the dashboard on {args.host} without --api-key:"
            " anyone who can reach it would read your calls"
        )
    server = DashboardServer(
        args.store,
        selections=list(args.selections or []),
        api_key=args.api_key,
        host=args.host,
        port=args.port,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with server:
        print(server.dashboard_url, flush=True)
        stop.wait()
    return 0
