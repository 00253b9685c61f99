"""``agentopt replay CAPTURE``: send a capture again, or serve it as a world."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agentopt.exceptions import ConfigError
from agentopt.gateway.capture import read_capture
from agentopt.gateway.replay import CaptureWorldServer, ReplayResult, replay_capture, summarise

__all__ = ["cli_main"]


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(
            f"--speed {text!r}: expected a number (1.0 = as captured) or 'max'"
        ) from exc
    if value <= 0:
        raise ConfigError(f"--speed {text!r}: expected a positive number or 'max'")
    return value


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _table(results: list[ReplayResult]) -> Table:
    t = Table(title="replay: captured → replayed", title_justify="left")
    for col in ("request", "status", "model", "tokens in/out", "cost $", "latency s", "differs"):
        t.add_column(col, overflow="fold")
    for r in results:
        c, p = r.captured, r.replayed

        def pair(a: object, b: object) -> str:
            return _fmt(a) if a == b else f"{_fmt(a)} → {_fmt(b)}"

        t.add_row(
            f"{r.method} {r.target}",
            pair(c.status, p.status),
            pair(c.model, p.model),
            pair(
                f"{_fmt(c.prompt_tokens)}/{_fmt(c.completion_tokens)}",
                f"{_fmt(p.prompt_tokens)}/{_fmt(p.completion_tokens)}",
            ),
            pair(c.cost_usd, p.cost_usd),
            f"{_fmt(c.latency_seconds)} → {_fmt(p.latency_seconds)}",
            ", ".join(r.differences) or ("identical" if r.identical else "same"),
        )
    return t


def cli_main(args: argparse.Namespace) -> int:
    console = Console()
    if args.world:
        server = CaptureWorldServer(
            args.capture, time_scale=args.time_scale, host=args.host, port=args.port
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        with server:
            print(server.url, flush=True)
            stop.wait()
        return 0
    if not args.against:
        raise ConfigError("give --against URL (where to send the requests) or --world")
    exchanges = list(read_capture(args.capture))
    results = asyncio.run(
        replay_capture(exchanges, args.against, speed=_speed(args.speed), api_key=args.api_key)
    )
    console.print(_table(results))
    summary = summarise(results)
    console.print(
        f"{summary['requests']} requests: {summary['identical']} byte-identical,"
        f" {summary['same_body']} same body (ids and clocks masked),"
        f" {summary['with_differences']} with differences {summary['differences'] or ''}"
    )
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps({"summary": summary, "results": [r.to_json() for r in results]}, indent=2)
        )
    return 1 if summary["with_differences"] and args.fail_on_diff else 0
