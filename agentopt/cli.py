"""The ``agentopt`` command line: demo | sim | serve | dashboard | replay | bench | report.

Each subcommand's implementation lives with its feature and is imported only
when run, so ``agentopt --help`` stays fast. A subcommand whose implementation
is not built yet says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from agentopt import __version__
from agentopt.exceptions import AgentOptError, NotBuiltError

__all__ = ["build_parser", "main"]

# subcommand → "module:function"; the function takes the parsed args, returns an exit code.
_HANDLERS: dict[str, str] = {
    "demo": "agentopt.demo:cli_main",
    "sim": "agentopt.sim.cli:cli_main",
    "serve": "agentopt.gateway.cli:cli_main",
    "bench selectors": "agentopt.selectors.bench:cli_main",
    "bench routers": "agentopt.routers.bench:cli_main",
    "report": "agentopt.report:cli_main",
    "dashboard": "agentopt.gateway.dashboard.cli:cli_main",
    "replay": "agentopt.gateway.replay_cli:cli_main",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"agentopt: error: {message}\nRun 'agentopt --help' for the commands.\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="agentopt",
        description="Track, route and select the LLMs your agents call.",
    )
    p.add_argument("--version", action="version", version=f"agentopt {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser("demo", help="select the best planner → solver combination (offline)")
    demo.add_argument("--out", default="agentopt-demo", help="output directory")
    demo.add_argument("--live", action="store_true", help="use real providers (needs API keys)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the datapoint order")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")

    sim = sub.add_parser("sim", help="run the simulated LLM provider")
    sim.add_argument(
        "--world",
        default="default",
        help="a built-in world (see --list-worlds), replay:TABLE.csv, or a YAML/JSON file",
    )
    sim.add_argument(
        "--list-worlds",
        action="store_true",
        help="list the built-in worlds and their models, then exit",
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim.add_argument("--port", type=int, default=0, help="0 picks a free port")
    sim.add_argument("--seed", type=int, default=None, help="seed of the simulated answers")
    sim.add_argument("--time-scale", type=float, default=1.0, help="multiplies every delay")

    serve = sub.add_parser("serve", help="run the tracking/routing gateway daemon")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--config", default=None, help="a gateway YAML file")
    serve.add_argument(
        "--store",
        default="agentopt-gateway.sqlite",
        help="record store: a SQLite file (WAL), or a postgresql:// URL replicas share",
    )
    serve.add_argument(
        "--cache-dir",
        default=None,
        help="cache identical requests here (a directory, or a postgresql:// URL replicas share)",
    )
    serve.add_argument(
        "--api-key", default=None, help="require this key (default: $AGENTOPT_API_KEY)"
    )
    serve.add_argument("--openai-base-url", default=None, help="where 'openai/…' calls go")
    serve.add_argument("--anthropic-base-url", default=None, help="where 'anthropic/…' calls go")
    serve.add_argument(
        "--retention-days", type=float, default=None, help="delete records older than this"
    )
    serve.add_argument(
        "--policy-module",
        action="append",
        default=[],
        metavar="FILE",
        help="import a file of Router classes at startup (as module <file stem>, so "
        "'<stem>:Class' policies resolve); repeatable",
    )
    serve.add_argument(
        "--routing-policy",
        default=None,
        metavar="POLICY",
        help="default router of every call no alias or session router routes: a router "
        "name (random, thompson, ...) or module:Class",
    )
    serve.add_argument(
        "--candidate-models",
        default=None,
        metavar="M1,M2",
        help="comma-separated models the --routing-policy picks from",
    )
    serve.add_argument("--seed", type=int, default=None, help="seed of the --routing-policy")
    serve.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="on SIGTERM/SIGINT, how long calls in flight may finish",
    )

    bench = sub.add_parser("bench", help="offline benchmarks on recorded tables")
    bsub = bench.add_subparsers(dest="bench_command", metavar="WHAT", parser_class=_Parser)
    bs = bsub.add_parser("selectors", help="compare selection methods on replay tables")
    bs.add_argument("--data", action="append", required=True, help="a long-format CSV (repeatable)")
    bs.add_argument(
        "--methods",
        default="auto,brute_force,agentopt_arm_elimination",
        help="comma-separated selection methods, or 'all'",
    )
    bs.add_argument("--seeds", type=int, default=50, help="datapoint orders per table")
    bs.add_argument(
        "--missing",
        choices=["skip", "zero"],
        default="skip",
        help="missing cells: skip them (default) or score 0",
    )
    bs.add_argument(
        "--epsilon", type=float, default=0.01, help="a pick within this of the best is ε-good"
    )
    bs.add_argument(
        "--base-seed",
        type=int,
        default=42,
        help="seed of the first shuffle; seed k is the k-th of the published harness's shuffles",
    )
    budget = bs.add_mutually_exclusive_group()
    budget.add_argument(
        "--budget-usd",
        type=float,
        default=None,
        help="every method may spend at most this many dollars per seed",
    )
    budget.add_argument(
        "--budget-of",
        default=None,
        metavar="METHOD",
        help="give every method METHOD's mean dollar spend on the same table and seeds",
    )
    bs.add_argument("--json", dest="json_out", default=None, help="write results JSON here")
    br = bsub.add_parser("routers", help="compare routers on replay tables")
    br.add_argument(
        "--data",
        action="append",
        required=True,
        help="a long-format CSV, or sim:mcq / sim:arithmetic (repeatable)",
    )
    br.add_argument(
        "--routers",
        default="random,thompson,ucb,epsilon_greedy,cost_aware",
        help="comma-separated routers, or 'all'",
    )
    br.add_argument("--seeds", type=int, default=20, help="independent runs per table")
    br.add_argument(
        "--horizon", type=int, default=None, help="routed datapoints per run (default: the table's)"
    )
    br.add_argument("--lambda-cost", type=float, default=0.0, help="objective: score − λ·cost")
    br.add_argument(
        "--mix",
        action="store_true",
        help="interleave every --data table into one stream (shuffled per seed)",
    )
    br.add_argument(
        "--cost-weight",
        type=float,
        default=None,
        help="$ per point of score: objective score − cost / X, passed to routers that take it",
    )
    br.add_argument(
        "--quality-floor",
        type=float,
        default=None,
        help="e.g. 0.95: passed to routers that take it (cheapest within 95%% of the best)",
    )
    br.add_argument(
        "--floor-confidence",
        type=float,
        default=None,
        help="z: hold the quality floor with the lower bound mean − z·sd (routers that take it)",
    )
    br.add_argument("--plot", default=None, metavar="DIR", help="write PNG plots here")
    br.add_argument(
        "--missing",
        choices=["resample", "zero"],
        default="resample",
        help="missing cells: resample the arm's present cells (default) or score 0",
    )
    br.add_argument("--json", dest="json_out", default=None, help="write results JSON here")

    dash = sub.add_parser("dashboard", help="browse a record store in the browser (no daemon)")
    dash.add_argument(
        "--store",
        required=True,
        help="a SQLite record store or a postgresql:// URL (the daemon's --store)",
    )
    dash.add_argument(
        "--selections",
        action="append",
        default=[],
        metavar="PATH",
        help="a selection's observation store (ModelSelector(store=...)); repeatable",
    )
    dash.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback by default)")
    dash.add_argument("--port", type=int, default=8766, help="port (0 picks a free one)")
    dash.add_argument("--api-key", default=None, help="require this key (needed off loopback)")

    rp = sub.add_parser("replay", help="send a wire capture again, or serve it as a world")
    rp.add_argument("capture", help="a capture file or folder (capture-*.jsonl)")
    rp.add_argument("--against", default=None, help="base URL to send the requests to")
    rp.add_argument(
        "--speed", default="1.0", help="1.0 keeps the captured spacing, 2.0 twice as fast, 'max'"
    )
    rp.add_argument("--api-key", default=None, help="send this key instead of the captured one")
    rp.add_argument("--json", dest="json_out", default=None, help="write the comparison here")
    rp.add_argument("--fail-on-diff", action="store_true", help="exit 1 when any response differs")
    rp.add_argument(
        "--world", action="store_true", help="serve the capture: answer each request as recorded"
    )
    rp.add_argument("--host", default="127.0.0.1", help="with --world: interface to bind")
    rp.add_argument("--port", type=int, default=0, help="with --world: port (0 picks one)")
    rp.add_argument(
        "--time-scale", type=float, default=1.0, help="with --world: multiplies captured timings"
    )

    report = sub.add_parser("report", help="summarise recorded calls or observations")
    report.add_argument("path", help="a records JSONL/SQLite file or a selection store")
    report.add_argument(
        "--stats",
        nargs="?",
        const="model",
        default=None,
        metavar="GROUP_BY",
        help="also print usage statistics grouped by these keys (default: model; e.g. model,day)",
    )
    return p


def _resolve(target: str) -> Callable[[argparse.Namespace], int]:
    module, func = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module or module.startswith(exc.name + ".")):
            raise NotBuiltError("not built yet") from exc
        raise
    fn: Callable[[argparse.Namespace], int] = getattr(mod, func)
    return fn


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    key = args.command
    if key == "bench":
        if args.bench_command is None:
            parser.parse_args(["bench", "--help"])
        key = f"bench {args.bench_command}"
    try:
        handler = _resolve(_HANDLERS[key])
    except NotBuiltError:
        print(f"agentopt {key}: not built yet.", file=sys.stderr)
        return 2
    try:
        return int(handler(args) or 0)
    except AgentOptError as exc:
        print(f"agentopt {key}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"agentopt {key}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
