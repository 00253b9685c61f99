"""The independent token count kept per call: computed off the call's path,
before redaction, stored beside the provider's usage, and summed by usage_stats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import litellm
import pytest

from agentopt import usage_stats
from agentopt.records import CallRecord, Usage
from agentopt.tracking.analytics.token_estimate import TokenEstimator, estimate
from agentopt.tracking.recorder import Exchange, Recorder
from agentopt.tracking.storage.store import MemoryRecordStore, SQLiteRecordStore

REQ = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is two plus two?"}]}
RESP = {"choices": [{"message": {"role": "assistant", "content": "Two plus two is four."}}]}


def _counts() -> tuple[int, int]:
    est_in = litellm.token_counter(model="gpt-4o-mini", messages=REQ["messages"])
    est_out = litellm.token_counter(
        model="gpt-4o-mini", text="Two plus two is four.", count_response_tokens=True
    )
    return int(est_in), int(est_out)


def _call(recorder: Recorder, *, status: int = 200, cached: bool = False) -> CallRecord:
    ex = Exchange(
        provider="openai",
        wire="openai",
        url="https://api.openai.com/v1/chat/completions",
        request_body=REQ,
        requested_model="gpt-4o-mini",
        model="gpt-4o-mini",
        stream=False,
        session=None,
    )
    return recorder.record(
        ex,
        status_code=status,
        model="gpt-4o-mini",
        usage=Usage(prompt_tokens=14, completion_tokens=7),
        response_body=RESP if status < 400 else {"error": {"message": "boom"}},
        latency_seconds=0.5,
        cached=cached,
        error=None if status < 400 else f"HTTP {status}",
    )


def test_estimate_counts_request_and_answer_with_litellm() -> None:
    assert estimate("gpt-4o-mini", REQ, RESP) == _counts()
    assert estimate("gpt-4o-mini", {"model": "m", "messages": "<redacted>"}, RESP) is None


def test_redacted_records_keep_the_count_of_their_unredacted_bodies() -> None:
    store = MemoryRecordStore()
    estimator = TokenEstimator(store)
    recorder = Recorder(store, redact=True, estimator=estimator)
    ok = _call(recorder)
    failed = _call(recorder, status=500)
    hit = _call(recorder, cached=True)
    assert estimator.wait(timeout=120)
    assert ok.request_body["messages"] == "<redacted>"  # no content stored
    assert (ok.estimated_input_tokens, ok.estimated_output_tokens) == _counts()
    for r in (failed, hit):  # not comparable: never guessed
        assert (r.estimated_input_tokens, r.estimated_output_tokens) == (None, None)
    estimator.close()


def test_sqlite_row_written_before_the_count_gets_it(tmp_path: Path) -> None:
    """The count may finish after the store wrote the record: the row and the
    JSON are updated, and statistics show both figures and their difference."""
    store = SQLiteRecordStore(tmp_path / "r.sqlite")
    estimator = TokenEstimator(store)
    recorder = Recorder(store, estimator=estimator)
    with estimator._cond:  # hold the counter back until the record is written
        rec = _call(recorder)
        store.flush()
        assert store.query()[0].estimated_input_tokens is None
    assert estimator.wait(timeout=120)
    est_in, est_out = _counts()
    assert (store.query()[0].estimated_input_tokens, rec.estimated_output_tokens) == (
        est_in,
        est_out,
    )
    _call(recorder, status=500)
    estimator.wait(timeout=120)
    t = usage_stats(store).total
    assert (t.requests, t.estimated_requests) == (2, 1)
    assert (t.estimated_input_tokens, t.estimated_output_tokens) == (est_in, est_out)
    assert (t.input_tokens_difference, t.output_tokens_difference) == (14 - est_in, 7 - est_out)
    assert usage_stats(store.all()).total == t  # the reference agrees
    estimator.close()
    store.close()


def test_a_full_queue_skips_counts_and_never_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryRecordStore()
    estimator = TokenEstimator(store, max_pending=1)
    monkeypatch.setattr(estimator, "_ensure_thread", lambda: None)  # nothing drains the queue
    recorder = Recorder(store, estimator=estimator)
    records: list[Any] = [_call(recorder) for _ in range(3)]
    assert estimator.skipped == 2 and len(records) == 3
