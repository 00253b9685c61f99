"""Replay benchmark of routers on recorded tables (``agentopt bench routers``).

For each table, router and seed: draw a stream of ``horizon`` datapoints (by
default the table's datapoints once each, shuffled; a shorter horizon takes the
first ones of that shuffle; a longer one samples with replacement). At each
step the router picks an arm (a combination) for the datapoint, through the
same calls the tracker makes (one ``route`` per node, sharing a ``data_id``),
receives the recorded score and cost, and is updated.

Regret is the summed objective (``score − λ·cost``) of the best fixed arm in
hindsight on that stream minus the router's, averaged over seeds.

``mix=True`` interleaves every table into one stream (:func:`mix_tables`: the
arms they share, each datapoint with its own prompt), shuffled per seed.
``cost_weight`` (dollars per point of score; the regret objective becomes
``score − cost / cost_weight``), ``quality_floor`` and ``floor_confidence`` are passed to the routers
that take them. Routers that take ``prices`` are told each arm's price as a
flat $ per call: its mean recorded cost over the stream (what a price map ×
a token estimate gives before the call); none is told a datapoint's outcome.

Quality against cost: ``mean_score`` / ``mean_cost_usd`` are the router's
means per datapoint, ``best_single_score`` / ``best_single_cost_usd`` those of
the arm with the highest mean score over the stream, and the ``tail_``
variants the same four over the last third of the stream (the arm of
``tail_best_single_*`` is the best over that third), so "quality as a share of
the best single model" is ``tail_mean_score / tail_best_single_score``.

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

__all__ = ["cli_main", "load_tables", "run_router_benchmark"]

DEFAULT_ROUTERS = ("random", "thompson", "ucb", "epsilon_greedy", "cost_aware")


@dataclass
class _Prepared:
    table: ReplayTable
    arms: np.ndarray  # table arm indices kept
    candidates: Any
    nodes: list[str] | None
    labels: list[str]
    feats: list[PromptFeatures]
    prompts: list[str | None]
    best_label: str
    prices: dict[str, float]  # router arm label → mean recorded cost per datapoint


def _prepare(table: ReplayTable, lambda_cost: float) -> _Prepared:
    keep = np.flatnonzero(table.present.any(axis=1))
    if keep.size == 0:
        raise ConfigError(f"{table.name}: no present cell to replay")
    sub = table.subset(keep.tolist()) if keep.size < table.n_arms else table
    nodes = sub.nodes if len(sub.nodes) > 1 else None
    candidates: Any = [c[sub.nodes[0]] for c in sub.combos] if nodes is None else sub.combos
    prompts_of = sub.prompts or {}
    prompts = [prompts_of.get(dp) for dp in sub.datapoints]
    feats = [PromptFeatures.from_text(p) if p is not None else PromptFeatures() for p in prompts]
    with np.errstate(invalid="ignore"):
        cost = np.where(sub.present, np.nan_to_num(sub.cost_usd, nan=0.0), np.nan)
        obj = np.nanmean(np.where(sub.present, sub.score - lambda_cost * cost, np.nan), axis=1)
        mean_cost = np.nan_to_num(np.nanmean(cost, axis=1), nan=0.0)
    arm_names = list(candidates) if nodes is None else list(sub.labels)
    return _Prepared(
        table=sub,
        arms=keep,
        candidates=candidates,
        nodes=nodes,
        labels=list(sub.labels),
        feats=feats,
        prompts=prompts,
        best_label=sub.labels[int(np.nanargmax(obj))],
        prices={a: float(c) for a, c in zip(arm_names, mean_cost, strict=True)},
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


def _make_router(
    name: str, prep: _Prepared, seed: int, lambda_cost: float, objective: dict[str, float | None]
) -> Router:
    cls = router_class(name)
    kw: dict[str, Any] = {"candidates": prep.candidates, "seed": seed, "history": 0}
    params = inspect.signature(cls.__init__).parameters
    if "lambda_cost" in params:
        kw["lambda_cost"] = lambda_cost
    for key, value in objective.items():
        if value is not None and key in params:
            kw[key] = value
    if "prices" in params:
        kw["prices"] = prep.prices
    return cls(**kw)


def _run_one(
    prep: _Prepared,
    name: str,
    seed: int,
    horizon: int | None,
    lambda_cost: float,
    missing: str,
    objective: dict[str, float | None],
) -> dict[str, Any]:
    table = prep.table
    n_dp = table.n_datapoints
    stream_rng, fill_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    h = n_dp if horizon is None else horizon
    stream = stream_rng.permutation(n_dp)[:h] if h <= n_dp else stream_rng.integers(n_dp, size=h)
    score, cost = _filled(table, fill_rng, missing)
    obj = score - lambda_cost * cost
    router = _make_router(name, prep, seed, lambda_cost, objective)
    nodes = prep.nodes
    # router arm label (a model for one-node tables, else the combo label) → table arm
    index = {
        (label if nodes is not None else table.combos[i][table.nodes[0]]): i
        for i, label in enumerate(prep.labels)
    }
    picks = np.empty(h, dtype=np.intp)
    t0 = time.perf_counter()
    for t, d in enumerate(stream):
        did = str(t)
        feat, prompt = prep.feats[d], prep.prompts[d]
        if nodes is None:
            ctx = RouteContext(requested_model=None, data_id=did, features=feat, prompt=prompt)
            m = router.route(ctx)
            if m is None:
                raise ConfigError(f"router {name!r} kept the caller's model during replay")
            a = index[m]
            models: tuple[str, ...] = (m,)
            combo: dict[str, str] | None = None
        else:
            combo = {}
            for k, node in enumerate(nodes):
                ctx = RouteContext(
                    requested_model=None,
                    data_id=did,
                    agent_id=node,
                    call_index=k,
                    features=feat,
                    prompt=prompt,
                )
                m = router.route(ctx)
                if m is None:
                    raise ConfigError(f"router {name!r} kept the caller's model during replay")
                combo[node] = m
            a = index[" + ".join(f"{n}={combo[n]}" for n in nodes)]
            models = tuple(combo.values())
        picks[t] = a
        router.update(
            Feedback(
                reward=float(score[a, d]),
                models=models,
                combo=combo,
                cost_usd=float(cost[a, d]),
                data_id=did,
                features=feat,
            )
        )
    elapsed = time.perf_counter() - t0
    s_got, c_got, o_got = score[picks, stream], cost[picks, stream], obj[picks, stream]
    best_arm = int(np.argmax(obj[:, stream].sum(axis=1)))
    regret_curve = np.cumsum(obj[best_arm, stream] - o_got)
    with np.errstate(invalid="ignore", divide="ignore"):
        cost_share = np.cumsum(c_got) / np.cumsum(cost[best_arm, stream])
    t_tail = (2 * h) // 3
    out: dict[str, Any] = {
        "reward": float(s_got.mean()),
        "cost": float(c_got.mean()),
        "regret": float(regret_curve[-1]),
        "share": float(np.mean(picks[-max(1, h // 10) :] == prep.labels.index(prep.best_label))),
        "us": elapsed / h * 1e6,
        "curve": regret_curve,
        "cost_curve": cost_share,
    }
    for prefix, part in (("", stream), ("tail_", stream[t_tail:])):
        arm_scores = score[:, part].mean(axis=1)
        best = int(np.argmax(arm_scores))
        got = slice(None) if not prefix else slice(t_tail, None)
        out[prefix + "mean_score"] = float(s_got[got].mean())
        out[prefix + "mean_cost_usd"] = float(c_got[got].mean())
        out[prefix + "best_single_score"] = float(arm_scores[best])
        out[prefix + "best_single_cost_usd"] = float(cost[best, part].mean())
    out["arm_score"] = score[:, stream].mean(axis=1)
    out["arm_cost"] = cost[:, stream].mean(axis=1)
    return out


_AVERAGED = (
    "mean_score",
    "mean_cost_usd",
    "best_single_score",
    "best_single_cost_usd",
    "tail_mean_score",
    "tail_mean_cost_usd",
    "tail_best_single_score",
    "tail_best_single_cost_usd",
)


def load_tables(
    data: Sequence[str | Path | ReplayTable], *, mix: bool = False
) -> list[ReplayTable]:
    """Tables from paths (or ``sim:<family>`` for a simulated table, see
    :func:`~agentopt.routers.streams.sim_table`), mixed into one if ``mix``."""
    from agentopt.routers.streams import mix_tables, sim_table

    tables: list[ReplayTable] = []
    for d in data:
        if isinstance(d, ReplayTable):
            tables.append(d)
        elif isinstance(d, str) and d.startswith("sim:"):
            tables.append(sim_table(d[4:]))
        else:
            tables.append(ReplayTable.from_csv(d))
    return [mix_tables(tables)] if mix else tables


def run_router_benchmark(
    data: Sequence[str | Path | ReplayTable],
    routers: Sequence[str] | str = DEFAULT_ROUTERS,
    *,
    seeds: int = 20,
    horizon: int | None = None,
    lambda_cost: float = 0.0,
    missing: Literal["resample", "zero"] = "resample",
    mix: bool = False,
    cost_weight: float | None = None,
    quality_floor: float | None = None,
    floor_confidence: float | None = None,
    curves: bool = False,
) -> list[dict[str, Any]]:
    """One result per (table, router): the fields of the ``--json`` contract
    (``data``, ``router``, ``seeds``, ``horizon``, ``mean_reward``,
    ``mean_cost_usd``, ``regret_vs_best_fixed``, ``best_fixed_arm``,
    ``final_share_best_arm``, ``mean_score``, ``best_single_score``,
    ``best_single_cost_usd`` and the ``tail_`` variants of the last four and of
    ``mean_cost_usd``) plus ``regret_sd``, ``us_per_decision``, ``n_arms``,
    ``lambda_cost``, ``cost_weight``, ``quality_floor`` and ``missing``; each a
    mean over seeds. ``final_share_best_arm`` is the share of the last 10 % of
    steps spent on the arm with the best mean objective over the table's
    present cells (``best_fixed_arm``). ``curves=True`` adds, for plots,
    ``regret_curve`` (mean cumulative regret per step), ``cost_share_curve``
    (the router's cumulative cost over the same requests' cost with the best
    fixed arm, per step; ``None`` while that is 0) and ``arms`` (each arm's mean
    score and cost over the stream)."""
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    if horizon is not None and horizon < 1:
        raise ConfigError(f"horizon must be >= 1, got {horizon}")
    if missing not in ("resample", "zero"):
        raise ConfigError(f"missing must be 'resample' or 'zero', not {missing!r}")
    if cost_weight is not None:
        if not cost_weight > 0:
            raise ConfigError(f"cost_weight must be > 0 ($ per point of score), got {cost_weight}")
        if lambda_cost:
            raise ConfigError("give cost_weight or lambda_cost, not both")
        lambda_cost = 1.0 / cost_weight
    if quality_floor is not None and not 0.0 < quality_floor <= 1.0:
        raise ConfigError(f"quality_floor must be in (0, 1], got {quality_floor}")
    objective = {
        "cost_weight": cost_weight,
        "quality_floor": quality_floor,
        "floor_confidence": floor_confidence,
    }
    names = parse_router_names(routers)
    tables = load_tables(data, mix=mix)
    results: list[dict[str, Any]] = []
    for table in tables:
        prep = _prepare(table, lambda_cost)
        for name in names:
            runs = [
                _run_one(prep, name, s, horizon, lambda_cost, missing, objective)
                for s in range(seeds)
            ]
            regrets = np.array([r["regret"] for r in runs])
            row: dict[str, Any] = {
                "data": table.name,
                "router": name,
                "seeds": seeds,
                "horizon": horizon if horizon is not None else table.n_datapoints,
                "mean_reward": float(np.mean([r["reward"] for r in runs])),
                "mean_cost_usd": float(np.mean([r["cost"] for r in runs])),
                "regret_vs_best_fixed": float(regrets.mean()),
                "best_fixed_arm": prep.best_label,
                "final_share_best_arm": float(np.mean([r["share"] for r in runs])),
            }
            for key in _AVERAGED:
                row[key] = float(np.mean([r[key] for r in runs]))
            row.update(
                {
                    "regret_sd": float(regrets.std(ddof=1)) if seeds > 1 else 0.0,
                    "us_per_decision": float(np.median([r["us"] for r in runs])),
                    "n_arms": len(prep.labels),
                    "lambda_cost": lambda_cost,
                    "cost_weight": cost_weight,
                    "quality_floor": quality_floor,
                    "missing": missing,
                }
            )
            if curves:
                row["regret_curve"] = np.mean([r["curve"] for r in runs], axis=0).tolist()
                share = np.mean([r["cost_curve"] for r in runs], axis=0)
                row["cost_share_curve"] = [None if not np.isfinite(v) else float(v) for v in share]
                score = np.mean([r["arm_score"] for r in runs], axis=0)
                cost = np.mean([r["arm_cost"] for r in runs], axis=0)
                row["arms"] = {
                    label: {"score": float(score[i]), "cost_usd": float(cost[i])}
                    for i, label in enumerate(prep.labels)
                }
            results.append(row)
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
    """A rich table; regret is also shown as a share of RandomRouter's when
    present, and the tail's quality and cost as shares of the best single arm's."""
    from rich.console import Console
    from rich.table import Table

    rand = {r["data"]: r["regret_vs_best_fixed"] for r in results if r["router"] == "random"}
    tab = Table(title="router replay benchmark (regret vs the best fixed arm in hindsight)")
    for col in (
        "data",
        "router",
        "arms",
        "mean score",
        "mean cost $",
        "regret",
        "÷ random",
        "tail score ÷ best",
        "tail cost ÷ best",
        "µs/decision",
    ):
        tab.add_column(col, justify="left" if col in ("data", "router") else "right")
    for r in results:
        base = rand.get(r["data"])
        ratio = f"{r['regret_vs_best_fixed'] / base:.0%}" if base else "-"
        bs, bc = r["tail_best_single_score"], r["tail_best_single_cost_usd"]
        tab.add_row(
            r["data"],
            r["router"],
            str(r["n_arms"]),
            f"{r['mean_score']:.3f}",
            f"{r['mean_cost_usd']:.5f}",
            f"{r['regret_vs_best_fixed']:.1f} ± {r['regret_sd']:.1f}",
            ratio,
            f"{r['tail_mean_score'] / bs:.1%}" if bs > 0 else "-",
            f"{r['tail_mean_cost_usd'] / bc:.1%}" if bc > 0 else "-",
            f"{r['us_per_decision']:.0f}",
        )
    Console(width=None if sys.stdout.isatty() else 150).print(tab)


def cli_main(args: argparse.Namespace) -> int:
    """``agentopt bench routers``."""
    plot_dir = getattr(args, "plot", None)
    results = run_router_benchmark(
        args.data,
        args.routers,
        seeds=args.seeds,
        horizon=args.horizon,
        lambda_cost=args.lambda_cost,
        missing=getattr(args, "missing", "resample"),
        mix=getattr(args, "mix", False),
        cost_weight=getattr(args, "cost_weight", None),
        quality_floor=getattr(args, "quality_floor", None),
        floor_confidence=getattr(args, "floor_confidence", None),
        curves=plot_dir is not None,
    )
    print_results(results)
    if plot_dir is not None:
        from agentopt.routers.bench_plots import plot_results

        for path in plot_results(results, plot_dir):
            print(f"wrote {path}", file=sys.stderr)
    if args.json_out:
        rows = [
            {k: v for k, v in r.items() if k not in ("regret_curve", "cost_share_curve", "arms")}
            for r in results
        ]
        out = Path(args.json_out)
        out.write_text(json.dumps({"results": rows}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    return 0
