"""The two steps every example runs on its agent, written once.

1. :func:`select`: ``ModelSelector`` finds the best model for each node of the
   agent over the dataset (answers graded by ``grade_answer``).
2. :func:`route`: the agent answers each question in its own ``LLMTracker``
   session, where ``router`` picks the models, and each score is fed back.

Each example only builds its framework's agent and model objects and calls
these two; :func:`run_on_simulator` runs an example offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

from agentopt import LLMTracker, ModelSelector, SimServer
from agentopt.demo import grade_answer

Dataset = Sequence[tuple[str, Any]]


def select(
    agent: Callable[[dict[str, Any]], Any], models: dict[str, list[Any]], data: Dataset
) -> Any:
    """The best combination of ``models`` (node → candidates) for ``agent``; prints the table."""
    selector = ModelSelector(agent=agent, models=models, eval_fn=grade_answer, dataset=data, seed=0)
    results = selector.select_best(progress=False)
    results.print_summary()
    return results


def route(router: Any, run: Callable[[str], str | Awaitable[str]], data: Dataset) -> list[Any]:
    """Answer each question with ``run`` in a session routed by ``router`` and feed its
    score back; the calls' records. An async ``run`` runs on one event loop throughout
    (async clients keep their connections on the loop they first ran on)."""

    async def answer_all(tracker: LLMTracker) -> None:
        for i, (question, expected) in enumerate(data):
            with tracker.track(data_id=i):
                answer = await run(question)  # type: ignore[misc]
            tracker.feedback(data_id=i, score=grade_answer(expected, answer))

    with LLMTracker(router=router, cache=False, cache_dir=None) as tracker:
        if inspect.iscoroutinefunction(run):
            asyncio.run(answer_all(tracker))
        else:
            for i, (question, expected) in enumerate(data):
                with tracker.track(data_id=i):
                    answer = run(question)
                tracker.feedback(data_id=i, score=grade_answer(expected, answer))
        records = tracker.get_records()
    print(router.stats()["arms"])
    return records


@contextlib.contextmanager
def scoped_env(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables the user has not set, for this block only."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def run_on_simulator(main: Callable[[str], Any]) -> None:
    """Run an example's ``main(base_url)`` against the simulated provider."""
    with SimServer("default", time_scale=0.0) as sim:
        main(sim.openai_base_url)
