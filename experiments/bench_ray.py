"""Selections on Ray: evaluations per second with 1, 2 and 4 local workers, and the
overhead each Ray task adds.

A simulated 200-arm × 200-datapoint selection (one node with 200 simulated models,
200 arithmetic questions, ``method="auto"``) whose agent makes one LLM call of
200 ms (the simulator at time scale 1) per run. Each worker count gets its own
local Ray (``ray.init(num_cpus=W)``, one CPU per task, ``max_concurrent=W``), a
warm-up of ``W`` evaluations (worker processes start and import the agent),
then ``--per-worker × W`` timed evaluations (``max_evaluations`` bounds the run;
a full selection is tens of thousands of evaluations). The same is run with the
local executor (threads, ``max_concurrent=W``) for reference. The overhead per
task is ``W × wall / evaluations − 0.2 s``, and separately the wall time per
evaluation of a zero-latency agent on one worker.

Usage: ``.venv/bin/python experiments/bench_ray.py [--per-worker 60] [--workers 1,2,4]``
"""

from __future__ import annotations

import argparse
import os
import re
import time
from typing import Any

import openai
import ray

from agentopt import LLMTracker, ModelSelector, RayExecutor, SimServer
from agentopt.sim.tasks import load_task

N_ARMS = 200
N_DATA = 200
LATENCY_S = 0.2


def world() -> dict[str, Any]:
    models = [
        {
            "name": f"m{i:03d}",
            "skills": {"arithmetic": 0.3 + 0.6 * i / N_ARMS},
            "latency": {"ttft_s": LATENCY_S, "ttft_sigma": 0.0, "per_token_s": 0.0},
            "output_tokens": {"median": 40, "sigma": 0.0},
        }
        for i in range(N_ARMS)
    ]
    return {"name": "bench-ray", "seed": 0, "models": models}


class Agent:
    """One chat call per run (the URL travels as a class attribute)."""

    url = ""

    def __init__(self, combo: dict[str, str]) -> None:
        self.model = combo["solver"]

    def run(self, question: str) -> str:
        # a client per run (a module-level cache would travel, pickled, to the workers)
        client = openai.OpenAI(base_url=self.url, api_key="x", max_retries=0)
        r = client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": question}]
        )
        return r.choices[0].message.content or ""


def eval_fn(expected: str, actual: str) -> float:
    found = re.findall(r"Answer:\s*(-?\d+)", actual or "")
    return float(bool(found) and found[-1] == expected)


def run(executor: Any, url: str, workers: int, evaluations: int) -> tuple[float, int]:
    """Seconds and evaluations of one capped selection."""
    agent = type("Agent", (Agent,), {"url": url})
    data = [(t.prompt, t.answer) for t in load_task("arithmetic")[:N_DATA]]
    prices = {f"m{i:03d}": {"input": 0.1 + i / 100, "output": 0.4 + i / 50} for i in range(N_ARMS)}
    with LLMTracker(cache=False, cache_dir=None) as tracker:
        sel = ModelSelector(
            agent=agent,
            models={"solver": [f"m{i:03d}" for i in range(N_ARMS)]},
            eval_fn=eval_fn,
            dataset=data,
            seed=0,
            max_evaluations=evaluations,
            model_prices=prices,
            executor=executor,
            tracker=tracker,
        )
        t0 = time.perf_counter()
        res = sel.select_best(max_concurrent=workers, progress=False)
        wall = time.perf_counter() - t0
        assert len(tracker.records) == res.evaluations, "every evaluation's call reached the driver"
    return wall, res.evaluations


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-worker", type=int, default=60)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    print(f"{N_ARMS} arms × {N_DATA} datapoints, agent latency {LATENCY_S * 1000:.0f} ms per call")
    with (
        SimServer(world(), time_scale=1.0, seed=0) as sim,
        SimServer(world(), time_scale=0.0, seed=0) as instant,
    ):
        for w in (int(x) for x in args.workers.split(",")):
            n = args.per_worker * w
            ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False)
            try:
                run(RayExecutor(), sim.openai_base_url, w, w)  # warm-up: workers start
                wall, done = run(RayExecutor(), sim.openai_base_url, w, n)
                overhead = w * wall / done - LATENCY_S
                print(
                    f"ray,   {w} worker(s): {done / wall:6.2f} evaluations/s "
                    f"({done} in {wall:.1f} s; ideal {w / LATENCY_S:.1f}/s; "
                    f"overhead {overhead * 1000:.0f} ms per task)"
                )
                if w == 1:
                    run(RayExecutor(), instant.openai_base_url, 1, 4)
                    wall0, done0 = run(RayExecutor(), instant.openai_base_url, 1, n)
                    print(
                        f"ray,   1 worker, zero-latency agent: {wall0 / done0 * 1000:.0f} ms "
                        f"per evaluation ({done0} in {wall0:.1f} s)"
                    )
            finally:
                ray.shutdown()
            wall, done = run("local", sim.openai_base_url, w, n)
            print(
                f"local, {w} thread(s):  {done / wall:6.2f} evaluations/s ({done} in {wall:.1f} s)"
            )
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
