"""usage_stats against hand-computed figures, the same from every source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from usage_records import RECORDS, _r

from agentopt import usage_stats
from agentopt.exceptions import ConfigError
from agentopt.records import CallRecord
from agentopt.tracking import LLMTracker
from agentopt.tracking.storage.store import MemoryRecordStore, SQLiteRecordStore


@pytest.fixture(params=["list", "memory", "sqlite", "tracker"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "list":
        yield list(RECORDS)
        return
    if request.param == "memory":
        yield MemoryRecordStore(RECORDS)
        return
    store = SQLiteRecordStore(tmp_path / "r.sqlite")
    for r in RECORDS:
        store.append(r)
    if request.param == "sqlite":
        yield store
    else:
        tracker = LLMTracker(cache=False, store=store)
        yield tracker
        tracker.close()
    store.close()


def test_totals_match_the_hand_computed_figures(source: Any) -> None:
    t = usage_stats(source).total
    assert (t.requests, t.errors, t.error_rate) == (8, 3, 0.375)
    assert t.status == {"2xx": 5, "4xx": 1, "5xx": 1, "no_response": 1}
    assert (t.input_tokens, t.output_tokens, t.cached_tokens, t.reasoning_tokens) == (
        460,
        120,
        10,
        5,
    )
    assert t.cost_usd == pytest.approx(0.035)
    assert (t.priced_requests, t.unpriced_requests) == (5, 3)  # unpriced apart, never $0
    assert (t.cache_hits, t.cached_latency_seconds) == (1, 1.0)
    # successful, uncached calls: latencies 1, 2, 4, 3 → sorted 1 2 3 4 (nearest rank)
    assert t.latency_seconds == {"p50": 2.0, "p90": 4.0, "p99": 4.0}
    assert t.ttft_seconds == {"p50": 0.4, "p90": 1.0, "p99": 1.0}
    assert t.output_tokens_per_second == pytest.approx(100 / 10)
    assert t.tool_calls == 4


def test_grouped_by_model_in_order_of_first_appearance(source: Any) -> None:
    groups = usage_stats(source, group_by="model").groups
    assert [g.key for g in groups] == [{"model": "a"}, {"model": "b"}, {"model": "c"}]
    a, b, c = groups
    assert (a.requests, a.errors, a.status) == (5, 1, {"2xx": 4, "5xx": 1})
    assert (a.input_tokens, a.output_tokens, a.tool_calls) == (410, 110, 3)
    assert a.cost_usd == pytest.approx(0.035) and (a.priced_requests, a.unpriced_requests) == (4, 1)
    assert a.latency_seconds == {"p50": 2.0, "p90": 3.0, "p99": 3.0}
    assert a.output_tokens_per_second == pytest.approx(90 / 6)
    assert (b.requests, b.errors, b.cost_usd, b.unpriced_requests) == (2, 1, 0.0, 1)
    assert (b.latency_seconds["p50"], b.output_tokens_per_second) == (4.0, 2.5)
    assert (c.requests, c.errors, c.cost_usd, c.priced_requests) == (1, 1, None, 0)
    assert c.latency_seconds == {"p50": None, "p90": None, "p99": None}
    assert c.output_tokens_per_second is None and c.status == {"no_response": 1}


def test_grouped_by_day_hour_and_two_keys(source: Any) -> None:
    by_day = {g.key["day"]: g.requests for g in usage_stats(source, group_by=["day"])}
    assert by_day == {"2026-12-01": 2, "2026-12-02": 4, "2026-12-03": 2}
    by_hour = {g.key["hour"]: g.requests for g in usage_stats(source, group_by="hour")}
    assert by_hour["2026-12-01T10:00"] == 1 and sum(by_hour.values()) == 8
    pairs = {
        (g.key["provider"], g.key["status"]): g.requests
        for g in usage_stats(source, group_by="provider,status")
    }
    assert pairs == {
        ("openai", "2xx"): 4,
        ("openai", "5xx"): 1,
        ("anthropic", "2xx"): 1,
        ("anthropic", "4xx"): 1,
        ("openai", "no_response"): 1,
    }


@pytest.mark.parametrize(
    ("filters", "ids"),
    [
        ({"status": "error"}, {3, 5, 7}),
        ({"status": "ok"}, {1, 2, 4, 6, 8}),
        ({"status": "5xx"}, {3}),
        ({"status": 429}, {5}),
        ({"status": "no_response"}, {7}),
        ({"start_date": "2026-12-02", "end_date": "2026-12-02"}, {3, 4, 5, 6}),
        ({"start_date": "2026-12-01T11:00:00Z", "end_date": "2026-12-03"}, {2, 3, 4, 5, 6, 7, 8}),
        ({"end_date": "2026-12-01T11:00:00+00:00"}, {1}),
        ({"provider": "anthropic"}, {4, 5}),
        ({"model": "a", "data_id": 1}, {1, 2}),
        ({"combo_id": "x"}, {1, 3, 4}),
        ({"agent_id": "q"}, {2}),
        ({"alias": "smart"}, {8}),
        ({"model": "nobody"}, set()),
    ],
)
def test_filters_select_the_hand_picked_calls(
    source: Any, filters: dict[str, Any], ids: set[int]
) -> None:
    want = [r for r in RECORDS if int(r.call_id[1:]) in ids]
    t = usage_stats(source, **filters).total
    assert t.requests == len(want)
    assert t.input_tokens == sum(r.prompt_tokens for r in want)
    priced = [r.cost_usd for r in want if r.cost_usd is not None]
    assert t.cost_usd == (pytest.approx(sum(priced)) if priced else None)


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="cannot group by 'color'"):
        usage_stats(RECORDS, group_by="model,color")
    with pytest.raises(ConfigError, match="status='weird'"):
        usage_stats(RECORDS, status="weird")
    with pytest.raises(ConfigError, match="start_date='yesterday'"):
        usage_stats(RECORDS, start_date="yesterday")
    with pytest.raises(ConfigError, match="grouped"):
        _ = usage_stats(RECORDS, group_by="model").total


def test_as_dict_and_dataframe_carry_every_figure() -> None:
    stats = usage_stats(RECORDS, group_by="model")
    d = stats.as_dict()
    assert d["group_by"] == ["model"] and d["groups"][0]["key"] == {"model": "a"}
    frame = stats.to_dataframe()
    assert list(frame["model"]) == ["a", "b", "c"]
    assert {"latency_seconds_p50", "status_2xx", "unpriced_requests"} <= set(frame.columns)


def _many(n: int) -> list[CallRecord]:
    """Records with every kind of value the statistics tell apart, in a fixed pattern."""
    out = []
    for i in range(n):
        code = (200, 200, 200, 429, 500, None)[i % 6]
        failed = code is None and i % 12 == 5
        out.append(
            _r(
                i,
                model=("a", "b", None)[i % 3],
                requested_model="c",
                provider=("openai", "anthropic")[i % 2],
                combo_id=f"k{i % 4}",
                status_code=None if failed else code,
                error="boom" if failed or (code or 0) >= 400 else None,
                prompt_tokens=i % 97,
                completion_tokens=i % 31,
                cost_usd=None if i % 7 == 0 else i / 1000,
                latency_seconds=((i * 7919) % 1000) / 997 + 0.0000004,
                ttft_seconds=None if i % 5 == 0 else ((i * 31) % 100) / 101,
                cached=i % 11 == 0,
                estimated_input_tokens=None if i % 9 == 0 else i % 89,
                estimated_output_tokens=None if i % 9 == 0 else i % 29,
                timestamp=f"2026-12-{1 + i % 3:02d}T{i % 24:02d}:59:59.9999996+00:00",
            )
        )
    return out


@pytest.mark.parametrize("group_by", [None, "model", "model,day", "provider,status", "hour"])
def test_sqlite_in_chunks_over_two_readers_equals_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group_by: str | None
) -> None:
    """SQLite's statistics read ranges of rows on two connections and add them
    up: the same figures as the reference, whatever the chunking."""
    import agentopt.tracking.storage.sqlite_store as sqlite_store
    from agentopt.tracking.analytics.usage import normalize, stats_of_records

    records = _many(400)
    monkeypatch.setattr(sqlite_store, "_STAT_CHUNK", 37)
    store = SQLiteRecordStore(tmp_path / "r.sqlite")
    for r in records:
        store.append(r)
    for filters in ({}, {"status": "ok"}, {"start_date": "2026-12-02"}, {"combo_id": "k1"}):
        conds, keys = normalize(filters, group_by)
        want = [g.as_dict() for g in stats_of_records(records, conds, keys)]
        got = usage_stats(store, group_by=group_by, **filters).as_dict()["groups"]
        assert [g["key"] for g in got] == [g["key"] for g in want]
        for g, w in zip(got, want, strict=True):
            for name in ("cost_usd", "cached_latency_seconds", "output_tokens_per_second"):
                assert g.pop(name) == pytest.approx(w.pop(name))
            assert g == w
    assert len(store._stat_conns) == 2
    store.close()


@pytest.mark.parametrize("kind", ["list", "sqlite"])
def test_reported_against_estimated_tokens_by_hand(kind: str, tmp_path: Path) -> None:
    recs = [
        _r(1, prompt_tokens=100, completion_tokens=20, estimated_input_tokens=90,
           estimated_output_tokens=25),
        _r(2, prompt_tokens=50, completion_tokens=10),  # no independent count: left out
        _r(3, prompt_tokens=30, completion_tokens=5, estimated_input_tokens=30,
           estimated_output_tokens=4),
    ]  # fmt: skip
    source: Any = recs
    if kind == "sqlite":
        source = SQLiteRecordStore(tmp_path / "r.sqlite")
        for r in recs:
            source.append(r)
    t = usage_stats(source).total
    assert (t.input_tokens, t.estimated_requests) == (180, 2)
    assert (t.estimated_input_tokens, t.estimated_output_tokens) == (120, 29)
    assert (t.input_tokens_difference, t.output_tokens_difference) == (10, -4)
