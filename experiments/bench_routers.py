"""Router numbers: replay regret on agentopt-bench, and the cost of a decision.

    .venv/bin/python experiments/bench_routers.py            # full: 20 seeds, horizon 2,000
    .venv/bin/python experiments/bench_routers.py --quick    # 3 seeds, a smoke run

1. Replay (``agentopt.routers.bench``): on each table, arms = combinations; each
   seed draws ``horizon`` datapoints with replacement; regret against the best
   fixed arm in hindsight, as a share of RandomRouter's. Checked against the
   issue's targets (printed, not asserted: the tables are for development).
2. Cost (``--lambda-cost``): the same with objective ``score − λ·cost``, where
   CostAwareRouter is told λ and the others are not.
3. Per-decision time (route + update, through the public API the tracker uses),
   wall and CPU time; the machine is shared, so wall figures are noisy.
4. Synthetic worlds (not these tables): random 9 × 9 planner/solver grids with
   node effects, interactions and 0/1 outcomes, to check that the structured
   router's advantage is not a property of the four recordings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from agentopt.routers import Feedback, PromptFeatures, RouteContext, available_routers, get_router
from agentopt.routers.bench import print_results, run_router_benchmark

DATA = Path(__file__).resolve().parent.parent / "data" / "agentopt-bench"
TARGETS = [  # (router, table, max share of RandomRouter's regret)
    ("thompson", "gpqa", 0.20),
    ("thompson", "bfcl", 0.20),
    ("thompson", "hotpotqa", 0.50),
    ("thompson", "mathqa", 0.50),
    ("factored", "hotpotqa", 0.30),
    ("factored", "mathqa", 0.30),
]


def check_targets(results: list[dict]) -> None:
    regret = {(r["router"], r["data"]): r["regret_vs_best_fixed"] for r in results}
    print("\ntargets (regret ÷ RandomRouter's regret):")
    for router, table, limit in TARGETS:
        if (router, table) not in regret or ("random", table) not in regret:
            continue
        share = regret[(router, table)] / regret[("random", table)]
        verdict = "met" if share <= limit else "MISSED"
        print(f"  {router:9s} {table:9s} {share:6.1%}  (target ≤ {limit:.0%})  {verdict}")


def time_decisions(
    name: str, candidates: object, nodes: list[str] | None, n: int
) -> tuple[float, float]:
    """Median µs per (route + update): (wall, cpu)."""
    router = get_router(name, candidates=candidates, seed=0, history=0)
    rng = np.random.default_rng(0)
    feats = PromptFeatures(token_estimate=300, turns=2)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(n):
        did = str(i)
        if nodes is None:
            m = router.route(RouteContext(requested_model="x", data_id=did, features=feats))
            assert m is not None
            router.update(Feedback(reward=float(rng.random() < 0.5), models=(m,), data_id=did))
        else:
            combo = {}
            for nd in nodes:
                ctx = RouteContext(requested_model="x", data_id=did, agent_id=nd, features=feats)
                combo[nd] = router.route(ctx)
            router.update(Feedback(reward=float(rng.random() < 0.5), data_id=did))
    return (
        (time.perf_counter() - wall0) / n * 1e6,
        (time.process_time() - cpu0) / n * 1e6,
    )


def timing(n: int) -> None:
    shapes = {
        "10 arms": ([f"m{i}" for i in range(10)], None),
        "100 arms": ([f"m{i}" for i in range(100)], None),
        "3×3 combos": ({"p": ["a", "b", "c"], "s": ["a", "b", "c"]}, ["p", "s"]),
        "10×10 combos": (
            {"p": [f"m{i}" for i in range(10)], "s": [f"m{i}" for i in range(10)]},
            ["p", "s"],
        ),
    }
    print("\nper decision (route + update), µs, wall / CPU (median of 3 runs):")
    print(f"  {'router':15s}" + "".join(f"{k:>22s}" for k in shapes))
    for name in available_routers():
        cells = []
        for cands, nodes in shapes.values():
            runs = [time_decisions(name, cands, nodes, n) for _ in range(3)]
            wall = float(np.median([r[0] for r in runs]))
            cpu = float(np.median([r[1] for r in runs]))
            cells.append(f"{wall:9.0f} / {cpu:5.0f}")
        print(f"  {name:15s}" + "".join(f"{c:>22s}" for c in cells))


def synthetic_worlds(
    n_worlds: int, seeds: int, horizon: int, effect_sd: float = 0.12, interaction_sd: float = 0.05
) -> list[dict]:
    """Random 9 × 9 worlds: p = 0.55 + planner effect + solver effect + interaction
    (sds ``effect_sd``, ``effect_sd``, ``interaction_sd``), clipped to [0.02, 0.98];
    200 datapoints of 0/1 outcomes."""
    import pandas as pd

    from agentopt.replay import ReplayTable

    models = [f"m{i}" for i in range(9)]
    results: list[dict] = []
    for w in range(n_worlds):
        rng = np.random.default_rng(1000 + w)
        pe, se = rng.normal(0, effect_sd, 9), rng.normal(0, effect_sd, 9)
        inter = rng.normal(0, interaction_sd, (9, 9))
        rows = []
        for i, p in enumerate(models):
            for j, s in enumerate(models):
                prob = float(np.clip(0.55 + pe[i] + se[j] + inter[i, j], 0.02, 0.98))
                for d, y in enumerate(rng.random(200) < prob):
                    rows.append(
                        {
                            "combo": f"planner={p} + solver={s}",
                            "planner": p,
                            "solver": s,
                            "datapoint": d,
                            "score": float(y),
                            "cost_usd": 0.0,
                        }
                    )
        table = ReplayTable.from_dataframe(pd.DataFrame(rows), name=f"world{w}")
        results += run_router_benchmark(
            [table], "random,thompson,factored", seeds=seeds, horizon=horizon
        )
    return results


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="3 seeds, horizon 500")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--horizon", type=int, default=2000)
    p.add_argument("--routers", default="all")
    p.add_argument("--lambda-cost", type=float, default=1.0, help="λ of the cost run")
    p.add_argument("--json", default=None, help="write every result here")
    p.add_argument(
        "--skip", default="", help="comma list of parts to skip: replay,cost,timing,synthetic"
    )
    args = p.parse_args()
    seeds, horizon = (3, 500) if args.quick else (args.seeds, args.horizon)
    skip = set(filter(None, args.skip.split(",")))
    tables = [DATA / f"{t}.csv" for t in ("gpqa", "bfcl", "hotpotqa", "mathqa")]
    out: dict[str, list[dict]] = {}
    if "replay" not in skip:
        t0 = time.perf_counter()
        res = run_router_benchmark(tables, args.routers, seeds=seeds, horizon=horizon)
        print_results(res)
        check_targets(res)
        print(f"(replay took {time.perf_counter() - t0:.0f} s)")
        out["replay"] = res
    if "cost" not in skip:
        res = run_router_benchmark(
            [DATA / "bfcl.csv", DATA / "hotpotqa.csv"],
            "random,thompson,cost_aware",
            seeds=seeds,
            horizon=horizon,
            lambda_cost=args.lambda_cost,
        )
        print(f"\nobjective = score − {args.lambda_cost:g} × cost (USD); only cost_aware is told λ")
        print_results(res)
        out["cost"] = res
    if "synthetic" not in skip:
        n_worlds, n_seeds = (3, 3) if args.quick else (10, 5)
        for label, e_sd, i_sd in (
            ("mostly additive", 0.12, 0.05),
            ("mostly interaction", 0.05, 0.15),
        ):
            res = synthetic_worlds(n_worlds, n_seeds, horizon, e_sd, i_sd)
            out[f"synthetic {label}"] = res
            rand = {r["data"]: r["regret_vs_best_fixed"] for r in res if r["router"] == "random"}
            by: dict[str, list[float]] = {}
            for r in res:
                by.setdefault(r["router"], []).append(r["regret_vs_best_fixed"] / rand[r["data"]])
            print(
                f"\nsynthetic 9 × 9 worlds, {label} (effect sd {e_sd}, interaction sd {i_sd}; "
                f"{n_worlds} worlds × {n_seeds} seeds): regret ÷ RandomRouter's"
            )
            for name, ratios in by.items():
                if name != "random":
                    print(f"  {name:9s} median {np.median(ratios):6.1%}  worst {max(ratios):6.1%}")
    if "timing" not in skip:
        timing(300 if args.quick else 2000)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
