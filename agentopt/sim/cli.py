"""``agentopt sim``: serve a world on HTTP until interrupted."""

from __future__ import annotations

import argparse
import socket
import sys

from agentopt.exceptions import SimulatorError
from agentopt.sim.app import create_app

__all__ = ["cli_main"]


def list_worlds() -> str:
    """The built-in worlds, one paragraph each: name, description, models."""
    from agentopt.sim.world import builtin_worlds, load_world

    lines = []
    for name in builtin_worlds():
        if name.startswith("replay:"):
            lines.append(f"{name}\n  answers exactly as recorded in a long-format table")
            continue
        w = load_world(name)
        lines.append(f"{name}\n  {w.description}\n  models: {', '.join(w.names)}")
    return "\n".join(lines)


def cli_main(args: argparse.Namespace) -> int:
    """Print the base URLs and serve ``args.world`` in the foreground
    (or, with ``--list-worlds``, list the built-in worlds and exit)."""
    if getattr(args, "list_worlds", False):
        print(list_worlds())
        return 0
    try:
        import uvicorn
    except ImportError as exc:  # the 'server' extra
        raise SimulatorError("the simulator needs uvicorn: pip install 'agentopt[server]'") from exc

    app = create_app(args.world, seed=args.seed, time_scale=args.time_scale)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        raise SimulatorError(f"cannot bind to {args.host}:{args.port}: {exc}") from exc
    sock.listen(2048)  # connections queue from now on, so the printed URL is usable at once
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{port}"
    w = app.world
    print(f"agentopt sim: world {w.name!r} ({len(w.models)} models), time scale {app.time_scale:g}")
    print(f"  models:    {', '.join(w.names)}")
    print(f"  OpenAI:    OPENAI_BASE_URL={url}/v1")
    print(f"  Anthropic: ANTHROPIC_BASE_URL={url}")
    print(url, flush=True)
    config = uvicorn.Config(
        app,
        loop="auto",
        http="auto",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled; that is our normal exit
        pass
    finally:
        sock.close()
    print("agentopt sim: stopped", file=sys.stderr)
    return 0
