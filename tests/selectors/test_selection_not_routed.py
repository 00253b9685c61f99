"""A selection evaluates the combination it names, even when its tracker routes."""

from __future__ import annotations

from typing import Any

import openai

from agentopt import LLMTracker, ModelSelector, SimServer
from agentopt.routers import Router


class AlwaysGPT4o(Router):
    """Sends every call to gpt-4o, whatever was asked."""

    def _choose(self, ctx: Any, allowed: Any) -> str:
        return "gpt-4o"


class Solver:
    def __init__(self, combo: dict[str, str], client: Any) -> None:
        self.combo, self.client = combo, client

    def run(self, question: str) -> str:
        r = self.client.chat.completions.create(
            model=self.combo["solver"], messages=[{"role": "user", "content": question}]
        )
        return str(r.choices[0].message.content)


def test_a_trackers_router_never_overrides_the_combination_under_evaluation() -> None:
    router = AlwaysGPT4o(["gpt-4o", "gpt-4.1-nano"], seed=0)
    with (
        SimServer("default", time_scale=0.0) as sim,
        LLMTracker(router=router, cache=False, cache_dir=None) as tracker,
    ):
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-sim", max_retries=0)
        with tracker.track(data_id="outside"):  # outside a selection the router routes
            r = client.chat.completions.create(
                model="gpt-4.1-nano", messages=[{"role": "user", "content": "hi"}]
            )
        assert r.model == "gpt-4o"
        selector = ModelSelector(
            agent=lambda combo: Solver(combo, client),
            models={"solver": ["gpt-4.1-nano", "gpt-4o"]},
            eval_fn=lambda expected, actual: float(expected in (actual or "")),
            dataset=[(f"What is {i}+1?", str(i + 1)) for i in range(4)],
            seed=0,
            tracker=tracker,
            method="brute_force",
        )
        selector.select_best(progress=False)
        records = [r for r in tracker.get_records() if r.data_id != "outside"]
    assert records
    for rec in records:
        assert rec.combo_id is not None
        assert rec.model == rec.requested_model, f"{rec.combo_id} ran {rec.model}"
        assert rec.combo_id.endswith(rec.model or "?")
