from __future__ import annotations

import json

from agentopt.records import PARSE_FAILED, CallRecord, Cost, Observation, Usage


def test_call_record_round_trips_through_json() -> None:
    rec = CallRecord(
        session_id="s1",
        data_id=7,  # ints are stored as strings so queries match
        combo_id="c",
        agent_id="planner",
        provider="openai",
        requested_model="gpt-4o",
        model="gpt-4o-mini",
        prompt_tokens=10,
        completion_tokens=5,
        cached_tokens=2,
        reasoning_tokens=1,
        latency_seconds=0.25,
        ttft_seconds=0.1,
        cost_usd=None,
        request_url="https://api.openai.com/v1/chat/completions",
        request_body={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        response_body={"choices": []},
        status_code=200,
        cached=True,
    )
    again = CallRecord.model_validate_json(rec.model_dump_json())
    assert again == rec
    assert again.data_id == "7"
    assert again.cost_usd is None
    assert again.total_tokens == 15
    assert again.usage == Usage(
        prompt_tokens=10, completion_tokens=5, cached_tokens=2, reasoning_tokens=1
    )
    assert again.timestamp.endswith("+00:00")


def test_call_record_keeps_user_facing_field_names() -> None:
    names = set(CallRecord.model_fields)
    for field in (
        "data_id", "combo_id", "agent_id", "model", "prompt_tokens", "completion_tokens",
        "latency_seconds", "request_url", "request_body", "response_body", "timestamp",
        "cached", "error", "call_id", "session_id", "provider", "requested_model",
        "cached_tokens", "reasoning_tokens", "ttft_seconds", "cost_usd", "status_code",
    ):  # fmt: skip
        assert field in names, field


def test_parse_failed_marker_and_ok_flag() -> None:
    rec = CallRecord(model=PARSE_FAILED, status_code=200, error="invalid JSON at byte 3")
    assert rec.model == "<parse-failed>"
    assert not rec.ok
    assert CallRecord(status_code=200).ok
    assert not CallRecord(status_code=500).ok


def test_observation_round_trips_and_labels_combo() -> None:
    obs = Observation(
        combo={"planner": "a", "solver": "b"},
        datapoint=3,
        score=0.5,
        cost_usd=0.01,
        latency_seconds=1.5,
        input_tokens=100,
        output_tokens=20,
        error=None,
    )
    again = Observation.model_validate(json.loads(obs.model_dump_json()))
    assert again == obs
    assert again.tokens == 120
    assert Observation.combo_label(obs.combo) == "planner=a + solver=b"
    failed = Observation(combo={"x": "m"}, datapoint="d", score=0.0, error="ValueError: boom")
    assert failed.failed and failed.tokens is None


def test_cost_unknown_is_not_zero() -> None:
    c = Cost.unknown("mystery")
    assert c.usd is None and not c.known
    assert str(c) == "unpriced"
    assert (c + Cost(usd=1.0, known=True)).usd is None
    assert (Cost(usd=1.0, known=True) + Cost(usd=2.0, known=True)).usd == 3.0
