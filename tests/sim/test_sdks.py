"""The official SDKs and litellm talk to the simulator and see exactly its usage."""

from __future__ import annotations

import json
import os
from typing import Any

import anthropic
import httpx
import openai
import pytest

from agentopt.sim import SimServer

pytestmark = pytest.mark.xdist_group("sim-sdks")  # one worker imports litellm

MSG: Any = [{"role": "user", "content": "Tell me about simulated providers."}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"],
    },
}


def _raw_openai(sim: SimServer, **body: Any) -> dict[str, Any]:
    r = httpx.post(sim.openai_base_url + "/chat/completions", json={"messages": MSG, **body})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _raw_anthropic(sim: SimServer, **body: Any) -> dict[str, Any]:
    r = httpx.post(
        sim.anthropic_base_url + "/v1/messages", json={"messages": MSG, "max_tokens": 1024, **body}
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_openai_sync_plain_reports_server_usage(sim: SimServer) -> None:
    raw = _raw_openai(sim, model="gpt-4o-mini")
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="x", max_retries=0)
    r = client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert r.usage is not None
    assert r.usage.prompt_tokens == raw["usage"]["prompt_tokens"]
    assert r.usage.completion_tokens == raw["usage"]["completion_tokens"]
    assert r.choices[0].message.content == raw["choices"][0]["message"]["content"]
    assert r.choices[0].finish_reason == "stop"


def test_openai_sync_stream_with_usage_matches_non_streamed(sim: SimServer) -> None:
    raw = _raw_openai(sim, model="gpt-4.1")
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="x", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4.1",
        messages=MSG,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == raw["choices"][0]["message"]["content"]
    assert usage is not None and usage.completion_tokens == raw["usage"]["completion_tokens"]
    assert usage.prompt_tokens == raw["usage"]["prompt_tokens"]
    assert finish == "stop"


def test_openai_stream_without_include_usage_has_no_usage_chunk(sim: SimServer) -> None:
    with httpx.stream(
        "POST",
        sim.openai_base_url + "/chat/completions",
        json={"model": "gpt-4.1", "messages": MSG, "stream": True},
    ) as r:
        lines = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert all('"usage"' not in ln for ln in lines)


async def test_openai_async_plain_and_stream(sim: SimServer) -> None:
    raw = _raw_openai(sim, model="claude-opus-4-6")
    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="x", max_retries=0)
    r = await client.chat.completions.create(model="claude-opus-4-6", messages=MSG)
    assert r.usage is not None and r.usage.total_tokens == raw["usage"]["total_tokens"]
    stream = await client.chat.completions.create(
        model="claude-opus-4-6",
        messages=MSG,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    async for chunk in stream:
        usage = chunk.usage or usage
    assert usage is not None and usage.completion_tokens == raw["usage"]["completion_tokens"]
    await client.close()


def test_openai_tools_round_trip(sim: SimServer) -> None:
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="x", max_retries=0)
    tools: Any = [{"type": "function", "function": WEATHER}]
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=tools, tool_choice="required"
    )
    calls = r.choices[0].message.tool_calls
    assert calls is not None and calls[0].type == "function"
    call = calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert set(args) == {"city", "unit"} and args["unit"] in ("c", "f")
    # streamed: same call, reassembled from deltas
    stream = client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=tools, tool_choice="required", stream=True
    )
    name, arguments = "", ""
    for chunk in stream:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name += (tc.function.name or "") if tc.function else ""
            arguments += (tc.function.arguments or "") if tc.function else ""
    assert name == "get_weather" and json.loads(arguments) == args
    # after the tool result the model answers in text
    messages += [
        r.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"},
    ]
    r2 = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
    assert r2.choices[0].message.content and not r2.choices[0].message.tool_calls


def test_openai_tool_choice_none_never_calls(sim: SimServer) -> None:
    body = _raw_openai(
        sim, model="gpt-4o", tools=[{"type": "function", "function": WEATHER}], tool_choice="none"
    )
    assert "tool_calls" not in body["choices"][0]["message"]


def test_anthropic_sync_plain_and_stream(sim: SimServer) -> None:
    raw = _raw_anthropic(sim, model="claude-haiku-4-5")
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x", max_retries=0)
    m = client.messages.create(model="claude-haiku-4-5", max_tokens=1024, messages=MSG)
    assert m.usage.input_tokens == raw["usage"]["input_tokens"]
    assert m.usage.output_tokens == raw["usage"]["output_tokens"]
    assert m.stop_reason == "end_turn"
    with client.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=1024,
        messages=MSG,
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == raw["content"][0]["text"]
    assert final.usage.output_tokens == raw["usage"]["output_tokens"]
    assert final.usage.input_tokens == raw["usage"]["input_tokens"]


async def test_anthropic_async_plain_and_stream(sim: SimServer) -> None:
    raw = _raw_anthropic(sim, model="gpt-4o-mini")
    client = anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key="x", max_retries=0)
    m = await client.messages.create(model="gpt-4o-mini", max_tokens=1024, messages=MSG)
    assert m.usage.output_tokens == raw["usage"]["output_tokens"]
    async with client.messages.stream(
        model="gpt-4o-mini",
        max_tokens=1024,
        messages=MSG,
    ) as stream:
        final = await stream.get_final_message()
    assert final.usage.output_tokens == raw["usage"]["output_tokens"]
    assert final.content[0].type == "text" and final.content[0].text == raw["content"][0]["text"]
    await client.close()


def test_anthropic_tool_use_sync_and_stream(sim: SimServer) -> None:
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x", max_retries=0)
    tool: Any = {
        "name": WEATHER["name"],
        "description": WEATHER["description"],
        "input_schema": WEATHER["parameters"],
    }
    messages: Any = [{"role": "user", "content": "Weather in Oslo?"}]
    m = client.messages.create(
        model="claude-opus-4-6",
        max_tokens=512,
        messages=messages,
        tools=[tool],
        tool_choice={"type": "any"},
    )
    assert m.stop_reason == "tool_use"
    block = next(b for b in m.content if b.type == "tool_use")
    assert block.name == "get_weather" and set(block.input) == {"city", "unit"}
    with client.messages.stream(
        model="claude-opus-4-6",
        max_tokens=512,
        messages=messages,
        tools=[tool],
        tool_choice={"type": "any"},
    ) as stream:
        final = stream.get_final_message()
    sblock = next(b for b in final.content if b.type == "tool_use")
    assert sblock.input == block.input and sblock.id == block.id
    assert final.usage.output_tokens == m.usage.output_tokens
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in m.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "-3 C"}],
        },
    ]
    m2 = client.messages.create(
        model="claude-opus-4-6", max_tokens=512, messages=messages, tools=[tool]
    )
    assert m2.stop_reason == "end_turn" and m2.content[0].type == "text"


def test_litellm_completion_reports_server_usage(sim: SimServer) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    raw = _raw_openai(sim, model="gpt-4o-mini")
    r = litellm.completion(
        model="openai/gpt-4o-mini", messages=MSG, api_base=sim.openai_base_url, api_key="x"
    )
    assert r.usage.prompt_tokens == raw["usage"]["prompt_tokens"]
    assert r.usage.completion_tokens == raw["usage"]["completion_tokens"]
    assert r.choices[0].message.content == raw["choices"][0]["message"]["content"]
    chunks = list(
        litellm.completion(
            model="openai/gpt-4o-mini",
            messages=MSG,
            api_base=sim.openai_base_url,
            api_key="x",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert usage and usage[-1].completion_tokens == raw["usage"]["completion_tokens"]


def test_litellm_anthropic_route_reports_server_usage(sim: SimServer) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    raw = _raw_anthropic(sim, model="claude-haiku-4-5", max_tokens=100)
    r = litellm.completion(
        model="anthropic/claude-haiku-4-5",
        messages=MSG,
        api_base=sim.anthropic_base_url,
        api_key="x",
        max_tokens=100,
    )
    assert r.usage.prompt_tokens == raw["usage"]["input_tokens"]
    assert r.usage.completion_tokens == raw["usage"]["output_tokens"]


def test_anthropic_count_tokens_matches_messages_usage(sim: SimServer) -> None:
    raw = _raw_anthropic(sim, model="claude-haiku-4-5")
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x", max_retries=0)
    counted = client.messages.count_tokens(model="claude-haiku-4-5", messages=MSG)
    assert counted.input_tokens == raw["usage"]["input_tokens"]


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
def test_models_list_in_both_shapes(sim: SimServer, path: str) -> None:
    oai = openai.OpenAI(base_url=sim.openai_base_url, api_key="x").models.list()
    assert [m.id for m in oai.data] == sim.world.names
    ant = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x").models.list()
    assert [m.id for m in ant.data] == sim.world.names
    assert httpx.get(sim.url + path).status_code == 200
