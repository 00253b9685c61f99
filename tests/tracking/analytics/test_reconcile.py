"""Reported usage against an independent tokenizer count, computed by hand."""

from __future__ import annotations

import litellm

from agentopt.records import CallRecord
from agentopt.tracking.analytics.reconcile import reconcile_usage

REQ = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is two plus two?"}]}
RESP = {"choices": [{"message": {"role": "assistant", "content": "Two plus two is four."}}]}


def test_reconcile_counts_each_call_both_ways() -> None:
    recs = [
        CallRecord(
            model="gpt-4o-mini",
            prompt_tokens=14,
            completion_tokens=7,
            request_body=REQ,
            response_body=RESP,
            status_code=200,
        ),
        CallRecord(
            model="gpt-4o-mini",
            prompt_tokens=14,
            completion_tokens=7,
            request_body="<redacted>",
            response_body=RESP,
            status_code=200,
        ),
        CallRecord(model="gpt-4o-mini", status_code=500, error="HTTP 500", request_body=REQ),
    ]
    (g,) = reconcile_usage(recs)
    est_in = litellm.token_counter(model="gpt-4o-mini", messages=REQ["messages"])
    est_out = litellm.token_counter(
        model="gpt-4o-mini", text="Two plus two is four.", count_response_tokens=True
    )
    d = g.as_dict()
    assert (d["compared"], d["not_comparable"]) == (1, 2)
    assert (d["reported_input_tokens"], d["estimated_input_tokens"]) == (14, est_in)
    assert (d["reported_output_tokens"], d["estimated_output_tokens"]) == (7, est_out)
    assert d["output_difference"] == 7 - est_out
    assert d["input_ratio"] == 14 / est_in
