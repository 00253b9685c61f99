"""Helpers for the daemon tests: a daemon in this process, in front of the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentopt.gateway.config import GatewayConfig
from agentopt.gateway.daemon import Daemon
from agentopt.gateway.service import DaemonServer
from agentopt.sim import SimServer

#: Keys planted in the engine's environment: they must never leak anywhere.
PLANTED = {
    "OPENAI_API_KEY": "sk-planted-openai-5f1c0ffee0ddba11",
    "ANTHROPIC_API_KEY": "sk-ant-planted-9d8c7b6a5f4e3d2c",
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ANTHROPIC_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
}


def make_daemon(sim: SimServer, config: GatewayConfig | None = None, **kw: Any) -> Daemon:
    kw.setdefault("environ", dict(PLANTED))
    return Daemon(
        config,
        openai_base_url=sim.openai_base_url,
        anthropic_base_url=sim.anthropic_base_url,
        **kw,
    )


@contextmanager
def serving(
    sim: SimServer, config: GatewayConfig | None = None, **kw: Any
) -> Iterator[tuple[Daemon, DaemonServer]]:
    host = kw.pop("host", "127.0.0.1")
    daemon = make_daemon(sim, config, **kw)
    server = DaemonServer(daemon, host=host, drain_seconds=5)
    server.start()
    try:
        yield daemon, server
    finally:
        server.stop()


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]
