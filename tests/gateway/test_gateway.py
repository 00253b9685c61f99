"""The loopback pass-through gateway: forwards through the pipeline, records once."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from agentopt._serving import ThreadedServer
from agentopt.gateway import local
from agentopt.gateway.app import GatewayApp
from agentopt.gateway.asgi import Receive, Scope, Send
from agentopt.gateway.upstreams import Upstreams
from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker

pytestmark = pytest.mark.xdist_group("gateway")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as s:
        yield s


def _tracker(**kw: object) -> LLMTracker:
    t = LLMTracker(cache_dir=None, **kw)  # type: ignore[arg-type]
    t.start()
    return t


@pytest.fixture
def tracker() -> Iterator[LLMTracker]:
    t = _tracker(cache=False)
    yield t
    local.stop_gateway(t)
    t.close()


def test_openai_sdk_through_the_gateway_is_recorded_once(
    tracker: LLMTracker, sim: SimServer
) -> None:
    with tracker.track(data_id="g1", combo_id="c") as s:
        proxy = local.proxy_for(tracker, s)
        assert proxy is not None and proxy.url.endswith(f"/s/{proxy.token}")
        assert s.session_id not in proxy.url and len(proxy.token) >= 32  # unguessable
        client = openai.OpenAI(
            base_url=proxy.base_url_for(sim.openai_base_url), api_key="sk-secret"
        )
        r = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        stream = client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "s"}], stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        chunks = list(stream)
    assert r.model == "gpt-4o-mini"
    assert chunks and chunks[-1].usage is not None
    recs = tracker.get_records(data_id="g1")
    # captured by the gateway only, not a second time by the in-process httpx capture
    assert [(x.model, x.stream, x.combo_id) for x in recs] == [
        ("gpt-4o-mini", False, "c"),
        ("gpt-4.1", True, "c"),
    ]
    assert recs[0].total_tokens == r.usage.total_tokens
    assert recs[1].completion_tokens == chunks[-1].usage.completion_tokens


def test_anthropic_stream_through_the_gateway(tracker: LLMTracker, sim: SimServer) -> None:
    with tracker.track(data_id="g2") as s:
        proxy = local.proxy_for(tracker, s)
        assert proxy is not None
        client = anthropic.Anthropic(
            base_url=proxy.base_url_for(sim.anthropic_base_url), api_key="k"
        )
        with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            final = stream.get_final_message()
    (rec,) = tracker.get_records(data_id="g2")
    assert (rec.model, rec.stream, rec.error) == ("claude-haiku-4-5", True, None)
    assert rec.completion_tokens == final.usage.output_tokens
    assert rec.prompt_tokens == final.usage.input_tokens


def test_non_llm_requests_pass_through_unrecorded(tracker: LLMTracker, sim: SimServer) -> None:
    with tracker.track(data_id="g3") as s:
        proxy = local.proxy_for(tracker, s)
        assert proxy is not None
        r = httpx.get(proxy.base_url_for(sim.openai_base_url) + "/models")
    assert r.status_code == sim_status(sim, "/v1/models")
    assert tracker.get_records(data_id="g3") == []


def sim_status(sim: SimServer, path: str) -> int:
    return httpx.get(sim.url + path).status_code


def test_routes_and_errors(tracker: LLMTracker, sim: SimServer) -> None:
    with tracker.track() as s:
        proxy = local.proxy_for(tracker, s)
    assert proxy is not None
    base = proxy.gateway_url
    assert httpx.get(base + "/healthz").text == "ok"
    r = httpx.post(base + "/v1/chat/completions", json={})
    assert r.status_code == 404 and "no route" in r.json()["error"]["message"]
    r = httpx.post(f"{base}/s/x/nosuchkey/v1/chat/completions", json={})
    assert r.status_code == 404 and "unknown upstream" in r.json()["error"]["message"]


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return int(port)


def test_unreachable_upstream_gives_502_and_one_error_record(tracker: LLMTracker) -> None:
    with tracker.track(data_id="g4") as s:
        proxy = local.proxy_for(tracker, s)
        assert proxy is not None
        url = proxy.base_url_for(f"http://127.0.0.1:{_closed_port()}/v1") + "/chat/completions"
        r = httpx.post(url, json={"model": "gpt-4o", "messages": []})
    assert r.status_code == 502
    assert "upstream" in r.json()["error"]["message"]
    (rec,) = tracker.get_records(data_id="g4")
    assert rec.error is not None and rec.requested_model == "gpt-4o"


def test_cache_hit_through_the_gateway(sim: SimServer) -> None:
    t = _tracker(cache=True)
    try:
        with t.track(data_id="g5") as s:
            proxy = local.proxy_for(t, s)
            assert proxy is not None
            url = proxy.base_url_for(sim.openai_base_url) + "/chat/completions"
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "cache me"}]}
            first = httpx.post(url, json=body, headers={"authorization": "Bearer a"})
            second = httpx.post(url, json=body, headers={"authorization": "Bearer a"})
        assert first.json() == second.json()
        assert [r.cached for r in t.get_records(data_id="g5")] == [False, True]
    finally:
        local.stop_gateway(t)
        t.close()


def test_a_session_token_expires_when_the_session_ends(tracker: LLMTracker, sim: SimServer) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}
    with tracker.track(data_id="late") as s:
        env = local.session_env_for(tracker, s, {"OPENAI_BASE_URL": sim.openai_base_url})
        url = env["OPENAI_BASE_URL"] + "/chat/completions"
        assert httpx.post(url, json=body).status_code == 200
        # knowing the session id is not enough: the URL needs the token
        token = url.split("/s/")[1].split("/")[0]
        assert httpx.post(url.replace(token, s.session_id), json=body).status_code == 403
    late = httpx.post(url, json=body)
    assert late.status_code == 403 and "ended" in late.json()["error"]["message"]
    (rec,) = tracker.get_records(data_id="late")
    assert rec.session_id == s.session_id


def test_only_llm_endpoints_from_loopback_hosts(tracker: LLMTracker, sim: SimServer) -> None:
    with tracker.track() as s:
        proxy = local.proxy_for(tracker, s)
        assert proxy is not None
        base = proxy.base_url_for(sim.openai_base_url)
        other = httpx.post(base + "/files", json={})
        rebound = httpx.post(
            base + "/chat/completions",
            json={"model": "gpt-4o", "messages": []},
            headers={"host": "attacker.example"},
        )
    assert other.status_code == 404 and "not an LLM endpoint" in other.json()["error"]["message"]
    assert rebound.status_code == 403


def test_gateway_stops_with_the_tracker(sim: SimServer) -> None:
    t = _tracker(cache=False)
    with t.track() as s:
        proxy = local.proxy_for(t, s)
    assert proxy is not None
    assert httpx.get(proxy.gateway_url + "/healthz").status_code == 200
    local.stop_gateway(t)  # what LLMTracker.stop() does (through subprocess_front)
    t.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(proxy.gateway_url + "/healthz")
    assert local.proxy_for(t, s) is None  # not running: no endpoint
    t.close()


async def test_app_without_a_tracker_answers_503() -> None:
    app = GatewayApp(lambda sid: None, Upstreams())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as c:
        r = await c.post("/s/abc/openai/v1/chat/completions", json={})
    assert r.status_code == 503


class _HeldEndUpstream:
    """An OpenAI-style upstream whose stream sends every event, ``[DONE]``
    included, then holds its last bytes (the end of the chunked body) until
    ``release`` is set: the moment between the caller's last read and the
    gateway's record, made as long as the test wants."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunk = {
            "id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4.1",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}],
        }  # fmt: skip
        usage = dict(chunk, choices=[], usage={
            "prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4,
        })  # fmt: skip
        body = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in (chunk, usage))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body + b"data: [DONE]\n\n",
                    "more_body": True})  # fmt: skip
        await asyncio.to_thread(self.release.wait, 30)
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def held_upstream() -> Iterator[tuple[_HeldEndUpstream, str]]:
    app = _HeldEndUpstream()
    server = ThreadedServer(app, name="held upstream")
    server.start()
    try:
        yield app, server.url + "/v1"
    finally:
        app.release.set()
        server.stop()


def test_a_session_that_ends_has_the_record_of_a_stream_the_sdk_closed_at_done(
    tracker: LLMTracker,
    held_upstream: tuple[_HeldEndUpstream, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upstream, base_url = held_upstream
    monkeypatch.setattr(local, "SETTLE_S", 60.0)  # the bound is not what is tested here
    # Runs first at the session's end: the upstream's last bytes leave only now,
    # so the record can exist only if the session's end waits for it.
    tracker._session_end_hooks.insert(0, lambda s: upstream.release.set())
    with tracker.track(data_id="held") as s:
        proxy = local.proxy_for(tracker, s)
        assert proxy is not None
        client = openai.OpenAI(base_url=proxy.base_url_for(base_url), api_key="k")
        stream = client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "s"}], stream=True
        )
        chunks = list(stream)  # the SDK stops and closes at [DONE]
        assert chunks and not upstream.release.is_set()
    (rec,) = tracker.get_records(data_id="held")
    assert (rec.model, rec.stream, rec.completion_tokens, rec.error) == ("gpt-4.1", True, 1, None)


def test_a_stream_left_open_delays_the_sessions_end_boundedly_and_is_recorded_once(
    tracker: LLMTracker,
    held_upstream: tuple[_HeldEndUpstream, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upstream, base_url = held_upstream
    monkeypatch.setattr(local, "SETTLE_S", 0.05)
    app = local.gateway_of(tracker).app
    settled: list[str] = []

    def settle(session_id: str, timeout: float) -> bool:
        settled.append(session_id)
        return GatewayApp.settle(app, session_id, timeout)

    monkeypatch.setattr(app, "settle", settle)
    client = httpx.Client()
    with tracker.track(data_id="open") as s:
        proxy = local.proxy_for(tracker, s)
        assert proxy is not None
        request = client.build_request(
            "POST", proxy.base_url_for(base_url) + "/chat/completions",
            json={"model": "gpt-4.1", "messages": [], "stream": True},
        )  # fmt: skip
        r = client.send(request, stream=True)
        body = r.iter_raw()
        assert r.status_code == 200 and b"[DONE]" in next(body)
        with tracker.track(data_id="inner") as inner:
            pass
        assert settled == []  # a session that never used the gateway does not wait at all
    # The session ended with its call still in flight (the upstream holds its
    # end until released): its end waited SETTLE_S, not for the call.
    assert settled == [s.session_id] and inner.session_id not in settled
    assert app._inflight.get(s.session_id) == 1
    upstream.release.set()
    for _ in body:
        pass
    r.close()
    client.close()
    tracker.stop()  # a call still open now would be recorded as abandoned
    (rec,) = tracker.get_records(data_id="open")
    assert rec.model == "gpt-4.1" and rec.stream
