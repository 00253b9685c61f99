"""The live evaluator: sessions, pricing from records, failures, concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from agentopt.exceptions import EvaluationError
from agentopt.pricing import PriceBook
from agentopt.records import CallRecord
from agentopt.selectors.run.evaluator import LiveEvaluator, check_score, observation_from_records

_session: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "fake_session", default=None
)


class FakeTracker:
    """Records 'calls' made inside track() with the session's ids, like LLMTracker."""

    def __init__(self) -> None:
        self.recs: list[CallRecord] = []
        self.feedbacks: list[tuple[str, float, str | None]] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def track(self, data_id: str | None = None, combo_id: str | None = None) -> Iterator[None]:
        token = _session.set((str(data_id), str(combo_id)))
        try:
            yield None
        finally:
            _session.reset(token)

    def call(self, model: str, tin: int, tout: int, cost: float | None, latency: float) -> None:
        ids = _session.get()
        with self._lock:
            self.recs.append(
                CallRecord(
                    data_id=ids[0] if ids else None,
                    combo_id=ids[1] if ids else None,
                    model=model,
                    requested_model=model,
                    prompt_tokens=tin,
                    completion_tokens=tout,
                    cost_usd=cost,
                    latency_seconds=latency,
                )
            )

    def get_records(self, data_id: str | None = None, combo_id: str | None = None) -> list[Any]:
        with self._lock:
            return [r for r in self.recs if r.data_id == data_id and r.combo_id == combo_id]

    def feedback(self, *, data_id: str, score: float, combo_id: str | None = None) -> None:
        self.feedbacks.append((data_id, score, combo_id))


def _evaluator(agent: Any, eval_fn: Any, tracker: FakeTracker, **kw: Any) -> LiveEvaluator:
    combos = [{"solver": "a"}, {"solver": "b"}]
    return LiveEvaluator(
        factory=agent,
        combos=combos,
        labels=combos,
        dataset=[(i, i % 2) for i in range(6)],
        eval_fn=eval_fn,
        tracker=tracker,
        **kw,
    )


# ----------------------------------------------------------------- check_score
@pytest.mark.parametrize(
    ("raw", "want"), [(True, 1.0), (0, 0.0), (0.25, 0.25), (1, 1.0), (np.float32(0.5), 0.5)]
)
def test_check_score_accepts_numbers_in_unit_interval(raw: object, want: float) -> None:
    assert check_score(raw) == want


@pytest.mark.parametrize("raw", [1.5, -0.1, math.nan, math.inf, "high", "1", b"0", None])
def test_check_score_rejects_out_of_range_and_non_numbers(raw: object) -> None:
    with pytest.raises(EvaluationError, match="eval_fn returned"):
        check_score(raw)


# ----------------------------------------------------------------- pricing
def test_outcome_sums_cost_tokens_and_latency_of_the_records() -> None:
    recs = [
        CallRecord(
            model="m", prompt_tokens=10, completion_tokens=5, cost_usd=0.01, latency_seconds=1.0
        ),
        CallRecord(
            model="m", prompt_tokens=20, completion_tokens=1, cost_usd=0.02, latency_seconds=0.5
        ),
    ]
    out = observation_from_records(recs, price_book=None, wall_seconds=9.0)
    assert out.cost_usd == pytest.approx(0.03)
    assert (out.input_tokens, out.output_tokens, out.n_calls) == (30, 6, 2)
    assert out.latency_seconds == pytest.approx(1.5)


def test_one_unpriced_call_makes_the_cost_unknown_not_zero() -> None:
    recs = [
        CallRecord(model="m", prompt_tokens=10, completion_tokens=5, cost_usd=0.01),
        CallRecord(model="no-such-model-xyz", prompt_tokens=10, completion_tokens=5, cost_usd=None),
    ]
    assert observation_from_records(recs, price_book=None, wall_seconds=0).cost_usd is None


def test_user_prices_price_calls_the_default_map_cannot() -> None:
    book = PriceBook({"my-model": {"input": 1.0, "output": 2.0}})  # $ per million
    recs = [CallRecord(model="my-model", prompt_tokens=1_000_000, completion_tokens=500_000)]
    assert observation_from_records(
        recs, price_book=book, wall_seconds=0
    ).cost_usd == pytest.approx(2.0)


def test_cache_hits_are_priced_from_their_tokens() -> None:
    book = PriceBook({"my-model": {"input": 1.0, "output": 1.0}})
    recs = [CallRecord(model="my-model", prompt_tokens=1_000_000, cost_usd=0.0, cached=True)]
    assert observation_from_records(
        recs, price_book=book, wall_seconds=0
    ).cost_usd == pytest.approx(1.0)


def test_no_calls_cost_nothing_and_take_the_wall_time() -> None:
    out = observation_from_records([], price_book=None, wall_seconds=0.7)
    assert (out.cost_usd, out.latency_seconds, out.n_calls) == (0.0, 0.7, 0)


# ----------------------------------------------------------------- evaluate
class SyncAgent:
    tracker: FakeTracker

    def __init__(self, combo: dict[str, str]) -> None:
        self.model = combo["solver"]

    def run(self, x: int) -> int:
        self.tracker.call(self.model, 100, 10 * (x + 1), 0.001 * (x + 1), 0.1)
        return x % 2 if self.model == "a" else 0


class AsyncAgent(SyncAgent):
    async def run(self, x: int) -> int:  # type: ignore[override]
        await asyncio.sleep(0)
        return super().run(x)


@pytest.mark.parametrize("agent_cls", [SyncAgent, AsyncAgent])
async def test_each_evaluation_is_priced_from_its_own_session(agent_cls: type[SyncAgent]) -> None:
    tracker = FakeTracker()
    agent = type("A", (agent_cls,), {"tracker": tracker})
    ev = _evaluator(agent, lambda e, a: float(e == a), tracker, max_concurrent=4)
    pairs = [(arm, dp) for arm in (0, 1) for dp in range(6)]
    obs = await ev.evaluate(pairs)
    ev.close()
    assert len(obs) == 12
    for (arm, dp), o in zip(pairs, obs, strict=True):
        assert o.combo == {"solver": "ab"[arm]} and o.datapoint == dp
        assert o.cost_usd == pytest.approx(0.001 * (dp + 1))
        assert o.output_tokens == 10 * (dp + 1) and o.input_tokens == 100
        assert o.score == (1.0 if arm == 0 else float(dp % 2 == 0))
        assert o.error is None
    assert len(tracker.recs) == 12 and ev.agent_calls == 12
    assert len(tracker.feedbacks) == 12  # the score went to tracker.feedback
    # ... credited to that combination's run of the datapoint only
    assert {c for _, _, c in tracker.feedbacks} == {"solver=a", "solver=b"}


async def test_agent_and_eval_fn_failures_score_failure_score_and_keep_the_error() -> None:
    tracker = FakeTracker()

    class Flaky(SyncAgent):
        def run(self, x: int) -> int:
            self.tracker.call(self.model, 5, 5, 0.5, 0.1)  # paid before failing
            if x == 1:
                raise RuntimeError("model went away")
            return x

    agent = type("A", (Flaky,), {"tracker": tracker})

    def eval_fn(expected: int, actual: int) -> float:
        if actual == 2:
            raise ValueError("cannot parse")
        return 7.0 if actual == 3 else 1.0

    ev = _evaluator(agent, eval_fn, tracker, failure_score=0.25)
    obs = await ev.evaluate([(0, 0), (0, 1), (0, 2), (0, 3)])
    ev.close()
    assert [o.score for o in obs] == [1.0, 0.25, 0.25, 0.25]
    assert obs[0].error is None
    assert obs[1].error == "agent raised RuntimeError: model went away"
    assert obs[2].error == "eval_fn raised ValueError: cannot parse"
    assert "scores must be in [0, 1]" in (obs[3].error or "")
    assert all(o.cost_usd == pytest.approx(0.5) for o in obs)  # failures still cost money


async def test_at_most_max_concurrent_sync_runs_at_once() -> None:
    tracker = FakeTracker()
    barrier = threading.Barrier(3, timeout=10)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    class Gate(SyncAgent):
        def run(self, x: int) -> int:
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            barrier.wait()  # only passes when 3 run together
            with lock:
                state["now"] -= 1
            return 0

    agent = type("A", (Gate,), {"tracker": tracker})
    ev = _evaluator(agent, lambda e, a: 1.0, tracker, max_concurrent=3)
    obs = await ev.evaluate([(0, d) for d in range(6)])
    ev.close()
    assert all(o.error is None for o in obs)
    assert state["peak"] == 3


async def test_results_come_back_in_request_order_and_on_result_sees_each_once() -> None:
    tracker = FakeTracker()
    seen: list[tuple[int, int]] = []
    agent = type("A", (AsyncAgent,), {"tracker": tracker})
    ev = _evaluator(agent, lambda e, a: 0.5, tracker, on_result=lambda a, d, o: seen.append((a, d)))
    pairs = [(1, 5), (0, 2), (1, 0)]
    obs = await ev.evaluate(pairs)
    assert [(int(o.combo["solver"] == "b"), o.datapoint) for o in obs] == pairs
    assert sorted(seen) == sorted(pairs)


async def test_records_of_an_earlier_run_of_the_same_cell_are_not_counted_again() -> None:
    tracker = FakeTracker()
    agent = type("A", (SyncAgent,), {"tracker": tracker})
    ev = _evaluator(agent, lambda e, a: 1.0, tracker)
    first = await ev.evaluate([(0, 3)])
    second = await ev.evaluate([(0, 3)])
    ev.close()
    assert len(tracker.recs) == 2
    assert first[0].cost_usd == second[0].cost_usd == pytest.approx(0.004)


_outer: contextvars.ContextVar[str] = contextvars.ContextVar("outer", default="unset")


async def test_sync_agents_run_in_the_callers_context() -> None:
    tracker = FakeTracker()
    seen: list[str] = []

    class Peek(SyncAgent):
        def run(self, x: int) -> int:
            seen.append(_outer.get())
            return 0

    agent = type("A", (Peek,), {"tracker": tracker})
    ev = _evaluator(agent, lambda e, a: 1.0, tracker)
    token = _outer.set("enclosing session")
    try:
        await ev.evaluate([(0, 0), (1, 1)])
    finally:
        _outer.reset(token)
        ev.close()
    assert seen == ["enclosing session"] * 2
