"""Reproduce the selector figures of the README on the four agentopt-bench tables
(50 seeds, the published harness's shuffles), each from one command:

    .venv/bin/python experiments/bench_selectors.py                 # every method, default settings
    .venv/bin/python experiments/bench_selectors.py --frontier-plot experiments/figures/selection_frontier.png
    .venv/bin/python experiments/bench_selectors.py --frontier 0.95,0.9,0.8   # auto's frontier as text
    .venv/bin/python experiments/bench_selectors.py --calibration  # is "≥ 90 % likely best" right?
    .venv/bin/python experiments/bench_selectors.py --epsilon 0.01 --epsilon-check  # ε never costs extra
    .venv/bin/python experiments/bench_selectors.py --equal-budget  # where the rule's money goes
    .venv/bin/python experiments/bench_selectors.py --equal-budget-sets 8  # 8 × 50 seeds
    .venv/bin/python experiments/bench_selectors.py --budget-misses gpqa  # why auto misses there

The equal-budget table is the CLI's ``agentopt bench selectors --budget-of
agentopt_arm_elimination`` (see the README). Figures measured on a shared 2-core
machine are noisy in time, not in quality (the replays are deterministic).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentopt.replay.table import ReplayTable
from agentopt.selectors.auto import AutoStrategy
from agentopt.selectors.base import Problem
from agentopt.selectors.bench import RESULT_KEYS, run_method
from agentopt.selectors.certainty import assess_selection
from agentopt.selectors.registry import get_strategy
from agentopt.selectors.replay import ReplayData, run_replay
from agentopt.selectors.stopping import BudgetUSD

DATA = Path(__file__).resolve().parent.parent / "data" / "agentopt-bench"
TABLES = ["gpqa", "bfcl", "hotpotqa", "mathqa"]
METHODS = [
    "auto",
    "brute_force",
    "agentopt_arm_elimination",
    "successive_elimination",
    "lucb",
    "top_two_thompson",
    "successive_halving",
    "random_search",
]
CONFIDENCES = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
BUDGET_FRACTIONS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def published_rows(name: str) -> list[dict[str, Any]]:
    """Every published selector row: found best, savings and mean accuracy, as fractions."""
    out = []
    with open(DATA / "published" / f"{name}_selector_results.csv") as f:
        for row in csv.DictReader(f):
            sav_key = next(k for k in row if k.startswith("Cost Savings"))
            out.append(
                {
                    "method": row["Selector"].replace(" (ref)", ""),
                    "found_best": float(row["Found Best %"].rstrip("%")) / 100,
                    "savings": float(row[sav_key].rstrip("%")) / 100,
                    "mean_accuracy": float(row["Mean Accuracy"]),
                }
            )
    return out


def published(name: str) -> dict[str, float]:
    """The published arm_elimination row."""
    for r in published_rows(name):
        if r["method"] == "arm_elimination":
            return r
    raise SystemExit(f"no arm_elimination row for {name}")


def _table(name: str) -> ReplayTable:
    return ReplayTable.from_csv(DATA / f"{name}.csv")


def strategy_cpu_per_evaluation(n_arms: int = 100, n_datapoints: int = 300) -> dict[str, float]:
    """Seconds of CPU per evaluation, strategy and replay loop together, 100 arms."""
    rng = np.random.default_rng(0)
    p = np.linspace(0.4, 0.8, n_arms)[:, None]
    score = (rng.random((n_arms, n_datapoints)) < p).astype(float)
    data = ReplayData(
        score=score,
        cost=np.full(score.shape, 0.001),
        latency=np.ones(score.shape),
        present=np.ones(score.shape, dtype=bool),
        missing="skip",
    )
    out = {}
    for m in METHODS:
        t0 = time.process_time()
        evals = 0
        for seed in range(3):
            state = run_replay(
                get_strategy(m), data, Problem.create(n_arms, n_datapoints, seed=seed)
            )
            evals += state.evaluations
        out[m] = (time.process_time() - t0) / max(1, evals)
    return out


def frontier(confidences: list[float], seeds: int, epsilon: float) -> None:
    """``auto``'s found best / savings / ε-good on each table at each confidence."""
    tables = {n: _table(n) for n in TABLES}
    print(f"auto: found best / savings / ε-good, {seeds} seeds")
    print(f"{'confidence':>10s} " + " ".join(f"{n:>22s}" for n in TABLES))
    for c in confidences:
        cells = []
        for table in tables.values():
            r = run_method(table, get_strategy("auto", confidence=c), seeds=seeds, epsilon=epsilon)
            cells.append(
                f"{100 * r['found_best']:.0f} / {100 * r['savings']:.1f} / "
                f"{100 * r['epsilon_good']:.0f}"
            )
        print(f"{c:10.2f} " + " ".join(f"{x:>22s}" for x in cells))


def frontier_points(name: str, seeds: int) -> dict[str, list[dict[str, float]]]:
    """auto at each confidence, auto at each budget (a share of brute force), ours
    and the published rows: savings and regret (points) per point."""
    table = _table(name)
    data = ReplayData.from_table(table)
    best = float(np.nanmax(table.mean_scores("skip")))
    total = table.total_cost()

    def point(r: dict[str, Any], label: str) -> dict[str, Any]:
        return {
            "label": label,
            "savings": 100 * r["savings"],
            "regret": 100 * r["mean_regret"],
            "found_best": 100 * r["found_best"],
        }

    conf = [
        point(
            run_method(table, get_strategy("auto", confidence=c), seeds=seeds, data=data), f"{c:g}"
        )
        for c in CONFIDENCES
    ]
    budget = [
        point(run_method(table, "auto", seeds=seeds, data=data, budget_usd=f * total), f"{f:.0%}")
        for f in BUDGET_FRACTIONS
    ]
    ours = [
        point(run_method(table, m, seeds=seeds, data=data), m)
        for m in ("agentopt_arm_elimination", "successive_halving", "random_search")
    ]
    pub = [
        {
            "label": r["method"],
            "savings": 100 * r["savings"],
            "regret": 100 * max(0.0, best - r["mean_accuracy"]),
            "found_best": 100 * r["found_best"],
        }
        for r in published_rows(name)
        if r["method"] != "brute_force"
    ]
    return {"confidence": conf, "budget": budget, "ours": ours, "published": pub}


def frontier_plot(path: str, seeds: int) -> dict[str, Any]:
    """Savings against regret on each table: auto's confidence and budget frontiers,
    with the published points (and our baselines) on it. Writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    everything = {}
    for ax, name in zip(axes.flat, TABLES, strict=True):
        pts = frontier_points(name, seeds)
        everything[name] = pts
        for key, style in (
            ("confidence", dict(marker="o", color="C0", label="auto, confidence 0.5…0.99")),
            ("budget", dict(marker="s", color="C1", label="auto, budget 10…100 % of brute force")),
        ):
            xs = [p["savings"] for p in pts[key]]
            ys = [p["regret"] for p in pts[key]]
            ax.plot(xs, ys, linestyle="-", **style)
        ax.scatter(
            [p["savings"] for p in pts["ours"]],
            [p["regret"] for p in pts["ours"]],
            marker="^",
            color="C2",
            label="our baselines",
        )
        ax.scatter(
            [p["savings"] for p in pts["published"]],
            [p["regret"] for p in pts["published"]],
            marker="x",
            color="black",
            label="published",
        )
        for p in pts["ours"] + pts["published"]:
            ax.annotate(
                p["label"], (p["savings"], p["regret"]), fontsize=6, xytext=(3, 3),
                textcoords="offset points",
            )  # fmt: skip
        ax.set_title(f"{name} ({seeds} seeds)")
        ax.set_yscale("symlog", linthresh=0.1)
        ax.grid(alpha=0.3)
        ax.set_xlabel("cost savings vs brute force (%)")
        ax.set_ylabel("mean regret (points)")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Lower right is better: more saved, less lost")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")
    for name, pts in everything.items():
        print(f"\n{name}: label  savings %  regret pts  found %")
        for key in ("confidence", "budget", "ours", "published"):
            for p in pts[key]:
                print(
                    f"  {key:10s} {p['label']!s:26s} {p['savings']:6.1f} "
                    f"{p['regret']:8.3f} {p['found_best']:6.0f}"
                )
    return everything


def _per_seed(table: ReplayTable, data: ReplayData, caps: list[float]) -> dict[str, float]:
    """``auto`` with seed k's budget set to ``caps[k − 42]``: found best, regret (points)."""
    means = table.mean_scores("skip")
    best = float(np.nanmax(means))
    found, regret = [], []
    for i, cap in enumerate(caps):
        problem = Problem.create(
            table.n_arms, table.n_datapoints, seed=42 + i, budget_usd=cap, arms=table.combos
        )
        st = run_replay(get_strategy("auto"), data, problem, BudgetUSD(cap), track_stats=False)
        m = float(means[int(st.best if st.best is not None else 0)])
        found.append(m >= best - 1e-12)
        regret.append(best - m)
    return {"found_best": float(np.mean(found)), "regret": 100 * float(np.mean(regret))}


def equal_budget(seeds: int) -> None:
    """Where the money goes: the published rule spends unevenly across seeds. Per
    table: the rule uncapped (its spend per seed varies), ``auto`` and the rule held
    to the rule's mean spend on every seed, and ``auto`` given, seed by seed, exactly
    what the rule spent on that seed (the same money *and* the same unevenness)."""
    ref_m = "agentopt_arm_elimination"
    print(f"found best % / regret (points), {seeds} seeds")
    for name in TABLES:
        table = _table(name)
        data = ReplayData.from_table(table)
        ref = run_method(table, ref_m, seeds=seeds, data=data)
        costs = [float(c) for c in ref["costs"]]
        cap = float(ref["mean_cost_usd"])
        auto = run_method(table, "auto", seeds=seeds, data=data, budget_usd=cap)
        capped = run_method(table, ref_m, seeds=seeds, data=data, budget_usd=cap)
        per = _per_seed(table, data, costs)
        print(
            f"{name:9s} rule uncapped (spend ${min(costs):.2f}…${max(costs):.2f}, mean "
            f"${cap:.2f}): {100 * ref['found_best']:.0f} / {100 * ref['mean_regret']:.3f}"
            f" | at the mean on every seed: auto {100 * auto['found_best']:.0f} / "
            f"{100 * auto['mean_regret']:.3f}, rule {100 * capped['found_best']:.0f} / "
            f"{100 * capped['mean_regret']:.3f} | auto at the rule's own spend per seed: "
            f"{100 * per['found_best']:.0f} / {per['regret']:.3f}"
        )


def paired_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of ``a − b`` over paired runs (independent shuffles) and the half-width
    of its 95 % normal interval (1.96 standard errors; 0 for one run)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    half = 1.96 * float(d.std(ddof=1)) / np.sqrt(d.size) if d.size > 1 else 0.0
    return float(d.mean()), half


def equal_budget_sets(seeds: int, sets: int) -> None:
    """The equal-budget comparison repeated on ``sets`` disjoint sets of ``seeds``
    shuffles (seeds 42…, 42 + seeds…, …): each set gives ``auto`` the rule's mean
    spend on that set. How often one set of 50 seeds says "auto finds the best at
    least as often" is itself a draw; the pooled rates are the comparison, and the
    paired differences over every seed (auto − rule, the same shuffle) come with a
    95 % interval: an interval that contains 0 is a difference the seeds cannot
    tell from the draw."""
    ref_m = "agentopt_arm_elimination"
    print(f"found best % / regret (points), {sets} sets × {seeds} seeds, each at the rule's spend")
    for name in TABLES:
        table = _table(name)
        data = ReplayData.from_table(table)
        means = table.mean_scores("skip")
        top = float(np.nanmax(means))
        fa, ra, fr, rr, wins = [], [], [], [], 0
        found: dict[str, list[float]] = {"auto": [], "rule": []}
        regret: dict[str, list[float]] = {"auto": [], "rule": []}
        for base in range(42, 42 + sets * seeds, seeds):
            ref = run_method(table, ref_m, seeds=seeds, data=data, base_seed=base)
            cap = float(ref["mean_cost_usd"])
            auto = run_method(table, "auto", seeds=seeds, data=data, budget_usd=cap, base_seed=base)
            for key, row in (("auto", auto), ("rule", ref)):
                pm = means[np.asarray(row["picks"])]
                found[key].extend((pm >= top - 1e-12).astype(float))
                regret[key].extend(100 * (top - pm))
            fa.append(auto["found_best"])
            ra.append(auto["mean_regret"])
            fr.append(ref["found_best"])
            rr.append(ref["mean_regret"])
            wins += fa[-1] >= fr[-1] - 1e-9 and ra[-1] <= rr[-1] + 1e-12
        df, hf = paired_difference(np.asarray(found["auto"]), np.asarray(found["rule"]))
        dr, hr = paired_difference(np.asarray(regret["auto"]), np.asarray(regret["rule"]))
        print(
            f"{name:9s} auto {100 * np.mean(fa):.1f} / {100 * np.mean(ra):.3f}, rule "
            f"{100 * np.mean(fr):.1f} / {100 * np.mean(rr):.3f}; sets where auto is at least "
            f"as good on both: {wins} of {sets}; found best per set: auto "
            f"{[round(100 * x) for x in fa]}, rule {[round(100 * x) for x in fr]}; "
            f"auto − rule over {len(found['auto'])} paired seeds: found best "
            f"{100 * df:+.1f} ± {100 * hf:.1f} points, regret {dr:+.3f} ± {hr:.3f} (95 %)"
        )


def budget_misses(name: str, seeds: int, sets: int) -> dict[str, Any]:
    """Why ``auto`` misses on ``name`` at the rule's mean spend (the seed sets of
    :func:`equal_budget_sets`): how many misses end with the best arm still alive,
    the money gone before it saw every datapoint, and how many datapoints short."""
    table = _table(name)
    data = ReplayData.from_table(table)
    means = table.mean_scores("skip")
    best_arm = int(np.nanargmax(means))
    misses, short = 0, []
    for base in range(42, 42 + sets * seeds, seeds):
        cap = float(
            run_method(table, "agentopt_arm_elimination", seeds=seeds, data=data, base_seed=base)[
                "mean_cost_usd"
            ]
        )
        for k in range(base, base + seeds):
            problem = Problem.create(table.n_arms, table.n_datapoints, seed=k, budget_usd=cap)
            s = AutoStrategy()
            st = run_replay(s, data, problem, BudgetUSD(cap), track_stats=False)
            if means[int(st.best if st.best is not None else 0)] >= means[best_arm] - 1e-12:
                continue
            misses += 1
            if best_arm in s.alive():
                short.append(table.n_datapoints - int(s.pos[best_arm]))
    print(
        f"{name}: {misses} misses in {sets * seeds} seeds; {len(short)} end with the best arm"
        f" alive, short of the end by {sorted(short)} datapoints"
    )
    return {"misses": misses, "best_alive": len(short), "short": sorted(short)}


def calibration(seeds: int, fractions: list[float]) -> dict[str, Any]:
    """auto under budgets: among picks the results call ≥ 90 % likely best, how many are."""
    rows: list[dict[str, Any]] = []
    for name in TABLES:
        table = _table(name)
        data = ReplayData.from_table(table)
        means = table.mean_scores("skip")
        best = float(np.nanmax(means))
        for f in fractions:
            budget = f * table.total_cost()
            for k in range(42, 42 + seeds):
                problem = Problem.create(
                    table.n_arms, table.n_datapoints, seed=k, budget_usd=budget
                )
                s = AutoStrategy()
                st = run_replay(s, data, problem, BudgetUSD(budget))
                pick = int(st.best if st.best is not None else 0)
                c = assess_selection(s, st, confidence=0.95, epsilon=0.0, draws=300, seed=k)
                rows.append(
                    {
                        "data": name,
                        "fraction": f,
                        "kind": c.kind,
                        "p_best": c.p_best,
                        "p_within": c.p_within,
                        "found": bool(means[pick] >= best - 1e-12),
                        "within": bool(means[pick] >= best - c.epsilon - 1e-12),
                    }
                )
    est = [r for r in rows if r["kind"] == "estimate"]
    cert = [r for r in rows if r["kind"] in ("certified", "exact")]
    print(f"{len(rows)} runs: {len(est)} estimates, {len(cert)} certified or exact")
    print(f"{'P(best) said':>14s} {'runs':>5s} {'mean said':>9s} {'found':>6s}")
    for lo, hi in ((0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 0.95), (0.95, 1.01)):
        sel = [r for r in est if lo <= r["p_best"] < hi]
        if sel:
            print(
                f"{f'[{lo:.2f}, {min(hi, 1):.2f})':>14s} {len(sel):5d} "
                f"{100 * np.mean([r['p_best'] for r in sel]):8.0f}% "
                f"{100 * np.mean([r['found'] for r in sel]):5.0f}%"
            )
    hi_best = [r for r in est if r["p_best"] >= 0.9]
    hi_within = [r for r in est if r["p_within"] >= 0.9]
    summary = {
        "runs": len(rows),
        "estimates": len(est),
        "called_90_best": len(hi_best),
        "found_among_them": float(np.mean([r["found"] for r in hi_best])) if hi_best else None,
        "called_90_within": len(hi_within),
        "within_among_them": (
            float(np.mean([r["within"] for r in hi_within])) if hi_within else None
        ),
        "certified_found": float(np.mean([r["found"] for r in cert])) if cert else None,
    }
    print(json.dumps(summary))
    return summary


def epsilon_check(seeds: int, epsilon: float) -> None:
    """auto at ε = 0 and ε > 0 on the same seeds: evaluations, savings, ε-good."""
    print(f"auto at confidence 0.95, ε = 0 vs ε = {epsilon:g}, {seeds} seeds")
    for name in TABLES:
        table = _table(name)
        data = ReplayData.from_table(table)
        means = table.mean_scores("skip")
        best = float(np.nanmax(means))
        e0, e1, c0, c1, good, more = [], [], [], [], [], 0
        for k in range(42, 42 + seeds):
            p = Problem.create(table.n_arms, table.n_datapoints, seed=k)
            a = run_replay(get_strategy("auto"), data, p)
            b = run_replay(get_strategy("auto", epsilon=epsilon), data, p)
            e0.append(a.evaluations)
            e1.append(b.evaluations)
            c0.append(a.spent_usd)
            c1.append(b.spent_usd)
            more += b.evaluations > a.evaluations
            good.append(means[int(b.best or 0)] >= best - epsilon - 1e-12)
        total = table.total_cost()
        print(
            f"{name:9s} evaluations {np.mean(e0):7.0f} → {np.mean(e1):7.0f}; savings "
            f"{100 * (1 - np.mean(c0) / total):5.1f}% → {100 * (1 - np.mean(c1) / total):5.1f}%; "
            f"ε-good {100 * np.mean(good):.0f}%; seeds where ε costs more: {more}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--epsilon", type=float, default=0.01)
    ap.add_argument("--json", default=None)
    ap.add_argument("--frontier", default=None, help="comma-separated confidences for auto")
    ap.add_argument("--frontier-plot", default=None, help="write the frontier PNG here")
    ap.add_argument("--calibration", action="store_true")
    ap.add_argument(
        "--budget-misses", default=None, metavar="TABLE", help="why auto misses at the rule's money"
    )
    ap.add_argument("--epsilon-check", action="store_true")
    ap.add_argument("--equal-budget", action="store_true", help="where the money goes")
    ap.add_argument(
        "--equal-budget-sets", type=int, default=0, help="the equal-budget table on N seed sets"
    )
    args = ap.parse_args()
    if args.frontier:
        frontier([float(c) for c in args.frontier.split(",")], args.seeds, args.epsilon)
        return
    if args.frontier_plot:
        pts = frontier_plot(args.frontier_plot, args.seeds)
        if args.json:
            Path(args.json).write_text(json.dumps(pts, indent=2) + "\n")
        return
    if args.budget_misses:
        budget_misses(args.budget_misses, args.seeds, 8)
        return
    if args.calibration:
        calibration(args.seeds, [0.1, 0.2, 0.3, 0.5, 0.7])
        return
    if args.epsilon_check:
        epsilon_check(args.seeds, args.epsilon)
        return
    if args.equal_budget:
        equal_budget(args.seeds)
        return
    if args.equal_budget_sets:
        equal_budget_sets(args.seeds, args.equal_budget_sets)
        return

    t_all = time.perf_counter()
    rows = []
    for name in TABLES:
        table = _table(name)
        data = ReplayData.from_table(table)
        pub = published(name)
        print(
            f"\n{name}: {table.n_arms} arms × {table.n_datapoints} datapoints, {args.seeds} seeds"
        )
        print(
            f"{'method':26s} {'found':>6s} {'ε-good':>7s} {'regret':>7s} {'evals':>7s} "
            f"{'cost $':>9s} {'savings':>8s} {'cpu s':>6s}"
        )
        for m in METHODS:
            r = run_method(table, m, seeds=args.seeds, epsilon=args.epsilon, data=data)
            rows.append({k: r[k] for k in RESULT_KEYS})
            print(
                f"{m:26s} {100 * r['found_best']:5.0f}% {100 * r['epsilon_good']:6.0f}% "
                f"{100 * r['mean_regret']:7.2f} {r['mean_evaluations']:7.0f} "
                f"{r['mean_cost_usd']:9.3f} {100 * r['savings']:7.1f}% {r['cpu_seconds']:6.2f}"
            )
            if m == "agentopt_arm_elimination":
                df = 100 * (r["found_best"] - pub["found_best"])
                ds = 100 * (r["savings"] - pub["savings"])
                ok = abs(df) <= 10 and abs(ds) <= 3
                print(
                    f"{'':26s} published: found {100 * pub['found_best']:.0f}%, savings "
                    f"{100 * pub['savings']:.1f}% → Δ found {df:+.0f}, Δ savings {ds:+.1f} "
                    f"({'faithful' if ok else 'OUTSIDE the 10/3-point band'})"
                )
    wall = time.perf_counter() - t_all
    print(f"\nwhole comparison: {wall:.1f} s wall")
    print("\nstrategy + loop CPU per evaluation, 100 arms × 300 datapoints:")
    for m, s in strategy_cpu_per_evaluation().items():
        print(f"  {m:26s} {1e6 * s:8.1f} µs")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
