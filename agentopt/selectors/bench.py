"""``agentopt bench selectors``: compare selection methods on recorded tables.

Definitions (those of the published numbers, ``data/agentopt-bench/README.md``):

- seed k shuffles the datapoint order (``Problem.create(seed=k)``, the stdlib
  ``random.Random(k).shuffle`` of the published harness): seed k is the k-th of the
  published harness's shuffles, k = base_seed … base_seed + seeds − 1
  (``--base-seed``, default 42 as published, so the runs are like for like);
- the ground truth is the best mean score over present cells (``--missing skip``)
  or over all cells with missing ones scored 0 (``--missing zero``);
- ``found_best``: share of seeds whose pick's mean equals the best mean (an exact
  tie is a find); ``epsilon_good``: share within ``epsilon`` of it;
- ``mean_regret``: best mean − the pick's mean, averaged (score units);
- an evaluation is a present cell (under ``zero``, every asked cell);
- ``savings`` = 1 − mean cost / cost of all cells;
- ``budget_usd``: the spend limit per seed (None: none). ``--budget-of METHOD``
  sets it, per table, to METHOD's mean dollar spend on the same seeds, so every
  method gets the same money; the loop never starts a cell that would take a
  seed's spend above it;
- ``max_evaluations``: the evaluation limit per seed (None: none). ``--budget-of``
  sets it instead of dollars on a table whose cells record no cost (METHOD spent
  $0 there, so dollars cannot say what "the same money" is): every method then
  gets METHOD's mean number of evaluations, rounded down.

Strategies run with their defaults (confidence 0.95, epsilon 0: they aim at the
exact best); ``--epsilon`` only defines the ``epsilon_good`` column. It is not
passed to the methods, on purpose: the published rows come from a fixed rule that
ignores ε, ``found_best`` measures the exact best, and giving ``auto`` an ε target
would change what it certifies (an (ε, δ) pick) rather than compare like for like
(measured, 50 seeds: with ε = 0.01 ``auto`` is no cheaper, since certifying a
1-point gap between near-tied arms needs about as much data as separating them).

Example::

    rows = run_benchmark([ReplayTable.from_csv("data/agentopt-bench/gpqa.csv")],
                         ["auto", "agentopt_arm_elimination"], seeds=50)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.replay.table import ReplayTable
from agentopt.selectors.base import Problem, Strategy
from agentopt.selectors.registry import get_strategy
from agentopt.selectors.replay import ReplayData, run_replay
from agentopt.selectors.stopping import AnyOf, BudgetUSD, MaxEvaluations, StoppingRule

__all__ = ["RESULT_KEYS", "cli_main", "run_benchmark", "run_method"]

#: The keys of every result row, in order (a contract: other tools read them).
RESULT_KEYS = (
    "data",
    "method",
    "seeds",
    "found_best",
    "epsilon_good",
    "mean_regret",
    "mean_evaluations",
    "mean_cost_usd",
    "brute_force_cost_usd",
    "savings",
    "budget_usd",
    "max_evaluations",
)

# exact ties: two means within this (absolute) count as equal (float summation noise)
_TIE = 1e-12


def run_method(
    table: ReplayTable,
    method: str | Strategy | type[Strategy],
    *,
    seeds: int = 50,
    missing: str = "skip",
    epsilon: float = 0.01,
    data: ReplayData | None = None,
    base_seed: int = 42,
    budget_usd: float | None = None,
    max_evaluations: int | None = None,
) -> dict[str, Any]:
    """One result row: ``method`` on ``table`` over ``seeds`` shuffles, plus
    ``cpu_seconds`` (time spent, strategy and lookups), ``picks`` and ``costs``
    (per seed). ``budget_usd``: every seed's spend limit (the strategy is told it,
    the loop never starts a cell that would take the spend above it);
    ``max_evaluations``: every seed's evaluation limit (told, and kept, alike)."""
    if seeds < 1:
        raise ConfigError(f"seeds must be ≥ 1, not {seeds}")
    rules: list[StoppingRule] = []
    if budget_usd is not None:
        rules.append(BudgetUSD(budget_usd))
    if max_evaluations is not None:
        rules.append(MaxEvaluations(max_evaluations))
    stopping = None if not rules else rules[0] if len(rules) == 1 else AnyOf(*rules)
    data = data or ReplayData.from_table(table, missing)
    means = table.mean_scores(missing)  # type: ignore[arg-type]
    best = float(np.nanmax(means))
    total = table.total_cost()
    picks: list[int] = []
    evals = np.zeros(seeds)
    cost = np.zeros(seeds)
    t0 = time.process_time()
    for k in range(base_seed, base_seed + seeds):
        problem = Problem.create(
            table.n_arms,
            table.n_datapoints,
            seed=k,
            budget_usd=budget_usd,
            max_evaluations=max_evaluations,
            arms=table.combos,
        )
        strategy = get_strategy(method) if isinstance(method, str) else _fresh(method)
        state = run_replay(strategy, data, problem, stopping, track_stats=False)
        picks.append(int(state.best if state.best is not None else 0))
        evals[k - base_seed] = state.evaluations
        cost[k - base_seed] = state.spent_usd
    cpu = time.process_time() - t0
    pick_means = np.nan_to_num(means[picks], nan=-np.inf)
    name = method if isinstance(method, str) else getattr(method, "name", type(method).__name__)
    mean_cost = float(cost.mean())
    return {
        "data": table.name,
        "method": str(name),
        "seeds": seeds,
        "found_best": float(np.mean(pick_means >= best - _TIE)),
        "epsilon_good": float(np.mean(pick_means >= best - epsilon - _TIE)),
        "mean_regret": float(np.mean(best - np.where(np.isfinite(pick_means), pick_means, 0.0))),
        "mean_evaluations": float(evals.mean()),
        "mean_cost_usd": mean_cost,
        "brute_force_cost_usd": total,
        # a cell is evaluated at most once, so the fraction is in [0, 1] up to float noise
        "savings": min(1.0, max(0.0, float(1.0 - mean_cost / total))) if total > 0 else 0.0,
        "budget_usd": budget_usd,
        "max_evaluations": max_evaluations,
        "cpu_seconds": cpu,
        "picks": picks,
        "costs": cost.tolist(),
    }


def _fresh(method: Strategy | type[Strategy]) -> Strategy:
    # an instance is reused across seeds: start() resets it, and seed=None takes each problem's
    return get_strategy(method)


def run_benchmark(
    tables: Sequence[ReplayTable],
    methods: Sequence[str | Strategy | type[Strategy]],
    seeds: int = 50,
    missing: str = "skip",
    epsilon: float = 0.01,
    *,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    base_seed: int = 42,
    budget_usd: float | None = None,
    budget_of: str | None = None,
) -> list[dict[str, Any]]:
    """Every method on every table; rows carry exactly :data:`RESULT_KEYS`.

    ``budget_usd`` caps every method's spend per seed; ``budget_of`` (a method
    name) sets that cap, table by table, to that method's mean dollar spend on
    the same seeds (run without a cap), so every method gets the same money. On a
    table where that method spent $0 (cells with no recorded cost), ``budget_of``
    caps evaluations instead, at its mean number of evaluations rounded down."""
    if budget_usd is not None and budget_of is not None:
        raise ConfigError("give budget_usd or budget_of, not both")
    if budget_usd is not None and not (budget_usd >= 0 and np.isfinite(budget_usd)):
        raise ConfigError(f"budget_usd must be a number ≥ 0, not {budget_usd!r}")
    rows: list[dict[str, Any]] = []
    for table in tables:
        data = ReplayData.from_table(table, missing)
        cap = budget_usd
        evals: int | None = None
        if budget_of is not None:
            ref = run_method(
                table, budget_of, seeds=seeds, missing=missing, data=data, base_seed=base_seed
            )
            cap = float(ref["mean_cost_usd"])
            if not cap > 0:  # no cost recorded: the same number of evaluations instead
                cap = None
                evals = int(ref["mean_evaluations"])
        for method in methods:
            full = run_method(
                table,
                method,
                seeds=seeds,
                missing=missing,
                epsilon=epsilon,
                data=data,
                base_seed=base_seed,
                budget_usd=cap,
                max_evaluations=evals,
            )
            if on_row is not None:
                on_row(full)
            rows.append({k: full[k] for k in RESULT_KEYS})
    return rows


def _print_table(name: str, rows: list[dict[str, Any]], epsilon: float) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"{name}: {rows[0]['seeds']} seeds" if rows else name
    if rows and rows[0].get("budget_usd") is not None:
        title += f", budget ${rows[0]['budget_usd']:.6g} per seed"
    if rows and rows[0].get("max_evaluations") is not None:
        title += f", at most {rows[0]['max_evaluations']} evaluations per seed"
    t = Table(title=title)
    for col in (
        "method",
        "found best",
        f"ε-good ({epsilon:g})",
        "regret (pts)",
        "evals",
        "cost $",
        "savings",
        "cpu s",
    ):
        if col == "method":
            t.add_column(col, no_wrap=True, min_width=max([6, *(len(r["method"]) for r in rows)]))
        else:
            t.add_column(col, justify="right")
    for r in rows:
        t.add_row(
            r["method"],
            f"{100 * r['found_best']:.0f}%",
            f"{100 * r['epsilon_good']:.0f}%",
            f"{100 * r['mean_regret']:.2f}",
            f"{r['mean_evaluations']:.0f}",
            f"{r['mean_cost_usd']:.4f}",
            f"{100 * r['savings']:.1f}%",
            f"{r['cpu_seconds']:.2f}",
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(t)


def cli_main(args: argparse.Namespace) -> int:
    """``agentopt bench selectors``: print a table per file, write ``--json``."""
    methods = [m.strip() for m in str(args.methods).split(",") if m.strip()]
    if not methods:
        raise ConfigError("--methods: give at least one method")
    budget_of = getattr(args, "budget_of", None)
    for m in [*methods, *([budget_of] if budget_of else [])]:
        get_strategy(m)  # unknown names fail before any work
    tables = [ReplayTable.from_csv(p) for p in args.data]
    out: list[dict[str, Any]] = []
    for table in tables:
        full_rows: list[dict[str, Any]] = []
        run_benchmark(
            [table],
            methods,
            args.seeds,
            args.missing,
            args.epsilon,
            on_row=full_rows.append,
            base_seed=getattr(args, "base_seed", 42),
            budget_usd=getattr(args, "budget_usd", None),
            budget_of=budget_of,
        )
        _print_table(table.name, full_rows, args.epsilon)
        out.extend({k: r[k] for k in RESULT_KEYS} for r in full_rows)
    if args.json_out:
        path = Path(args.json_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"results": out}, indent=2) + "\n")
    return 0
