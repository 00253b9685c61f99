"""The Recorder builds records without pydantic's per-field validation on its
hot path: what it builds must be exactly what validation would have built."""

from __future__ import annotations

import uuid

from agentopt.records import CallRecord, Usage
from agentopt.tracking.recorder import Exchange, Recorder
from agentopt.tracking.session import SessionInfo
from agentopt.tracking.storage.store import MemoryRecordStore


def _exchange(session: SessionInfo | None = None, **kw: object) -> Exchange:
    fields: dict[str, object] = {
        "provider": "openai",
        "wire": "openai",
        "url": "https://api.openai.com/v1/chat/completions?api_key=sk-secret",
        "request_body": {"model": "gpt-4o-mini", "api_key": "sk-secret", "messages": []},
        "requested_model": "gpt-4o-mini",
        "model": "gpt-4o-mini",
        "stream": True,
        "session": session,
    }
    fields.update(kw)
    return Exchange(**fields)  # type: ignore[arg-type]


def _record(ex: Exchange, **kw: object) -> CallRecord:
    args: dict[str, object] = {
        "status_code": 200,
        "model": "gpt-4o-mini-2024-07-18",
        "usage": Usage(prompt_tokens=8, completion_tokens=3),
        "response_body": {"choices": []},
        "latency_seconds": 0.01,
        "ttft_seconds": 0.005,
    }
    args.update(kw)
    return Recorder(MemoryRecordStore()).record(ex, **args)  # type: ignore[arg-type]


def test_a_record_equals_its_validated_twin() -> None:
    session = SessionInfo("s1", data_id=7, combo_id=3, agent_id="solver")  # type: ignore[arg-type]
    rec = _record(_exchange(session))
    twin = CallRecord.model_validate(rec.model_dump())
    assert rec == twin and rec.model_dump_json() == twin.model_dump_json()
    assert (rec.data_id, rec.combo_id, rec.agent_id) == ("7", "3", "solver")  # ids as str
    assert rec.model_fields_set == set(CallRecord.model_fields)
    assert "sk-secret" not in rec.model_dump_json()  # credentials still scrubbed
    assert rec.cost_usd is not None and rec.cost_usd > 0


def test_call_ids_are_random_uuid4_hex_unless_given() -> None:
    ids = {_record(_exchange()).call_id for _ in range(200)}
    assert len(ids) == 200
    for call_id in ids:
        u = uuid.UUID(hex=call_id)
        assert (u.version, u.variant, u.hex) == (4, uuid.RFC_4122, call_id)
    assert _record(_exchange(call_id="given")).call_id == "given"


def test_odd_values_go_through_validation() -> None:
    rec = _record(_exchange(), status_code=True, error=None)  # a bool where an int goes
    assert rec.status_code == 1 and type(rec.status_code) is int
