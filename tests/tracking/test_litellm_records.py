"""The litellm front-end keeps its promises: each call recorded once, before the
caller can look; failures recorded at once; nothing paid twice; usage never a silent 0."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import t1_helpers
from t1_helpers import MSG, OPENAI_KEY

from agentopt.selectors import ModelSelector
from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker

pytestmark = pytest.mark.xdist_group("t1-litellm")

sim = t1_helpers.sim
no_global_patch = t1_helpers.no_global_patch

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="module")
def litellm():  # type: ignore[no-untyped-def]
    import litellm as mod

    mod.suppress_debug_info = True
    return mod


def kw(sim: SimServer) -> dict[str, str]:
    return {"api_base": sim.openai_base_url, "api_key": OPENAI_KEY}


def test_each_call_recorded_once_before_the_caller_can_look(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    """Right after a call returns (or its stream ends), its priced record is in the
    store itself: no waiting on litellm's logging thread, no reader left behind."""
    with LLMTracker(cache=False) as t:
        for i in range(12):
            with t.track(data_id=i):
                if i % 3 == 0:
                    litellm.completion(model="openai/gpt-4o-mini", messages=MSG, **kw(sim))
                elif i % 3 == 1:
                    for _ in litellm.completion(
                        model="openai/gpt-4o-mini", messages=MSG, stream=True, **kw(sim)
                    ):
                        pass
                else:

                    async def astream() -> None:
                        s = await litellm.acompletion(
                            model="openai/gpt-4o-mini", messages=MSG, stream=True, **kw(sim)
                        )
                        async for _ in s:
                            pass

                    asyncio.run(astream())
                recs = t.store.query(data_id=i)  # the store, not a read that waits
                assert len(recs) == 1, (i, recs)
                assert recs[0].cost_usd is not None and recs[0].cost_usd > 0
    assert len(t.records) == 12


def test_each_call_recorded_once_in_a_selection_loop(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    """Every evaluation of a selection sees its own litellm calls, priced."""

    class Agent:
        def __init__(self, combo: dict[str, str]) -> None:
            self.model = combo["solver"]

        def run(self, question: str) -> str:
            r = litellm.completion(
                model=f"openai/{self.model}",
                messages=[{"role": "user", "content": question}],
                **kw(sim),
            )
            return str(r.choices[0].message.content)

    dataset = [(f"What is {i} + {i}?", str(2 * i)) for i in range(8)]
    for run in range(3):
        tracker = LLMTracker(cache=False)
        selector = ModelSelector(
            agent=Agent,
            models={"solver": ["gpt-4o-mini", "gpt-4o"]},
            eval_fn=lambda expected, actual: 1.0,
            dataset=dataset,
            method="brute_force",
            seed=run,
            tracker=tracker,
        )
        try:
            results = selector.select_best(parallel=True, max_concurrent=4, progress=False)
        finally:
            tracker.close()
        costs = [o.cost_usd for _, _, o in results.observations]
        assert len(costs) == 16
        assert all(c is not None and c > 0 for c in costs), (run, costs)


def test_a_call_that_raises_without_a_failure_event_is_recorded_at_once(
    litellm, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("litellm fell over before calling anyone")

    monkeypatch.setattr(litellm, "completion", broken)
    with LLMTracker(cache=False) as t, t.track(data_id="boom"):
        with pytest.raises(RuntimeError):
            litellm.completion(model="openai/gpt-4o-mini", messages=MSG)
        [rec] = t.store.all()
    assert rec.data_id == "boom" and rec.error and "fell over" in rec.error
    assert rec.cost_usd == 0.0 and rec.usage_known  # nothing answered, nothing billed
    assert [r.call_id for r in t.records] == [rec.call_id]


def test_each_call_recorded_once_through_the_session_gateway(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    with LLMTracker(cache=False) as t, t.track(data_id="gw") as session:
        proxy = session.proxy
        base = proxy.base_url_for(sim.openai_base_url)
        litellm.completion(
            model="openai/gpt-4o-mini", messages=MSG, api_base=base, api_key=OPENAI_KEY
        )
    [rec] = t.records
    assert rec.data_id == "gw" and rec.completion_tokens > 0 and rec.cost_usd


def test_nothing_paid_twice_for_litellm_calls(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    before = sim.stats["ok"]
    with LLMTracker(cache_dir=None) as t:
        a = litellm.completion(model="openai/gpt-4o-mini", messages=MSG, **kw(sim))
        b = litellm.completion(model="openai/gpt-4o-mini", messages=MSG, **kw(sim))
        s1 = list(
            litellm.completion(model="openai/gpt-4o-mini", messages=MSG, stream=True, **kw(sim))
        )
        s2 = list(
            litellm.completion(model="openai/gpt-4o-mini", messages=MSG, stream=True, **kw(sim))
        )
    assert sim.stats["ok"] - before == 2  # one request per distinct call
    assert b.choices[0].message.content == a.choices[0].message.content
    assert b.usage.completion_tokens == a.usage.completion_tokens

    def text(chunks: list[Any]) -> str:
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert text(s2) == text(s1) and text(s1)
    assert all(getattr(c, "usage", None) is None for c in s1 + s2)  # not asked for
    recs = t.records
    assert [r.cached for r in recs] == [False, True, False, True]
    assert [r.cost_usd == 0 for r in recs] == [False, True, False, True]
    assert recs[1].completion_tokens == recs[0].completion_tokens
    assert recs[3].completion_tokens == recs[2].completion_tokens > 0


def test_never_a_silent_zero_for_a_litellm_stream_cut_short(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    """litellm ends a cut stream quietly, with a finish reason and token counts of its
    own making: the record says truncated, usage unknown, cost None."""
    with LLMTracker(cache_dir=None) as t:
        for _ in range(2):
            for _ in litellm.completion(
                model="openai/fault-truncate", messages=MSG, stream=True, **kw(sim)
            ):
                pass
    first, second = t.records
    assert first.error and "truncated" in first.error
    assert not first.usage_known and first.cost_usd is None
    assert not second.cached  # never cached
    assert t.get_cost() is None


def test_a_default_litellm_stream_is_priced_and_the_caller_sees_no_usage(
    litellm, sim: SimServer
) -> None:  # type: ignore[no-untyped-def]
    with LLMTracker(cache=False) as t:
        chunks = list(
            litellm.completion(model="openai/gpt-4o-mini", messages=MSG, stream=True, **kw(sim))
        )
    assert all(getattr(c, "usage", None) is None for c in chunks)
    [rec] = t.records
    assert rec.usage_known and rec.completion_tokens > 0 and rec.cost_usd
    assert rec.ttft_seconds is not None and rec.first_byte_seconds is not None
    assert rec.first_byte_seconds <= rec.ttft_seconds <= rec.latency_seconds


def test_a_litellm_stream_to_a_provider_that_refuses_stream_options(
    litellm, sim: SimServer
) -> None:  # type: ignore[no-untyped-def]
    """The tracker's own ``stream_options`` must not make a caller's litellm call fail:
    sent again without it, recorded with unknown usage, and not asked again."""
    with LLMTracker(cache=False) as t:
        for _ in range(2):
            chunks = list(
                litellm.completion(
                    model="openai/no-stream-options", messages=MSG, stream=True, **kw(sim)
                )
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    first, second = t.records
    for rec in (first, second):
        assert rec.ok and rec.error is None
        assert not rec.usage_known and rec.cost_usd is None


def test_litellm_retries_with_num_retries(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    """num_retries needs tenacity, which the install declares."""
    sim.inject("gpt-4o", 500, times=1)
    with LLMTracker(cache=False) as t:
        r = litellm.completion(model="openai/gpt-4o", messages=MSG, num_retries=2, **kw(sim))
    assert r.choices[0].message.content
    [rec] = t.records  # one logical call
    assert rec.ok and rec.completion_tokens > 0


def test_latency_leaves_out_litellms_own_set_up(litellm, sim: SimServer) -> None:  # type: ignore[no-untyped-def]
    """litellm reports its own overhead (first-call set-up included): it is not the
    provider's latency."""
    import time

    with LLMTracker(cache=False) as t:
        t0 = time.perf_counter()
        r = litellm.completion(model="openai/gpt-4o-mini", messages=MSG, **kw(sim))
        elapsed = time.perf_counter() - t0
    overhead = r._hidden_params["litellm_overhead_time_ms"] / 1000.0
    assert overhead > 0
    [rec] = t.records
    assert rec.latency_seconds <= elapsed - overhead


class _GeminiLikeStream:
    """litellm's stream wrapper as its Gemini path leaves it: the finish reason only
    in ``intermittent_finish_reason``, overwritten with None by a trailing chunk."""

    def __init__(self, chunks: list[Any], finish_at: int) -> None:
        self._chunks = iter(enumerate(chunks))
        self._finish_at = finish_at
        self.received_finish_reason: str | None = None
        self.intermittent_finish_reason: str | None = None

    def __iter__(self) -> _GeminiLikeStream:
        return self

    def __next__(self) -> Any:
        i, chunk = next(self._chunks)
        self.intermittent_finish_reason = "stop" if i == self._finish_at else None
        return chunk


def test_a_complete_stream_is_not_truncated_when_litellm_forgets_the_finish(litellm) -> None:  # type: ignore[no-untyped-def]
    """A provider path that keeps the finish reason only until the next chunk (Gemini's
    in litellm) must not make a complete stream look truncated, unpriced and uncached."""
    from agentopt.tracking.capture.litellm_streams import wrap_stream
    from agentopt.tracking.capture.pending import PendingCall
    from agentopt.tracking.recorder import Exchange

    def chunk(**kw: Any) -> Any:
        return litellm.ModelResponseStream(model="gemini-2.5-flash", **kw)

    chunks = [
        chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": "Four"}}]),
        chunk(choices=[{"index": 0, "delta": {"content": "."}, "finish_reason": "stop"}]),
        chunk(
            choices=[{"index": 0, "delta": {}}],
            usage={"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
        ),
    ]
    with LLMTracker(cache=False) as t:
        pipeline = t._pipeline()
        ex = Exchange(
            provider="gemini",
            wire="litellm",
            url="",
            request_body={"model": "gemini/gemini-2.5-flash", "messages": MSG},
            requested_model="gemini/gemini-2.5-flash",
            model="gemini/gemini-2.5-flash",
            stream=True,
            session=None,
        )
        inner = _GeminiLikeStream(chunks, finish_at=1)
        assert len(list(wrap_stream(inner, PendingCall(pipeline, ex)))) == 3
        cut = _GeminiLikeStream(chunks[:1], finish_at=99)  # no finish reason ever
        list(wrap_stream(cut, PendingCall(pipeline, ex)))
    whole, truncated = t.records
    assert whole.error is None and whole.usage_known and whole.completion_tokens == 2
    assert truncated.error and "truncated" in truncated.error and not truncated.usage_known
