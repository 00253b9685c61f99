"""The tracker records OpenAI Responses API calls (``client.responses``) with their usage
and price, streamed or not, with tool calls."""

from __future__ import annotations

import openai
import pytest
import t1_helpers

from agentopt.pricing import default_price_book
from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker

pytestmark = pytest.mark.xdist_group("t1-sdks")

sim = t1_helpers.sim
no_global_patch = t1_helpers.no_global_patch

TOOL = {
    "type": "function",
    "name": "lookup",
    "parameters": {
        "type": "object",
        "properties": {"q": {"type": "string"}, "k": {"type": "integer"}},
        "required": ["q", "k"],
    },
}


@pytest.fixture(scope="module")
def oc(sim: SimServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key=t1_helpers.OPENAI_KEY, max_retries=0)


def _expected_cost(model: str, prompt: int, completion: int) -> float:
    usd = default_price_book().cost_usd(model, prompt, completion)
    assert usd is not None and usd > 0
    return usd


def test_responses_create_is_recorded_with_usage_and_cost(oc: openai.OpenAI) -> None:
    with LLMTracker(cache=False) as t, t.track(data_id="r1"):
        r = oc.responses.create(model="gpt-4o-mini", input="What is 2 + 2?")
    [rec] = t.records
    assert r.usage is not None
    assert (rec.prompt_tokens, rec.completion_tokens) == (
        r.usage.input_tokens,
        r.usage.output_tokens,
    )
    assert rec.cost_usd == pytest.approx(
        _expected_cost("gpt-4o-mini", r.usage.input_tokens, r.usage.output_tokens)
    )
    assert rec.provider == "openai" and not rec.stream and rec.error is None
    assert rec.request_body["input"] == "What is 2 + 2?"
    assert t.get_cost() == pytest.approx(rec.cost_usd)


def test_responses_stream_is_recorded_with_usage_cost_and_ttft(oc: openai.OpenAI) -> None:
    with (
        LLMTracker(cache=False) as t,
        t.track(data_id="r2"),
        oc.responses.stream(model="gpt-4o-mini", input="Tell me a story.") as s,
    ):
        text = "".join(e.delta for e in s if e.type == "response.output_text.delta")
        final = s.get_final_response()
    [rec] = t.records
    assert final.usage is not None and text == final.output_text
    assert rec.stream and rec.error is None
    assert (rec.prompt_tokens, rec.completion_tokens) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )
    assert rec.cost_usd == pytest.approx(
        _expected_cost("gpt-4o-mini", final.usage.input_tokens, final.usage.output_tokens)
    )
    assert rec.ttft_seconds is not None and rec.ttft_seconds <= rec.latency_seconds


def test_responses_tool_call_is_recorded(oc: openai.OpenAI) -> None:
    with LLMTracker(cache=False) as t, t.track(data_id="r3"):
        r = oc.responses.create(
            model="gpt-4o-mini", input="Find Lisbon", tools=[TOOL], tool_choice="required"
        )
        with oc.responses.stream(
            model="gpt-4o-mini", input="Find Lisbon", tools=[TOOL], tool_choice="required"
        ) as s:
            s.until_done()
    plain, streamed = t.records
    assert r.output[0].type == "function_call"
    for rec in (plain, streamed):
        assert rec.completion_tokens > 0 and rec.cost_usd is not None and rec.cost_usd > 0
        assert rec.response_body["output"][0]["type"] == "function_call"
    assert (plain.prompt_tokens, plain.completion_tokens) == (
        streamed.prompt_tokens,
        streamed.completion_tokens,
    )
