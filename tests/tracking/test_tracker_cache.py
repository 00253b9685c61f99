"""The response cache seen through the tracker: miss, hit, stream replay, namespaces."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import t1_helpers
from t1_helpers import MSG, OPENAI_KEY

from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker

pytestmark = pytest.mark.xdist_group("t1-cache")

# Shared fixtures (module-scoped simulator; no patch left behind).
sim = t1_helpers.sim
no_global_patch = t1_helpers.no_global_patch


def client(sim: SimServer, key: str = OPENAI_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key=key, max_retries=0)


def test_miss_then_hit_replays_the_answer_with_cost_zero_and_original_latency(
    sim: SimServer, tmp_path: Path
) -> None:
    oc = client(sim)
    with LLMTracker(cache_dir=tmp_path) as t, t.track(data_id=1):
        first = oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        second = oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    miss, hit = t.records
    assert second.choices[0].message.content == first.choices[0].message.content
    assert (miss.cached, hit.cached) == (False, True)
    assert miss.cost_usd and miss.cost_usd > 0 and hit.cost_usd == 0.0
    assert hit.latency_seconds == pytest.approx(miss.latency_seconds)
    assert (hit.prompt_tokens, hit.completion_tokens) == (
        miss.prompt_tokens,
        miss.completion_tokens,
    )
    assert t.get_cached_latency() == pytest.approx(miss.latency_seconds)


def test_cache_persists_on_disk_across_trackers(sim: SimServer, tmp_path: Path) -> None:
    oc = client(sim)
    msgs = [{"role": "user", "content": "persist me"}]
    with LLMTracker(cache_dir=tmp_path) as t1:
        oc.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    t1.close()
    with LLMTracker(cache_dir=tmp_path) as t2:
        oc.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    t2.close()
    assert [r.cached for r in t2.records] == [True]
    assert (tmp_path / "responses.sqlite").exists()


def test_streamed_response_is_replayed_as_a_stream(sim: SimServer) -> None:
    oc = client(sim)

    def stream() -> list[str]:
        chunks = oc.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
        return [c.choices[0].delta.content or "" for c in chunks if c.choices]

    with LLMTracker(cache_dir=None) as t:
        live = stream()
        replayed = stream()
        plain = oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert replayed == live and len(replayed) > 1  # chunk by chunk, not one blob
    assert plain.choices[0].message.content == "".join(live)  # a stored stream answers a plain call
    assert [(r.cached, r.stream) for r in t.records] == [(False, True), (True, True), (True, False)]
    assert t.records[1].ttft_seconds == t.records[0].ttft_seconds


def test_different_api_keys_never_share_entries(sim: SimServer) -> None:
    with LLMTracker(cache_dir=None) as t:
        client(sim, "sk-one").chat.completions.create(model="gpt-4o-mini", messages=MSG)
        client(sim, "sk-two").chat.completions.create(model="gpt-4o-mini", messages=MSG)
        client(sim, "sk-two").chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert [r.cached for r in t.records] == [False, False, True]


def test_clear_cache_forgets_answers(sim: SimServer) -> None:
    oc = client(sim)
    with LLMTracker(cache_dir=None) as t:
        oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        t.flush_cache()
        t.clear_cache()
        oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert [r.cached for r in t.records] == [False, False]
