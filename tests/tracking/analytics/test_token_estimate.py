"""The independent token count kept per call: computed off the call's path,
before redaction, stored beside the provider's usage, and summed by usage_stats."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import litellm
import pytest

from agentopt import usage_stats
from agentopt.records import CallRecord, Usage
from agentopt.tracking.analytics.token_estimate import TokenEstimator, estimate
from agentopt.tracking.analytics.token_worker import TokenWorker, shared_worker
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


ITEMS: list[tuple[str | None, Any, Any]] = [
    ("gpt-4o-mini", REQ, RESP),
    (
        "claude-haiku-4-5",
        {"system": "Be brief.", "messages": [{"role": "user", "content": [{"text": "Hi"}]}]},
        {"content": [{"type": "text", "text": "Hello."}, {"type": "tool_use", "input": {"a": 1}}]},
    ),
    (None, {"input": "Say hi"}, {"output": [{"content": [{"text": "hi"}]}]}),
    ("gpt-4o-mini", {"model": "m", "messages": "<redacted>"}, RESP),  # not countable: None
]


def test_the_counting_process_answers_what_this_process_would() -> None:
    worker = TokenWorker()
    try:
        assert worker.count(ITEMS) == [estimate(*item) for item in ITEMS]
        assert worker.count([]) == []
    finally:
        worker.close()


def test_a_killed_counting_process_is_started_again_for_the_next_batch() -> None:
    store = MemoryRecordStore()
    worker = TokenWorker()
    estimator = TokenEstimator(store, worker=worker)
    recorder = Recorder(store, estimator=estimator)
    first = _call(recorder)
    assert estimator.wait(timeout=120)
    assert estimator.worker is not None and estimator.worker.pid is not None
    proc = estimator.worker._proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    second = _call(recorder)
    assert estimator.wait(timeout=120)
    for rec in (first, second):
        assert (rec.estimated_input_tokens, rec.estimated_output_tokens) == _counts()
    assert worker.restarts == 1
    estimator.close()
    worker.close()


def test_a_batch_the_counting_process_fails_is_counted_here(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryRecordStore()
    worker = TokenWorker()
    worker.command = [sys.executable, "-c", "raise SystemExit(3)"]  # dies at once
    estimator = TokenEstimator(store, worker=worker)
    recorder = Recorder(store, estimator=estimator)
    with caplog.at_level(logging.WARNING, logger="agentopt.tracking"):
        rec = _call(recorder)
        assert estimator.wait(timeout=120)
    assert (rec.estimated_input_tokens, rec.estimated_output_tokens) == _counts()
    assert estimator.counted == 1 and estimator.skipped == 0
    assert "exit code 3" in caplog.text and "counting 1 call(s) in this process" in caplog.text
    for _ in range(2):  # three failures in a row: the process is not started again
        _call(recorder)
        assert estimator.wait(timeout=120)
    assert estimator.worker is None and estimator.counted == 3
    _call(recorder)
    assert estimator.wait(timeout=120) and estimator.counted == 4
    estimator.close()


def test_estimators_in_one_process_share_one_counting_process() -> None:
    a, b = TokenEstimator(MemoryRecordStore()), TokenEstimator(MemoryRecordStore())
    assert a.worker is b.worker is shared_worker()
    assert TokenEstimator(in_process=True).worker is None
