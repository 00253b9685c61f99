"""POST /v1/responses: the official SDK's create/stream/parse see the simulator's usage,
text and tool calls, in the shapes of ``openai.types.responses``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from agentopt.sim import SimServer

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit", "days"],
        "additionalProperties": False,
    },
    "strict": True,
}
QUESTION = "Tell me about simulated providers."


def _client(sim: SimServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="x", max_retries=0)


def _raw(sim: SimServer, **body: Any) -> dict[str, Any]:
    r = httpx.post(sim.openai_base_url + "/responses", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _events(sim: SimServer, **body: Any) -> list[dict[str, Any]]:
    events = []
    with httpx.stream(
        "POST", sim.openai_base_url + "/responses", json={**body, "stream": True}
    ) as r:
        assert r.status_code == 200
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                assert data["type"] == name  # the SSE event name is the payload's type
                events.append(data)
    return events


def test_create_returns_a_response_object_with_usage(sim: SimServer) -> None:
    raw = _raw(sim, model="gpt-4o-mini", input=QUESTION)
    Response.model_validate(raw)  # every field the SDK declares, with its type
    r = _client(sim).responses.create(model="gpt-4o-mini", input=QUESTION)
    assert r.status == "completed" and r.object == "response" and r.id.startswith("resp_")
    assert r.output_text == raw["output"][0]["content"][0]["text"] != ""
    assert r.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens) == (
        raw["usage"]["input_tokens"],
        raw["usage"]["output_tokens"],
    )
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens > 0


def test_same_question_same_usage_as_chat_completions(sim: SimServer) -> None:
    chat = httpx.post(
        sim.openai_base_url + "/chat/completions",
        json={"model": "gpt-4.1", "messages": [{"role": "user", "content": QUESTION}]},
    ).json()
    resp = _raw(sim, model="gpt-4.1", input=[{"role": "user", "content": QUESTION}])
    assert resp["usage"]["output_tokens"] == chat["usage"]["completion_tokens"]
    assert resp["output"][0]["content"][0]["text"] == chat["choices"][0]["message"]["content"]


def test_stream_events_are_valid_sdk_events_in_order(sim: SimServer) -> None:
    events = _events(sim, model="gpt-4o-mini", input=QUESTION)
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    for e in events:
        adapter.validate_python(e)
    kinds = [e["type"] for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    done = events[-1]["response"]
    assert text == done["output"][0]["content"][0]["text"]
    assert done["usage"] == _raw(sim, model="gpt-4o-mini", input=QUESTION)["usage"]


def test_sdk_stream_helper_assembles_text_and_usage(sim: SimServer) -> None:
    client = _client(sim)
    plain = client.responses.create(model="gpt-4o-mini", input=QUESTION)
    deltas = []
    with client.responses.stream(model="gpt-4o-mini", input=QUESTION) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == plain.output_text
    assert final.usage == plain.usage


def test_create_stream_true_iterates_raw_events(sim: SimServer) -> None:
    kinds = [
        e.type
        for e in _client(sim).responses.create(model="gpt-4o-mini", input=QUESTION, stream=True)
    ]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"


def test_tool_call_then_tool_output_answers_in_text(sim: SimServer) -> None:
    client = _client(sim)
    r = client.responses.create(
        model="gpt-4o-mini",
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice="required",
    )
    [call] = r.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id.startswith("call_") and call.id and call.id.startswith("fc_")
    args = json.loads(call.arguments)
    assert set(args) == {"city", "unit", "days"}
    assert args["unit"] in ("c", "f") and isinstance(args["days"], int)
    assert 1 <= args["days"] <= 7
    assert args["city"] == "Paris"  # a name from the question, not a random word
    follow = client.responses.create(
        model="gpt-4o-mini",
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "18 C, sunny"},
        ],
        tools=[WEATHER],
    )
    assert [o.type for o in follow.output] == ["message"] and follow.output_text


def test_streamed_tool_call_arguments_assemble(sim: SimServer) -> None:
    client = _client(sim)
    with client.responses.stream(
        model="gpt-4o-mini",
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    [call] = final.output
    assert call.type == "function_call" and json.loads(call.arguments)["unit"] in ("c", "f")
    assert final.usage is not None and final.usage.output_tokens > 0


def test_max_output_tokens_makes_an_incomplete_response(sim: SimServer) -> None:
    raw = _raw(sim, model="gpt-4o-mini", input=QUESTION, max_output_tokens=16)
    assert raw["status"] == "incomplete"
    assert raw["incomplete_details"] == {"reason": "max_output_tokens"}
    assert raw["usage"]["output_tokens"] == 16
    events = _events(sim, model="gpt-4o-mini", input=QUESTION, max_output_tokens=16)
    assert events[-1]["type"] == "response.incomplete"


def test_agents_sdk_style_request_is_accepted(sim: SimServer) -> None:
    """The body the OpenAI Agents SDK's default model (OpenAIResponsesModel) sends:
    instructions, typed input items, flat function tools, explicit nulls and extras."""
    body = {
        "model": "gpt-4o-mini",
        "instructions": "You are a helpful agent.",
        "input": [
            {"content": "What is the weather in Paris?", "role": "user"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
        ],
        "include": [],
        "tools": [{**WEATHER, "strict": True}],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "text": {"format": {"type": "text"}},
        "truncation": None,
        "store": False,
        "stream": False,
        "temperature": None,
        "top_p": None,
        "max_output_tokens": None,
        "metadata": None,
        "reasoning": None,
        "extra_field_the_sim_does_not_know": {"a": 1},
    }
    r = httpx.post(sim.openai_base_url + "/responses", json=body)
    assert r.status_code == 200, r.text
    parsed = Response.model_validate(r.json())
    assert parsed.instructions == "You are a helpful agent." and parsed.usage is not None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": "gpt-4o-mini"}, "input"),
        ({"model": "gpt-4o-mini", "input": []}, "input"),
        ({"model": "gpt-4o-mini", "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "gpt-4o-mini", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "gpt-4o-mini", "input": "hi", "text": {"format": {"type": "xml"}}}, None),
    ],
)
def test_bad_requests_are_400_with_the_param(
    sim: SimServer, body: dict[str, Any], param: str | None
) -> None:
    r = httpx.post(sim.openai_base_url + "/responses", json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    if param is not None:
        assert err["param"] == param


def test_unknown_model_is_the_sdks_not_found_error(sim: SimServer) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        _client(sim).responses.create(model="nope", input="hi")
    assert info.value.code == "model_not_found"
