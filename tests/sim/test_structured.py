"""Structured output: response_format / text.format / output_format and JSON asked for in
words give valid JSON of the requested shape with the answer in its field; tool-call
arguments fit the tool's declared JSON schema."""

from __future__ import annotations

import json
import random
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from agentopt.sim import SimServer
from agentopt.sim.schema import fake, structured
from agentopt.sim.tasks import load_task

ITEMS = load_task("arithmetic")[:12]
MCQ = load_task("mcq")[:12]


class Solved(BaseModel):
    reasoning: str
    answer: int


class Choice(BaseModel):
    answer: Literal["A", "B", "C", "D"]
    confidence: float
    explanation: str


NESTED: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "steps": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/$defs/Step"},
        },
        "meta": {
            "type": "object",
            "properties": {
                "lang": {"type": "string", "enum": ["en", "fr"]},
                "score": {"type": "number", "minimum": 0, "maximum": 1},
                "when": {"type": "string", "format": "date"},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["lang", "score", "when", "note"],
            "additionalProperties": False,
        },
    },
    "required": ["answer", "steps", "meta"],
    "additionalProperties": False,
    "$defs": {
        "Step": {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "minimum": 1, "maximum": 9},
                "text": {"type": "string", "minLength": 3},
                "ok": {"type": "boolean"},
            },
            "required": ["n", "text", "ok"],
            "additionalProperties": False,
        }
    },
}


def _chat(sim: SimServer, content: str, **body: Any) -> httpx.Response:
    r = httpx.post(
        sim.openai_base_url + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **body},
    )
    assert r.status_code == 200, r.text
    return r


def test_chat_json_schema_parses_into_the_pydantic_model_with_the_answer(
    sim: SimServer,
) -> None:
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="x", max_retries=0)
    right = wrong = 0
    for item in ITEMS:
        raw = client.chat.completions.with_raw_response.parse(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": item.prompt}],
            response_format=Solved,
        )
        parsed = raw.parse().choices[0].message.parsed
        assert isinstance(parsed, Solved)
        correct = raw.headers["x-sim-correct"] == "1"
        assert (parsed.answer == int(item.answer)) == correct
        right += correct
        wrong += not correct
    assert right and wrong  # both branches were exercised


def test_responses_text_format_puts_the_letter_in_the_enum_field(sim: SimServer) -> None:
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="x", max_retries=0)
    for item in MCQ:
        raw = client.responses.with_raw_response.parse(
            model="gpt-4o-mini", input=item.prompt, text_format=Choice
        )
        parsed = raw.parse().output_parsed
        assert isinstance(parsed, Choice)
        assert (parsed.answer == item.answer) == (raw.headers["x-sim-correct"] == "1")


@pytest.mark.parametrize("stream", [False, True])
def test_responses_nested_schema_is_honoured(sim: SimServer, stream: bool) -> None:
    body = {
        "model": "gpt-4.1",
        "input": ITEMS[0].prompt,
        "text": {"format": {"type": "json_schema", "name": "x", "schema": NESTED, "strict": True}},
    }
    if stream:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="x", max_retries=0)
        with client.responses.stream(**body) as s:
            text = s.get_final_response().output_text
    else:
        r = httpx.post(sim.openai_base_url + "/responses", json=body)
        text = r.json()["output"][0]["content"][0]["text"]
    value = json.loads(text)
    jsonschema.validate(value, NESTED)
    assert value["answer"].isdigit()


def test_json_object_mode_uses_the_keys_the_prompt_shows(sim: SimServer) -> None:
    prompt = ITEMS[1].prompt + '\nReturn JSON: {"final_answer": <number>, "why": "<text>"}'
    r = _chat(sim, prompt, response_format={"type": "json_object"})
    value = json.loads(r.json()["choices"][0]["message"]["content"])
    assert set(value) == {"final_answer", "why"}
    assert (value["final_answer"] == ITEMS[1].answer) == (r.headers["x-sim-correct"] == "1")


def test_json_asked_for_in_words_is_json(sim: SimServer) -> None:
    r = _chat(sim, "List three colours. Respond only with a JSON object.")
    value = json.loads(r.json()["choices"][0]["message"]["content"])
    assert isinstance(value, dict) and value
    plain = _chat(sim, "List three colours.").json()["choices"][0]["message"]["content"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(plain)


def test_streamed_json_schema_reassembles_to_valid_json(sim: SimServer) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": NESTED, "strict": True}}
    with httpx.stream(
        "POST",
        sim.openai_base_url + "/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": fmt,
            "stream": True,
        },
    ) as r:
        text = ""
        for line in r.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    text += choice["delta"].get("content") or ""
    jsonschema.validate(json.loads(text), NESTED)


def test_anthropic_output_format_is_honoured(sim: SimServer) -> None:
    r = httpx.post(
        sim.url + "/v1/messages",
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": ITEMS[2].prompt}],
            "output_format": {"type": "json_schema", "schema": Solved.model_json_schema()},
        },
    )
    assert r.status_code == 200, r.text
    Solved.model_validate_json(r.json()["content"][0]["text"])


def test_bad_response_format_is_a_400(sim: SimServer) -> None:
    r = httpx.post(
        sim.openai_base_url + "/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
        },
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format"


TOOL_SCHEMAS: list[dict[str, Any]] = [
    NESTED,
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "lat": {"type": "number", "exclusiveMinimum": -90, "exclusiveMaximum": 90},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "limit": {"type": ["integer", "null"]},
            "mode": {"const": "fast"},
        },
        "required": ["city", "unit", "days", "lat"],
    },
    {"type": "object", "properties": {}},
]


@pytest.mark.parametrize("params", TOOL_SCHEMAS)
def test_tool_arguments_validate_against_the_declared_schema(
    sim: SimServer, params: dict[str, Any]
) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": params}}
    for i in range(12):
        r = _chat(sim, f"Look up item {i} for Lisbon", tools=[tool], tool_choice="required")
        [call] = r.json()["choices"][0]["message"]["tool_calls"]
        args = json.loads(call["function"]["arguments"])
        jsonschema.validate(args, params)
        for name in params.get("required", ()):
            assert name in args


def test_fake_values_validate_for_many_seeds() -> None:
    for seed in range(200):
        for params in TOOL_SCHEMAS:
            jsonschema.validate(fake(params, random.Random(seed), ["Lisbon"]), params)


def test_structured_places_prose_only_in_a_free_text_field() -> None:
    value, placed = structured(Choice.model_json_schema(), random.Random(0), ["w"], "C", "PROSE")
    assert value["answer"] == "C" and value["explanation"] == "PROSE" and placed
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    value, placed = structured(schema, random.Random(0), ["w"], "12", "PROSE")
    assert value == {"answer": 12} and not placed
