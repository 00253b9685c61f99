"""Bad input and faults: the caller sees what the provider sent; records say what went wrong."""

from __future__ import annotations

import httpx
import openai
import pytest
import t1_helpers
from t1_helpers import MSG, OPENAI_KEY

from agentopt.records import PARSE_FAILED
from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker, TrackingTransport

pytestmark = pytest.mark.xdist_group("t1-faults")

# Shared fixtures (module-scoped simulator; no patch left behind).
sim = t1_helpers.sim
no_global_patch = t1_helpers.no_global_patch


def client(sim: SimServer, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=retries)


def test_server_errors_are_recorded_once_per_attempt(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        openai._base_client, "_sleep_for_retry", lambda *a, **k: None, raising=False
    )
    oc = client(sim, retries=2)
    oc._calculate_retry_timeout = lambda *a, **k: 0.0  # type: ignore[method-assign]
    with (
        LLMTracker(cache=False) as t,
        t.track(data_id="e"),
        pytest.raises(openai.InternalServerError),
    ):
        oc.chat.completions.create(model="fault-500", messages=MSG)
    recs = t.records
    assert len(recs) == 3  # the first try and two retries
    assert all(r.status_code == 500 and r.error and "500" in r.error for r in recs)
    assert all(r.model == "fault-500" and r.completion_tokens == 0 for r in recs)


def test_malformed_body_reaches_the_caller_and_records_parse_failed(sim: SimServer) -> None:
    with LLMTracker(cache=False) as t, t.track(data_id="m"):
        raw = client(sim).chat.completions.with_raw_response.create(
            model="fault-malformed", messages=MSG
        )
        text = raw.http_response.text
    [rec] = t.records
    assert rec.status_code == 200 and rec.model == PARSE_FAILED and rec.error
    assert text  # the caller got the bytes the provider sent, unchanged


def test_truncated_stream_is_recorded_with_its_error(sim: SimServer) -> None:
    with LLMTracker(cache=False) as t, t.track(data_id="tr"):
        try:
            for _ in client(sim).chat.completions.create(
                model="fault-truncate", messages=MSG, stream=True
            ):
                pass
        except Exception:
            pass  # whatever the SDK makes of a cut stream, the caller sees it
    [rec] = t.records
    assert rec.stream and rec.error is not None


def test_refused_connection_is_recorded_and_raised() -> None:
    oc = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key=OPENAI_KEY, max_retries=0)
    with (
        LLMTracker(cache=False) as t,
        t.track(data_id="r"),
        pytest.raises(openai.APIConnectionError),
    ):
        oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    [rec] = t.records
    assert rec.status_code is None and rec.error and "ConnectError" in rec.error


def test_timeout_is_recorded() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=req)

    client = httpx.Client(transport=TrackingTransport(httpx.MockTransport(handler)))
    with LLMTracker(cache=False) as t, t.track(data_id="to"), pytest.raises(httpx.ReadTimeout):
        client.post("http://mock.test/v1/chat/completions", json={"model": "m", "messages": MSG})
    [rec] = t.records
    assert rec.error == "ReadTimeout: timed out" and rec.requested_model == "m"


def test_non_json_request_is_forwarded_and_recorded() -> None:
    client = httpx.Client(
        transport=TrackingTransport(
            httpx.MockTransport(lambda r: httpx.Response(400, text="bad request"))
        )
    )
    with LLMTracker(cache=False) as t, t.track(data_id="nj"):
        r = client.post("http://mock.test/v1/chat/completions", content=b"{not json")
    assert r.status_code == 400 and r.text == "bad request"
    [rec] = t.records
    assert rec.status_code == 400 and rec.error and "bad request" in rec.error
    assert rec.requested_model is None and rec.request_body == "{not json"
