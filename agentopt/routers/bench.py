"""Replay benchmark of routers on recorded tables (``agentopt bench routers``).

For each table, router and seed: draw a stream of ``horizon`` datapoints (by
default the table's datapoints once each, shuffled; a shorter horizon takes the
first ones of that shuffle; a longer one samples with replacement). At each
step the router picks an arm (a combination) for the datapoint, through the
same calls the tracker makes (one ``route`` per node, sharing a ``data_id``),
receives the recorded score and cost, and is updated.

Regret is the summed objective (``score − λ·cost``) of the best fixed arm in
hindsight on that stream minus the router's, averaged over seeds.

Missing cells (runs that failed and were not scored): with ``missing="resample"``
(the default) each seed fills a missing cell of an arm with that arm's outcome
on a datapoint drawn at random from its present cells, so every arm keeps its
recorded mean in expectation and the router and the hindsight arm see the same
filled table; ``missing="zero"`` scores a missing cell 0 (a failure costs the
whole datapoint) at cost 0. Arms with no present cell are dropped. A present
cell with no recorded cost costs 0 (the table says nothing about it).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.replay import ReplayTable
from agentopt.routers.base import Router
from agentopt.routers.context import Feedback, PromptFeatures, RouteContext
from agentopt.routers.registry import available_routers, router_class

__all__ = ["cli_main", "run_router_benchmark"]

DEFAULT_ROUTERS = ("random", "thompson", "ucb", "epsilon_greedy", "cost_aware")


@dataclass
class _Prepared:
    table: ReplayTable
    arms: np.ndarray  # table arm indices kept
    candidates: Any
    nodes: list[str] | None
    labels: list[str]
    feats: list[PromptFeatures]
    best_label: str


def _prepare(table: ReplayTable, lambda_cost: float) -> _Prepared:
    keep = np.flatnonzero(table.present.any(axis=1))
    if keep.size == 0:
        raise ConfigError(f"{table.name}: no present cell to replay")
    sub = table.subset(keep.tolist()) if keep.size < table.n_arms else table
    nodes = sub.nodes if len(sub.nodes) > 1 else None
    candidates: Any = [c[sub.nodes[0]] for c in sub.combos] if nodes is None else sub.combos
    prompts = sub.prompts or {}
    feats = [
        PromptFeatures.from_text(prompts[dp]) if dp in prompts else PromptFeatures()
        for dp in sub.datapoints
    ]
    with np.errstate(invalid="ignore"):
        cost = np.where(sub.present, np.nan_to_num(sub.cost_usd, nan=0.0), np.nan)
        obj = np.nanmean(np.where(sub.present, sub.score - lambda_cost * cost, np.nan), axis=1)
    return _Prepared(
        table=sub,
        arms=keep,
        candidates=candidates,
        nodes=nodes,
        labels=list(sub.labels),
        feats=feats,
        best_label=sub.labels[int(np.nanargmax(obj))],
    )


def _filled(
    table: ReplayTable, rng: np.random.Generator, missing: str
) -> tuple[np.ndarray, np.ndarray]:
    score = table.score.copy()
    cost = np.nan_to_num(table.cost_usd, nan=0.0)
    absent = ~table.present
    if not absent.any():
        return score, cost
    if missing == "zero":
        score[absent] = 0.0
        cost[absent] = 0.0
        return score, cost
    for a in np.flatnonzero(absent.any(axis=1)):
        miss = np.flatnonzero(absent[a])
        donors = rng.choice(np.flatnonzero(table.present[a]), size=miss.size)
        score[a, miss] = score[a, donors]
        cost[a, miss] = cost[a, donors]
    return score, cost


def _make_router(name: str, candidates: Any, seed: int, lambda_cost: float) -> Router:
    cls = router_class(name)
    kw: dict[str, Any] = {"candidates": candidates, "seed": seed, "history": 0}
    params = inspect.signature(cls.__init__).parameters
    if "lambda_cost" in params:
        kw["lambda_cost"] = lambda_cost
    return cls(**kw)


def _run_one(
    prep: _Prepared,
    name: str,
    seed: int,
    horizon: int | None,
    lambda_cost: float,
    missing: str,
) -> dict[str, float]:
    table = prep.table
    n_dp = table.n_datapoints
    stream_rng, fill_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    h = n_dp if horizon is None else horizon
    stream = stream_rng.permutation(n_dp)[:h] if h <= n_dp else stream_rng.integers(n_dp, size=h)
    score, cost = _filled(table, fill_rng, missing)
    obj = score - lambda_cost * cost
    router = _make_router(name, prep.candidates, seed, lambda_cost)
    nodes = prep.nodes
    # router arm label (a model for one-node tables, else the combo label) → table arm
    index = {
        (label if nodes is not None else table.combos[i][table.nodes[0]]): i
        for i, label in enumerate(prep.labels)
    }
    picks = np.empty(h, dtype=np.intp)
    total_score = total_cost = total_obj = 0.0
    t0 = time.perf_counter()
    for t, d in enumerate(stream):
        did = str(t)
        feat = prep.feats[d]
        if nodes is None:
            m = router.route(RouteContext(requested_model=None, data_id=did, features=feat))
            if m is None:
                raise ConfigError(f"router {name!r} kept the caller's model during replay")
            a = index[m]
            models: tuple[str, ...] = (m,)
            combo: dict[str, str] | None = None
        else:
            combo = {}
            for k, node in enumerate(nodes):
                ctx = RouteContext(
                    requested_model=None, data_id=did, agent_id=node, call_index=k, features=feat
                )
                m = router.route(ctx)
                if m is None:
                    raise ConfigError(f"router {name!r} kept the caller's model during replay")
                combo[node] = m
            a = index[" + ".join(f"{n}={combo[n]}" for n in nodes)]
            models = tuple(combo.values())
        r, c = float(score[a, d]), float(cost[a, d])
        total_score += r
        total_cost += c
        total_obj += float(obj[a, d])
        picks[t] = a
        router.update(
            Feedback(reward=r, models=models, combo=combo, cost_usd=c, data_id=did, features=feat)
        )
    elapsed = time.perf_counter() - t0
    best_total = float(obj[:, stream].sum(axis=1).max())
    tail = picks[-max(1, h // 10) :]
    return {
        "reward": total_score / h,
        "cost": total_cost / h,
        "regret": best_total - total_obj,
        "share": float(np.mean(tail == prep.labels.index(prep.best_label))),
        "us": elapsed / h * 1e6,
    }


def run_router_benchmark(
    data: Sequence[str | Path | ReplayTable],
    routers: Sequence[str] | str = DEFAULT_ROUTERS,
    *,
    seeds: int = 20,
    horizon: int | None = None,
    lambda_cost: float = 0.0,
    missing: Literal["resample", "zero"] = "resample",
) -> list[dict[str, Any]]:
    """One result per (table, router): the fields of the ``--json`` contract
    (``data``, ``router``, ``seeds``, ``horizon``, ``mean_reward``,
    ``mean_cost_usd``, ``regret_vs_best_fixed``, ``best_fixed_arm``,
    ``final_share_best_arm``) plus ``regret_sd``, ``us_per_decision``,
    ``n_arms``, ``lambda_cost`` and ``missing``. ``final_share_best_arm`` is the
    share of the last 10 % of steps spent on the arm with the best mean
    objective over the table's present cells (``best_fixed_arm``)."""
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    if horizon is not None and horizon < 1:
        raise ConfigError(f"horizon must be >= 1, got {horizon}")
    if missing not in ("resample", "zero"):
        raise ConfigError(f"missing must be 'resample' or 'zero', not {missing!r}")
    names = parse_router_names(routers)
    tables = [d if isinstance(d, ReplayTable) else ReplayTable.from_csv(d) for d in data]
    results: list[dict[str, Any]] = []
    for table in tables:
        prep = _prepare(table, lambda_cost)
        for name in names:
            runs = [_run_one(prep, name, s, horizon, lambda_cost, missing) for s in range(seeds)]
            regrets = np.array([r["regret"] for r in runs])
            results.append(
                {
                    "data": table.name,
                    "router": name,
                    "seeds": seeds,
                    "horizon": horizon if horizon is not None else table.n_datapoints,
                    "mean_reward": float(np.mean([r["reward"] for r in runs])),
                    "mean_cost_usd": float(np.mean([r["cost"] for r in runs])),
                    "regret_vs_best_fixed": float(regrets.mean()),
                    "best_fixed_arm": prep.best_label,
                    "final_share_best_arm": float(np.mean([r["share"] for r in runs])),
                    "regret_sd": float(regrets.std(ddof=1)) if seeds > 1 else 0.0,
                    "us_per_decision": float(np.median([r["us"] for r in runs])),
                    "n_arms": len(prep.labels),
                    "lambda_cost": lambda_cost,
                    "missing": missing,
                }
            )
    return results


def parse_router_names(routers: Sequence[str] | str) -> list[str]:
    """``"all"`` → every registered router; a comma list or a sequence of names."""
    items = routers.split(",") if isinstance(routers, str) else list(routers)
    names: list[str] = []
    for item in (s.strip() for s in items):
        if not item:
            continue
        if item.lower() == "all":
            names.extend(available_routers())
        else:
            names.append(router_class(item).name)
    if not names:
        raise ConfigError("no router named")
    return list(dict.fromkeys(names))


def print_results(results: Sequence[dict[str, Any]]) -> None:
    """A rich table; regret is also shown as a share of RandomRouter's when present."""
    from rich.console import Console
    from rich.table import Table

    rand = {r["data"]: r["regret_vs_best_fixed"] for r in results if r["router"] == "random"}
    tab = Table(title="router replay benchmark (regret vs the best fixed arm in hindsight)")
    for col in (
        "data",
        "router",
        "arms",
        "mean reward",
        "mean cost $",
        "regret",
        "÷ random",
        "final share best",
        "µs/decision",
    ):
        tab.add_column(col, justify="left" if col in ("data", "router") else "right")
    for r in results:
        base = rand.get(r["data"])
        ratio = f"{r['regret_vs_best_fixed'] / base:.0%}" if base else "-"
        tab.add_row(
            r["data"],
            r["router"],
            str(r["n_arms"]),
            f"{r['mean_reward']:.3f}",
            f"{r['mean_cost_usd']:.5f}",
            f"{r['regret_vs_best_fixed']:.1f} ± {r['regret_sd']:.1f}",
            ratio,
            f"{r['final_share_best_arm']:.0%}",
            f"{r['us_per_decision']:.0f}",
        )
    Console(width=None if sys.stdout.isatty() else 150).print(tab)


def cli_main(args: argparse.Namespace) -> int:
    """``agentopt bench routers``."""
    results = run_router_benchmark(
        args.data,
        args.routers,
        seeds=args.seeds,
        horizon=args.horizon,
        lambda_cost=args.lambda_cost,
        missing=getattr(args, "missing", "resample"),
    )
    print_results(results)
    if args.json_out:
        out = Path(args.json_out)
        out.write_text(json.dumps({"results": results}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    return 0
