"""``agentopt serve``: run the gateway daemon until SIGINT or SIGTERM.

Prints ``agentopt gateway listening on http://HOST:PORT`` once it accepts
connections; on a signal it stops accepting, lets calls in flight finish (up to
``--drain-seconds``), records them, saves router state and flushes every record.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from agentopt.exceptions import ConfigError
from agentopt.gateway.policies import default_policy, load_policy_module

__all__ = ["cli_main"]

API_KEY_ENV = "AGENTOPT_API_KEY"


def cli_main(args: argparse.Namespace) -> int:
    from agentopt.gateway.config import load_config
    from agentopt.gateway.daemon import Daemon
    from agentopt.gateway.service import DaemonServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("httpx", "httpcore", "LiteLLM"):  # one line per request, URLs included
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = load_config(args.config)
    if args.retention_days is not None:
        config = config.model_copy(update={"retention_days": args.retention_days})
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    if args.port < 0 or args.port > 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    for path in getattr(args, "policy_module", None) or ():
        load_policy_module(path)
    default_router = default_policy(
        getattr(args, "routing_policy", None),
        getattr(args, "candidate_models", None),
        getattr(args, "seed", None),
    )
    daemon = Daemon(
        config,
        store=args.store,
        cache_dir=args.cache_dir,
        api_key=api_key,
        openai_base_url=args.openai_base_url,
        anthropic_base_url=args.anthropic_base_url,
        default_router=default_router,
    )
    try:
        server = DaemonServer(
            daemon, host=args.host, port=args.port, drain_seconds=args.drain_seconds
        )
        server.start()
    except BaseException:
        daemon.close()
        raise
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    print(f"agentopt gateway listening on {server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            if not server.running:
                print("agentopt serve: the server stopped unexpectedly", file=sys.stderr)
                return 1
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        logging.getLogger("agentopt.gateway").info(
            "stopping: draining calls in flight, flushing records"
        )
        server.stop()
    print(
        f"agentopt gateway stopped; {daemon.records_at_close} records in {args.store}", flush=True
    )
    return 0
