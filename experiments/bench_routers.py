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
5. Prompt-aware routing (``--skip`` part ``mix``): a mixed stream of tables with
   prompts (default: the simulator's two task families, ``sim:mcq`` and
   ``sim:arithmetic``; ``--mix-data A.csv --mix-data B.csv`` for recordings of
   your own; by default also three recorded tables with prompts of their kind,
   598 requests, and the same tiled to 2,990), 20 seeds, ``--quality-floor`` 0.95:
   the tail (last third) as a
   share of the best single model's score and cost, against the target
   (≥ 95 % of its score at ≤ 50 % of its cost).
6. Prompt features (part ``features``): our hashed n-grams against
   scikit-learn's ``HashingVectorizer`` (word 1–2-grams + char_wb 3–5-grams),
   µs per prompt; and PromptRouter / MABWiserRouter per decision (route +
   update) with 2,048 hashed features and 11 arms.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

from agentopt.replay import ReplayTable
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


TARGET_SCORE, TARGET_COST = 0.95, 0.50
_TOOL_TEMPLATES = (
    "Use the tools to book a table for {n} at {place} on {day}. Call the right function.",
    "Call get_weather for {place} and convert the temperature for {day}.",
    "Find flights from {place} to Paris for {n} passengers leaving {day}; use the API.",
    "Schedule a meeting with {n} people in {place} on {day} using calendar functions.",
)


def recorded_with_prompts() -> list[ReplayTable]:
    """Three recorded tables (9 real models, real scores and prices) given prompts of
    their kind: gpqa → the simulator's multiple-choice questions, mathqa (each model
    as both answer and critic) → its arithmetic problems, bfcl → tool-use requests.
    The prompts carry the task, nothing about a datapoint's difficulty: a check of
    "infer the task from the text" on real outcomes, not the issue's target stream."""
    import dataclasses

    from agentopt.replay import ReplayTable
    from agentopt.sim.tasks import load_task

    rng = np.random.default_rng(0)
    gpqa = ReplayTable.from_csv(DATA / "gpqa.csv")
    bfcl = ReplayTable.from_csv(DATA / "bfcl.csv")
    math = ReplayTable.from_csv(DATA / "mathqa.csv")
    diag = [i for i, c in enumerate(math.combos) if c["answer"] == c["critic"]]
    math = math.subset(diag)
    math = dataclasses.replace(
        math,
        name="mathqa-diagonal",
        nodes=["agent"],
        combos=[{"agent": c["answer"]} for c in math.combos],
        labels=[f"agent={c['answer']}" for c in math.combos],
    )
    mcq, arith = load_task("mcq"), load_task("arithmetic")
    places = ["Lisbon", "Oslo", "Lima", "Kyoto", "Accra", "Denver"]
    days = ["Monday", "Friday", "May 3", "next week"]
    out = []
    for table, make in (
        (gpqa, lambda j: mcq[j].prompt),
        (math, lambda j: arith[j].prompt),
        (
            bfcl,
            lambda j: _TOOL_TEMPLATES[j % 4].format(
                n=int(rng.integers(1, 9)), place=rng.choice(places), day=rng.choice(days)
            ),
        ),
    ):
        prompts = {dp: make(j) for j, dp in enumerate(table.datapoints)}
        out.append(dataclasses.replace(table, prompts=prompts))
    return out


def recorded_long(copies: int = 5) -> list[ReplayTable]:
    """The three tables of :func:`recorded_with_prompts`, each tiled ``copies``
    times along its datapoints (2,990 requests for 5), every copy with a fresh
    prompt of its kind: about the target stream's length (~3,200). A copy
    repeats a datapoint's recorded outcomes, not its prompt, so the router
    cannot recognise a datapoint it saw; outcomes are less varied than in a
    longer recording."""
    import dataclasses

    from agentopt.replay import ReplayTable
    from agentopt.sim.tasks import load_task

    mcq, arith = load_task("mcq"), load_task("arithmetic")
    rng = np.random.default_rng(1)
    places = ["Lisbon", "Oslo", "Lima", "Kyoto", "Accra", "Denver", "Quito", "Cairo"]
    days = ["Monday", "Friday", "May 3", "next week", "tomorrow"]
    out: list[ReplayTable] = []
    for k, table in enumerate(recorded_with_prompts()):
        t = cast(ReplayTable, table)
        dps: list[int | str] = [f"{d}#{c}" for c in range(copies) for d in t.datapoints]
        prompts: dict[int | str, str] = {}
        for i, d in enumerate(dps):
            if k == 0:
                prompts[d] = mcq[i % len(mcq)].prompt
            elif k == 1:
                prompts[d] = arith[i % len(arith)].prompt
            else:
                prompts[d] = _TOOL_TEMPLATES[int(rng.integers(4))].format(
                    n=int(rng.integers(1, 9)), place=rng.choice(places), day=rng.choice(days)
                )

        def tile(a: np.ndarray) -> np.ndarray:
            return np.tile(a, (1, copies))

        out.append(
            dataclasses.replace(
                t,
                name=f"{t.name}x{copies}",
                datapoints=dps,
                score=tile(t.score),
                cost_usd=tile(t.cost_usd),
                latency_s=tile(t.latency_s),
                input_tokens=tile(t.input_tokens),
                output_tokens=tile(t.output_tokens),
                errors={},
                prompts=prompts,
            )
        )
    return out


def mixed_stream(
    data: list[str] | list[ReplayTable],
    seeds: int,
    floor: float,
    cost_weight: float | None,
    label: str,
    floor_confidence: float | None = None,
) -> None:
    """Part 5: the prompt-aware routers on one mixed stream, checked against the target."""
    routers = "random,thompson,cost_aware,mabwiser,prompt"
    res = run_router_benchmark(
        data,
        routers,
        seeds=seeds,
        mix=True,
        quality_floor=floor,
        cost_weight=cost_weight,
        floor_confidence=floor_confidence,
    )
    held = "" if floor_confidence is None else f", floor confidence {floor_confidence}"
    print(f"\nmixed stream of {label}: quality floor {floor}{held}, {seeds} seeds")
    print_results(res)
    for r in res:
        share_s = r["tail_mean_score"] / r["tail_best_single_score"]
        share_c = r["tail_mean_cost_usd"] / r["tail_best_single_cost_usd"]
        ok = share_s >= TARGET_SCORE and share_c <= TARGET_COST
        print(
            f"  {r['router']:11s} tail: {share_s:6.1%} of the best single model's score at "
            f"{share_c:6.1%} of its cost  ({'target met' if ok else 'target missed'})"
        )


def _time(fn: object, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - t0) / n * 1e6


def features_timing(n: int) -> None:
    """Part 6: µs per prompt for the hashers, µs per decision for the prompt routers."""
    from sklearn.feature_extraction.text import HashingVectorizer

    from agentopt.routers import PromptHasher
    from agentopt.sim.tasks import load_task

    prompts = [it.prompt for it in load_task("mcq")[:50] + load_task("arithmetic")[:50]]
    long = " ".join(prompts)[:4000]
    ours = PromptHasher(n_features=2048)
    words = HashingVectorizer(n_features=2048, ngram_range=(1, 2))
    chars = HashingVectorizer(n_features=2048, analyzer="char_wb", ngram_range=(3, 5))
    print("\nprompt features, µs per prompt (median of 3 runs):")
    for label, texts in (("a 100-char question", prompts), ("a 4,000-char prompt", [long])):
        k = max(1, n // len(texts))

        def run_ours(texts: list[str] = texts) -> None:
            for t in texts:
                ours.transform(t)

        def run_sklearn(texts: list[str] = texts) -> None:
            for t in texts:
                words.transform([t])
                chars.transform([t])

        a = float(np.median([_time(run_ours, k) for _ in range(3)])) / len(texts)
        b = float(np.median([_time(run_sklearn, k) for _ in range(3)])) / len(texts)
        print(
            f"  {label:22s} ours {a:7.0f}   scikit-learn HashingVectorizer {b:7.0f}  ({b / a:.1f}×)"
        )
    arms = [f"m{i}" for i in range(11)]
    prices = {m: 0.001 * (i + 1) for i, m in enumerate(arms)}
    rng = np.random.default_rng(0)
    print("\nper decision (route + update) with 2,048 hashed features and 11 arms, µs:")
    # 100 prompts in turn: none is among the 64 the prompt router keeps hashed, so
    # every decision hashes; "4 calls per prompt": an agent's calls for one task
    # share their prompt text (3 of 4 decisions reuse its hashed n-grams)
    cases: tuple[tuple[str, dict[str, Any], int], ...] = (
        ("prompt", {"prices": prices, "quality_floor": 0.95}, 1),
        ("prompt", {"prices": prices, "quality_floor": 0.95}, 4),
        ("mabwiser", {"learning_policy": "ThompsonSampling"}, 1),
        (
            "mabwiser",
            {"learning_policy": {"name": "LinUCB", "alpha": 1.0}, "context": "prompt"},
            1,
        ),
    )
    for name, kw, calls in cases:
        router = get_router(name, candidates=arms, seed=0, history=0, **kw)
        counter = [0]

        def step(router: object = router, counter: list[int] = counter, calls: int = calls) -> None:
            i = counter[0]
            counter[0] += 1
            text = prompts[(i // calls) % 100]
            ctx = RouteContext(requested_model=None, data_id=str(i), prompt=text)
            m = router.route(ctx)  # type: ignore[attr-defined]
            router.update(Feedback(reward=float(rng.random() < 0.5), models=(m,), data_id=str(i)))  # type: ignore[attr-defined]

        for _ in range(200):  # past the first fits and cluster creation
            step()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            step()
        wall = (time.perf_counter() - wall0) / n * 1e6
        cpu = (time.process_time() - cpu0) / n * 1e6
        policy = kw.get("learning_policy", "")
        label = (
            name
            if not policy
            else f"{name} {policy if isinstance(policy, str) else policy['name']}"
        )
        if calls > 1:
            label += f", {calls} calls per prompt"

        print(f"  {label:28s} wall {wall:7.0f}   CPU {cpu:7.0f}")


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
        "--skip",
        default="",
        help="comma list of parts to skip: replay,cost,timing,synthetic,mix,features",
    )
    p.add_argument("--only", default=None, help="comma list of the only parts to run")
    p.add_argument(
        "--mix-data",
        action="append",
        default=None,
        help="tables with prompts to mix (default: sim:mcq and sim:arithmetic)",
    )
    p.add_argument("--quality-floor", type=float, default=0.95)
    p.add_argument("--cost-weight", type=float, default=None)
    p.add_argument(
        "--floor-confidence", type=float, default=None, help="passed to the prompt router"
    )
    args = p.parse_args()
    seeds, horizon = (3, 500) if args.quick else (args.seeds, args.horizon)
    skip = set(filter(None, args.skip.split(",")))
    if args.only:
        parts = {"replay", "cost", "timing", "synthetic", "mix", "features"}
        skip = parts - set(args.only.split(","))
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
    if "mix" not in skip:
        mix_data: list[str] = list(args.mix_data or ["sim:mcq", "sim:arithmetic"])
        label = ", ".join(str(d) for d in mix_data)
        fc = args.floor_confidence
        mixed_stream(mix_data, seeds, args.quality_floor, args.cost_weight, label, fc)
        if not args.mix_data:
            label = "gpqa, mathqa (diagonal), bfcl with prompts of their kind"
            mixed_stream(
                recorded_with_prompts(), seeds, args.quality_floor, args.cost_weight, label, fc
            )
            label = "the same three tables, each tiled 5 times with fresh prompts (2,990 requests)"
            mixed_stream(recorded_long(), seeds, args.quality_floor, args.cost_weight, label, fc)
    if "features" not in skip:
        features_timing(300 if args.quick else 2000)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
