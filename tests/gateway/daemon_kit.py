"""Helpers for the daemon tests: a daemon in this process or as ``agentopt serve``
in a child process, in front of the simulator or a canned upstream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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


class ServeProcess:
    """``agentopt serve --port 0 ARGS`` in a child process, with the planted keys;
    ``url`` once it listens."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentopt.cli", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **PLANTED, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            out, err = self.proc.communicate(timeout=30)
            raise AssertionError(f"daemon did not start: {line}{out}\n{err}")
        self.url = line.rsplit(" ", 1)[1].strip()

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM; the exit code, stdout and stderr."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


def sim_args(sim: SimServer) -> list[str]:
    """``agentopt serve`` flags that send official-provider calls to the simulator."""
    return [
        "--openai-base-url",
        sim.openai_base_url,
        "--anthropic-base-url",
        sim.anthropic_base_url,
    ]


#: The one chat completion a :class:`CannedUpstream` answers.
CANNED_COMPLETION = {
    "id": "x",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


class CannedUpstream:
    """An OpenAI-compatible ASGI upstream that answers every request with
    :data:`CANNED_COMPLETION`, after :meth:`before_answer` (a hook for subclasses)."""

    async def before_answer(self, scope: Any) -> None:
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await self.before_answer(scope)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(CANNED_COMPLETION).encode()})
