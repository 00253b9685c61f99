"""Routers on synthetic worlds that are not the agentopt-bench tables.

    .venv/bin/python experiments/synthetic_routers.py                 # 18 worlds × 5 seeds
    .venv/bin/python experiments/synthetic_routers.py --per-type 2 --json out.json

A guard against tuning routers to the four recordings: every change to a
policy should hold up here as well as on the tables. Each world is a replay
table (200 datapoints, like the recordings) drawn from one of 18 types:

- arms: 9 (one node) or 81 (9 planners × 9 solvers);
- structure (81 arms): ``additive`` (node effects sd 0.12, interaction sd 0.03)
  or ``interaction`` (node effects sd 0.04, interaction sd 0.12);
- rewards: ``bernoulli`` (0/1) or ``continuous`` (Beta-distributed scores with
  the arm's mean and a random concentration in [1, 8], graded like F1);
- gaps: ``spread`` (as drawn), ``ties`` (the top quarter of arms squeezed to
  within 0.03 of the best: many near-best arms) or ``clear`` (the best arm 0.08
  above the second);
- a base level drawn from {0.3, 0.55, 0.85} (0.85 gives near-ceiling worlds)
  and a per-datapoint difficulty (logit sd 0.7) shared by every arm, as in real
  recordings where hard questions are hard for everyone.

Regret (vs the best fixed arm in hindsight, ``agentopt.routers.bench``) is
reported as a share of RandomRouter's, per world type and summarised by group
(geometric mean and worst).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agentopt.replay import ReplayTable
from agentopt.routers.bench import run_router_benchmark

MODELS = [f"m{i}" for i in range(9)]
N_DP = 200


def world_types() -> list[tuple[int, str, str, str]]:
    """(arms, structure, rewards, gaps) for every world type."""
    out: list[tuple[int, str, str, str]] = []
    for rewards, gaps in itertools.product(
        ("bernoulli", "continuous"), ("spread", "ties", "clear")
    ):
        out.append((9, "flat", rewards, gaps))
    for structure, rewards, gaps in itertools.product(
        ("additive", "interaction"), ("bernoulli", "continuous"), ("spread", "ties", "clear")
    ):
        out.append((81, structure, rewards, gaps))
    return out


def _arm_means(rng: np.random.Generator, arms: int, structure: str, gaps: str) -> np.ndarray:
    base = float(rng.choice([0.3, 0.55, 0.85]))
    if arms == 9:
        m = base + rng.normal(0, 0.12, 9)
    else:
        e_sd, i_sd = (0.12, 0.03) if structure == "additive" else (0.04, 0.12)
        m = (
            base
            + rng.normal(0, e_sd, 9)[:, None]
            + rng.normal(0, e_sd, 9)[None, :]
            + rng.normal(0, i_sd, (9, 9))
        ).ravel()
    m = np.clip(m, 0.03, 0.97)
    order = np.argsort(m)[::-1]
    if gaps == "ties":
        top = order[: max(2, m.size // 4)]
        best, cut = m[top[0]], m[top[-1]]
        if best > cut:
            m[top] = best - (best - m[top]) * 0.03 / (best - cut)
    elif gaps == "clear":
        m[order[0]] = min(0.99, m[order[1]] + 0.08)
    return np.clip(m, 0.02, 0.99)


def make_world(kind: tuple[int, str, str, str], seed: int) -> ReplayTable:
    """One replay table of the given type."""
    arms, structure, rewards, gaps = kind
    rng = np.random.default_rng(seed)
    m = _arm_means(rng, arms, structure, gaps)
    logit = np.log(m / (1 - m))[:, None] + rng.normal(0, 0.7, N_DP)[None, :]
    p = 1.0 / (1.0 + np.exp(-logit))
    if rewards == "bernoulli":
        score = (rng.random(p.shape) < p).astype(float)
    else:
        conc = rng.uniform(1.0, 8.0)
        score = np.clip(rng.beta(p * conc + 1e-3, (1 - p) * conc + 1e-3), 0.0, 1.0)
        score = np.round(score, 3)
    if arms == 9:
        combos = [{"agent": a} for a in MODELS]
    else:
        combos = [{"planner": a, "solver": b} for a in MODELS for b in MODELS]
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(combos):
        label = " + ".join(f"{k}={v}" for k, v in c.items())
        for d in range(N_DP):
            rows.append(
                {"combo": label, **c, "datapoint": d, "score": score[i, d], "cost_usd": 0.0}
            )
    name = f"{arms}-{structure}-{rewards}-{gaps}#{seed}"
    return ReplayTable.from_dataframe(pd.DataFrame(rows), name=name)


def run(routers: str, per_type: int, seeds: int, horizon: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for k, kind in enumerate(world_types()):
        for w in range(per_type):
            table = make_world(kind, 7919 * k + w)
            results += run_router_benchmark([table], routers, seeds=seeds, horizon=horizon)
    return results


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Regret ÷ RandomRouter's, geometric mean and worst, per group and router."""
    rand = {r["data"]: r["regret_vs_best_fixed"] for r in results if r["router"] == "random"}
    groups: dict[tuple[str, str], list[float]] = {}
    for r in results:
        if r["router"] == "random":
            continue
        arms, structure, rewards, _ = r["data"].split("#")[0].split("-")
        share = max(r["regret_vs_best_fixed"], 1e-9) / max(rand[r["data"]], 1e-9)
        for g in (f"{arms}-{structure}-{rewards}", "ALL"):
            groups.setdefault((g, r["router"]), []).append(share)
    return {
        f"{g} | {name}": {
            "geomean": float(np.exp(np.mean(np.log(v)))),
            "worst": float(np.max(v)),
            "n": float(len(v)),
        }
        for (g, name), v in sorted(groups.items())
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--routers", default="random,thompson,factored")
    p.add_argument("--per-type", type=int, default=1, help="worlds per type (18 types)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--horizon", type=int, default=2000)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    t0 = time.perf_counter()
    results = run(args.routers, args.per_type, args.seeds, args.horizon)
    rand = {r["data"]: r["regret_vs_best_fixed"] for r in results if r["router"] == "random"}
    print("regret ÷ RandomRouter's, per world:")
    for r in results:
        if r["router"] != "random":
            print(
                f"  {r['data']:40s} {r['router']:10s} {r['regret_vs_best_fixed'] / rand[r['data']]:6.1%}"
            )
    print("\nby group (geometric mean, worst):")
    summary = summarise(results)
    for key, v in summary.items():
        print(f"  {key:45s} {v['geomean']:6.1%}  {v['worst']:6.1%}  (n={v['n']:.0f})")
    print(f"(took {time.perf_counter() - t0:.0f} s; shared CPU)")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
