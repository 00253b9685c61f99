"""Live ModelSelector: its own overhead per evaluation, and the demo end to end.

    .venv/bin/python experiments/bench_selector_live.py [--skip-demo]

1. Overhead: a no-op agent (no LLM call) under the real LLMTracker, brute force
   over 10 arms × 200 datapoints, sync and async, parallel and not: the wall time
   per evaluation is what the selector itself adds (session, threads, scoring,
   bookkeeping) on top of the agent.
2. The demo (`agentopt demo`): planner → solver over 150 arithmetic problems
   against the simulated provider, method="auto": wall time, evaluations and
   savings against brute force.

Figures on a shared 2-core machine are noisy; run it twice.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

from agentopt.selectors.selector import ModelSelector
from agentopt.tracking.tracker import LLMTracker


class SyncNoop:
    def __init__(self, combo: dict[str, str]) -> None:
        self.combo = combo

    def run(self, x: int) -> int:
        return x


class AsyncNoop(SyncNoop):
    async def run(self, x: int) -> int:  # type: ignore[override]
        return x


def overhead(agent: Any, parallel: bool, repeats: int = 3) -> float:
    """Median µs per evaluation over ``repeats`` runs of 2,000 evaluations."""
    times = []
    for _ in range(repeats):
        tracker = LLMTracker(cache=False, cache_dir=None)
        tracker.start()
        sel = ModelSelector(
            agent=agent,
            models={"solver": [f"m{i}" for i in range(10)]},
            eval_fn=lambda e, a: 1.0,
            dataset=[(i, i) for i in range(200)],
            method="brute_force",
            seed=0,
            tracker=tracker,
        )
        t0 = time.perf_counter()
        res = sel.select_best(parallel=parallel, progress=False)
        times.append((time.perf_counter() - t0) / res.evaluations)
        tracker.close()
    return statistics.median(times) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    print("selector overhead per evaluation (no-op agent, real tracker, 2,000 evaluations)")
    for name, agent in (("sync", SyncNoop), ("async", AsyncNoop)):
        for parallel in (False, True):
            us = overhead(agent, parallel)
            print(f"  {name:<5} parallel={parallel!s:<5}  {us:8.0f} µs / evaluation")
    if args.skip_demo:
        return
    from rich.console import Console

    from agentopt.demo import run_demo

    with tempfile.TemporaryDirectory() as tmp:
        out = run_demo(tmp, progress=False, console=Console(quiet=True))
    res = out.results
    total = res.n_datapoints * len(res.labels)
    print(
        f"demo (auto, {len(res.labels)} combos × {res.n_datapoints} problems): "
        f"{out.seconds:.1f} s wall, {res.evaluations}/{total} evaluations "
        f"({1 - res.evaluations / total:.0%} saved), cost ${res.selection_cost:.4f}"
        + (
            f" vs brute force ≈ ${res.brute_force_cost_estimate:.4f}"
            if res.brute_force_cost_estimate
            else ""
        )
        + f", best {res.get_best().label}"
    )


if __name__ == "__main__":
    main()
