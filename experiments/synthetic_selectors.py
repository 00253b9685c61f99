"""Equal-budget selection on synthetic tables that are not the agentopt-bench recordings.

    .venv/bin/python experiments/synthetic_selectors.py                # 15 settings
    .venv/bin/python experiments/synthetic_selectors.py --tables 4 --seeds 5 --kinds rare,close
    .venv/bin/python experiments/synthetic_selectors.py --per-seed     # the rule's spend run by run
    .venv/bin/python experiments/synthetic_selectors.py --calibration --tables 4 --seeds 5
    .venv/bin/python experiments/synthetic_selectors.py --random-tables 0:160   # a broader family

The question of ``agentopt bench selectors --budget-of agentopt_arm_elimination``
asked where the four recordings cannot be fitted: per table, ``auto`` gets the
published rule's *mean* dollar spend over the same seeds (the rule uncapped),
and the two are compared on found-best and mean regret (points). Settings: five
kinds of table × 9, 30 and 81 arms, 200 datapoints, 5 % missing cells (skipped),
per-arm prices log-normal (sd 1.2) and dearer for better arms, ±20 % per cell:

- ``indep``: 0/1 scores, independent across arms, means in [0.3, 0.85];
- ``corr``: 0/1 scores with a per-datapoint difficulty shared by every arm;
- ``rare``: as ``corr`` with means in [0.93, 0.995] (rare failures);
- ``close``: as ``corr``, three arms within one point of each other, three
  points above the rest (a close race at the top);
- ``cont``: continuous scores in [0, 1] (a shared difficulty plus noise).

Each table is drawn from its own seed; the datapoint order of run s is
``Problem.create(seed=100 + s)``. Deterministic; CPU only.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator

import numpy as np
from scipy.stats import norm

from agentopt.selectors.auto import AutoStrategy
from agentopt.selectors.base import Problem, Strategy
from agentopt.selectors.certainty import assess_selection
from agentopt.selectors.registry import get_strategy
from agentopt.selectors.replay import ReplayData, run_replay
from agentopt.selectors.stopping import BudgetUSD

KINDS = ("indep", "corr", "rare", "close", "cont")
ARMS = (9, 30, 81)


def synthetic_table(kind: str, k: int, n: int, rng: np.random.Generator) -> ReplayData:
    """One synthetic table (see the module docstring)."""
    if kind == "indep":
        mu = rng.uniform(0.3, 0.85, k)
        score = (rng.random((k, n)) < mu[:, None]).astype(float)
    elif kind in ("corr", "rare", "close"):
        if kind == "rare":
            mu = rng.uniform(0.93, 0.995, k)
        elif kind == "close":
            mu = rng.uniform(0.4, 0.75, k)
            top = mu.max() + 0.03
            mu[rng.choice(k, 3, replace=False)] = top - rng.uniform(0, 0.01, 3)
        else:
            mu = rng.uniform(0.3, 0.85, k)
        hard = rng.normal(size=n)
        latent = 0.7 * hard[None, :] + 0.714 * rng.normal(size=(k, n))
        score = (latent < norm.ppf(mu)[:, None]).astype(float)
    elif kind == "cont":
        mu = rng.uniform(0.3, 0.8, k)
        shared = rng.normal(0, 0.15, n)
        score = np.clip(mu[:, None] + shared[None, :] + rng.normal(0, 0.2, (k, n)), 0, 1)
    else:
        raise SystemExit(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    price = np.exp(rng.normal(0, 1.2, k) + (mu - mu.mean()) / (mu.std() + 1e-9)) * 1e-3
    cost = price[:, None] * np.exp(rng.normal(0, 0.2, (k, n)))
    present = rng.random((k, n)) > 0.05
    return ReplayData(
        score=score, cost=cost, latency=np.ones((k, n)), present=present, missing="skip"
    )


def _run(
    data: ReplayData, seed: int, method: Callable[[], Strategy], cap: float | None
) -> tuple[int, float]:
    k, n = data.score.shape
    problem = Problem.create(k, n, seed=seed, budget_usd=cap)
    stop = None if cap is None else BudgetUSD(cap)
    st = run_replay(method(), data, problem, stop, track_stats=False)
    return int(st.best if st.best is not None else 0), st.spent_usd


def _versus_rule(
    data: ReplayData,
    method: Callable[[], Strategy],
    seeds: range,
    *,
    per_seed: bool = False,
) -> tuple[float, float, float, float]:
    """``method`` against the published rule on one table, over ``seeds``: found best
    (%) and mean regret (points) of the method, then of the rule. The rule runs
    uncapped; the method gets its mean spend (``per_seed``: its spend on each run)."""
    rule: Callable[[], Strategy] = lambda: get_strategy("agentopt_arm_elimination")  # noqa: E731
    means = np.nanmean(np.where(data.present, data.score, np.nan), axis=1)
    best = float(np.nanmax(means))
    ref = [_run(data, s, rule, None) for s in seeds]
    cap = float(np.mean([c for _, c in ref]))
    picks = [
        _run(data, s, method, c if per_seed else cap)[0]
        for s, (_, c) in zip(seeds, ref, strict=True)
    ]
    ours = np.asarray([means[p] for p in picks])
    theirs = np.asarray([means[p] for p, _ in ref])
    return (
        100 * float(np.mean(ours >= best - 1e-12)),
        100 * float(np.mean(best - ours)),
        100 * float(np.mean(theirs >= best - 1e-12)),
        100 * float(np.mean(best - theirs)),
    )


def random_table(seed: int) -> tuple[ReplayData, str]:
    """One table of a broader, random family (its seed fixes everything): 4–81 arms,
    50–400 datapoints, 0/1, continuous or rare-failure scores with a shared
    difficulty, log-normal prices with about one arm in ten free, and up to 30 %
    missing cells on half the arms."""
    rng = np.random.default_rng(seed)
    k = int(rng.choice([4, 9, 16, 25, 49, 81]))
    n = int(rng.choice([50, 100, 200, 400]))
    kind = str(rng.choice(["bin", "cont", "rare"]))
    mu = rng.uniform(0.85, 0.99, k) if kind == "rare" else rng.uniform(0.2, 0.9, k)
    hard = rng.normal(size=n)
    if kind == "cont":
        score = np.clip(mu[:, None] + 0.15 * hard[None, :] + rng.normal(0, 0.2, (k, n)), 0, 1)
    else:
        latent = 0.6 * hard[None, :] + 0.8 * rng.normal(size=(k, n))
        score = (latent < norm.ppf(mu)[:, None]).astype(float)
    price = np.exp(rng.normal(0, 1.5, k)) * 1e-3
    price[rng.random(k) < 0.1] = 0.0
    cost = price[:, None] * np.exp(rng.normal(0, 0.3, (k, n)))
    miss = rng.uniform(0, 0.3, k) * (rng.random(k) < 0.5)
    present = rng.random((k, n)) > miss[:, None]
    data = ReplayData(
        score=score, cost=cost, latency=np.ones((k, n)), present=present, missing="skip"
    )
    return data, f"{k} arms × {n} datapoints, {kind}"


def random_tables(first: int, last: int, seeds: int = 50) -> tuple[float, int]:
    """``auto`` at the published rule's mean spend on random tables ``first`` …
    ``last − 1`` (:func:`random_table`), ``seeds`` shuffles each: one line per
    table (flagged when ``auto`` finds the best 10 points less often or has a
    regret 1 point higher); returns the mean found-best difference (points) and
    the number flagged."""
    auto: Callable[[], Strategy] = lambda: get_strategy("auto")  # noqa: E731
    diffs: list[float] = []
    regrets: list[float] = []
    flagged = 0
    for t in range(first, last):
        data, what = random_table(t)
        fa, ra, fr, rr = _versus_rule(data, auto, range(seeds))
        flag = fa < fr - 10 or ra > rr + 1.0
        flagged += flag
        diffs.append(fa - fr)
        regrets.append(ra - rr)
        print(
            f"table {t:3d} ({what:32s}): auto {fa:3.0f} / {ra:.3f} | rule {fr:3.0f} / {rr:.3f}"
            f"{'  <<<' if flag else ''}",
            flush=True,
        )
    mean = float(np.mean(diffs)) if diffs else float("nan")
    half = 1.96 * float(np.std(diffs, ddof=1)) / np.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
    print(
        f"{len(diffs)} tables: found best, auto − rule {mean:+.1f} ± {half:.1f} points (95 %, over"
        f" tables); regret, auto − rule {float(np.mean(regrets)):+.3f} points; auto at least as"
        f" good on both in {sum(d >= 0 and r <= 1e-12 for d, r in zip(diffs, regrets, strict=True))};"
        f" flagged {flagged}"
    )
    return mean, flagged


def settings(kinds: tuple[str, ...], tables: int) -> Iterator[tuple[str, int, list[ReplayData]]]:
    for kind in kinds:
        for k in ARMS:
            rngs = [
                np.random.default_rng(1000 * k + i + 7 * KINDS.index(kind)) for i in range(tables)
            ]
            yield kind, k, [synthetic_table(kind, k, 200, r) for r in rngs]


def equal_budget(
    method: Callable[[], Strategy],
    kinds: tuple[str, ...],
    tables: int,
    seeds: int,
    *,
    per_seed: bool = False,
) -> int:
    """Print one line per setting; return how many settings miss the target.

    ``per_seed``: give ``method``, run by run, exactly what the rule spent on that
    run (the same money *and* the rule's unevenness across seeds) instead of the
    rule's mean spend over the table's seeds. The interval on the found-best
    difference is over tables (each table's mean over its seeds), since the
    seeds of one table are not independent of each other."""
    missed = 0
    money = "the rule's spend on each run" if per_seed else "the rule's mean spend per table"
    print(f"found best % / mean regret (points); {tables} tables × {seeds} seeds; {money}")
    for kind, k, tabs in settings(kinds, tables):
        # per table: found best (%) and regret (points), the method's then the rule's
        rows = np.asarray(
            [_versus_rule(d, method, range(100, 100 + seeds), per_seed=per_seed) for d in tabs]
        )
        fa, ra, fr, rr = rows.mean(axis=0)
        diffs = rows[:, 0] - rows[:, 2]
        ok = fa >= fr - 1e-9 and ra <= rr + 1e-9
        missed += not ok
        half = 1.96 * float(np.std(diffs, ddof=1)) / np.sqrt(tables) if tables > 1 else 0.0
        print(
            f"{kind:6s} {k:3d} arms: auto {fa:3.0f} / {ra:.3f} | rule {fr:3.0f} / {rr:.3f}"
            f"  {'met' if ok else 'MISSED'}"
            f"  (found best, auto − rule: {float(np.mean(diffs)):+.1f} ± {half:.1f} points)",
            flush=True,
        )
    print(f"settings missed: {missed} of {len(kinds) * len(ARMS)}")
    return missed


def calibration_rows(
    kinds: tuple[str, ...], tables: int, seeds: int, fractions: tuple[float, ...]
) -> list[tuple[str, str, float | None, bool]]:
    """``auto`` under budgets of ``fractions`` of brute force, one row per run:
    (table kind, certainty kind, estimated P(best) or None, whether the pick is the best)."""
    rows: list[tuple[str, str, float | None, bool]] = []
    for kind, k, tabs in settings(kinds, tables):
        for data in tabs:
            n = data.score.shape[1]
            means = np.nanmean(np.where(data.present, data.score, np.nan), axis=1)
            best = float(means.max())
            total = float(np.sum(np.where(data.present, data.cost, 0.0)))
            for f in fractions:
                for s in range(seeds):
                    problem = Problem.create(k, n, seed=100 + s, budget_usd=f * total)
                    a = AutoStrategy()
                    st = run_replay(a, data, problem, BudgetUSD(f * total))
                    pick = int(st.best if st.best is not None else 0)
                    c = assess_selection(a, st, confidence=0.95, epsilon=0.0, draws=300, seed=s)
                    rows.append((kind, c.kind, c.p_best, bool(means[pick] >= best - 1e-12)))
    return rows


def calibration_summary(rows: list[tuple[str, str, float | None, bool]]) -> dict[str, float]:
    """Per table kind and overall (``all``): among the estimates that say P(best) ≥ 90 %,
    the share whose pick is the best (NaN: none said so); ``certified``: the share
    right among the certified or exact picks. Printed as it goes."""
    out: dict[str, float] = {}
    kinds = list(dict.fromkeys(r[0] for r in rows))
    est = [r for r in rows if r[1] == "estimate" and r[2] is not None]
    for kind in [*kinds, "all"]:
        mine = [r for r in est if kind in ("all", r[0])]
        hi = [found for _, _, p, found in mine if p is not None and p >= 0.9]
        out[kind] = float(np.mean(hi)) if hi else float("nan")
        said = np.mean([r[2] for r in mine]) if mine else float("nan")
        best = np.mean([r[3] for r in mine]) if mine else float("nan")
        print(
            f"{kind:6s} estimates {len(mine):4d} (said {100 * said:.0f} % on average, best"
            f" {100 * best:.0f} %); said ≥ 90 %: {len(hi):4d}, of which best {100 * out[kind]:.1f} %"
        )
    cert = [found for _, c, _, found in rows if c != "estimate"]
    out["certified"] = float(np.mean(cert)) if cert else float("nan")
    print(f"certified or exact: {len(cert)}, of which best {100 * out['certified']:.1f} %")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tables", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument(
        "--per-seed",
        action="store_true",
        help="give auto, run by run, what the rule spent on that run (not the mean)",
    )
    ap.add_argument(
        "--random-tables",
        default=None,
        metavar="FIRST:LAST",
        help="auto vs the rule on random tables FIRST..LAST-1 (random_table), 50 seeds each",
    )
    ap.add_argument(
        "--calibration",
        action="store_true",
        help="is 'P(best) >= 90 %%' right? auto under budgets of 10-70 %% of brute force",
    )
    args = ap.parse_args()
    if args.random_tables:
        first, last = (int(x) for x in args.random_tables.split(":"))
        random_tables(first, last)
        return
    if args.calibration:
        fractions = (0.1, 0.3, 0.5, 0.7)
        print(
            f"auto under budgets of {', '.join(f'{f:g}' for f in fractions)} × brute force;"
            f" {args.tables} tables × {args.seeds} seeds × {len(ARMS)} sizes per kind"
        )
        kinds = tuple(args.kinds.split(","))
        calibration_summary(calibration_rows(kinds, args.tables, args.seeds, fractions))
        return
    equal_budget(
        lambda: get_strategy("auto"),
        tuple(args.kinds.split(",")),
        args.tables,
        args.seeds,
        per_seed=args.per_seed,
    )


if __name__ == "__main__":
    main()
