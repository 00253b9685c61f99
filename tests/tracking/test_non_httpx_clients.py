"""Clients that do not use httpx are recorded inside tracker sessions with no setup:
requests and urllib in process, aiohttp through the session's gateway (README,
*Agent frameworks*: which clients are captured how). Each is recorded once,
priced, with its errors and its streams; other traffic passes untouched."""

from __future__ import annotations

import asyncio
import http.client
import http.server
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any, ClassVar

import aiohttp
import pytest
import requests

from agentopt.routers import RandomRouter
from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker
from agentopt.tracking.capture import client_capture

pytestmark = pytest.mark.xdist_group("subprocess")

MODEL = "gpt-4o-mini"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "2 + 2?"}]}
STREAM = {**BODY, "stream": True}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as server:
        yield server


@pytest.fixture
def tracker() -> Iterator[LLMTracker]:
    with LLMTracker(cache=False, cache_dir=None) as t:
        yield t


def _url(sim: SimServer) -> str:
    return f"{sim.openai_base_url}/chat/completions"


def _dead_url() -> str:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/chat/completions"


def _sse_data(lines: list[str]) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:]) for line in lines if line.startswith("data: ") and "[DONE]" not in line
    ]


def _assert_priced(rec: Any, usage: dict[str, Any]) -> None:
    assert rec.model == MODEL and rec.status_code == 200 and rec.error is None
    assert rec.prompt_tokens == usage["prompt_tokens"] > 0
    assert rec.completion_tokens == usage["completion_tokens"] > 0
    assert rec.cost_usd is not None and rec.cost_usd > 0


def test_hooks_come_with_the_first_tracker_and_go_with_the_last() -> None:
    assert client_capture.installed() == []
    with LLMTracker(cache=False, cache_dir=None):
        with LLMTracker(cache=False, cache_dir=None):
            assert client_capture.installed() == ["aiohttp", "requests", "urllib.request"]
        assert client_capture.installed() == ["aiohttp", "requests", "urllib.request"]
    assert client_capture.installed() == []
    send = requests.adapters.HTTPAdapter.send
    assert send.__module__ == "requests.adapters"  # the original is back


# -- requests: in process ---------------------------------------------------------------


def test_requests_call_is_recorded_once_with_ids_and_cost(
    sim: SimServer, tracker: LLMTracker
) -> None:
    with tracker.track(data_id="dp", combo_id="c", agent_id="solver"):
        r = requests.post(_url(sim), json=BODY, timeout=30)
    assert r.status_code == 200 and r.url == _url(sim)
    (rec,) = tracker.get_records()
    assert (rec.data_id, rec.combo_id, rec.agent_id) == ("dp", "c", "solver")
    _assert_priced(rec, r.json()["usage"])


def test_requests_session_made_before_the_tracker_and_a_str_body(sim: SimServer) -> None:
    http = requests.Session()
    with LLMTracker(cache=False, cache_dir=None) as tracker, tracker.track(data_id="s"):
        r = http.post(_url(sim), data=json.dumps(BODY), timeout=30)
    (rec,) = tracker.get_records(data_id="s")
    _assert_priced(rec, r.json()["usage"])


def test_requests_stream_streams_and_is_recorded_with_usage(
    sim: SimServer, tracker: LLMTracker
) -> None:
    with tracker.track(data_id="st"):
        r = requests.post(_url(sim), json=STREAM, stream=True, timeout=30)
        lines = [line.decode() for line in r.iter_lines() if line]
    events = _sse_data(lines)
    assert events and "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"]
    )
    assert all(e.get("usage") is None for e in events)  # the caller did not ask for usage
    (rec,) = tracker.get_records(data_id="st")
    assert rec.stream and rec.ttft_seconds is not None and rec.error is None
    assert rec.completion_tokens > 0 and rec.cost_usd is not None and rec.cost_usd > 0


def test_requests_error_status_is_recorded_and_returned(
    sim: SimServer, tracker: LLMTracker
) -> None:
    sim.inject(MODEL, 429)
    with tracker.track(data_id="e"):
        r = requests.post(_url(sim), json=BODY, timeout=30)
    assert r.status_code == 429
    (rec,) = tracker.get_records(data_id="e")
    assert rec.status_code == 429 and rec.error is not None and not rec.ok


def test_requests_connection_error_is_raised_and_recorded(tracker: LLMTracker) -> None:
    with tracker.track(data_id="down"), pytest.raises(requests.ConnectionError):
        requests.post(_dead_url(), json=BODY, timeout=30)
    (rec,) = tracker.get_records(data_id="down")
    assert rec.error is not None and rec.requested_model == MODEL


def test_requests_call_is_routed_and_replayed_from_the_cache(sim: SimServer) -> None:
    router = RandomRouter(candidates=["gpt-4o"], seed=0)
    with (
        LLMTracker(cache=True, cache_dir=None) as tracker,
        tracker.track(data_id="r", router=router),
    ):
        first = requests.post(_url(sim), json=BODY, timeout=30).json()
        again = requests.post(_url(sim), json=BODY, timeout=30).json()
    assert first["model"] == again["model"] == "gpt-4o" and first == again
    a, b = tracker.get_records(data_id="r")
    assert (a.requested_model, a.model, a.cached) == (MODEL, "gpt-4o", False)
    assert (b.model, b.cached) == ("gpt-4o", True)


def test_requests_through_the_session_gateway_is_recorded_once(
    sim: SimServer, tracker: LLMTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", sim.openai_base_url)  # the gateway's upstream
    with tracker.track(data_id="gw") as session:
        base = tracker.get_session_env(session)["OPENAI_BASE_URL"]
        r = requests.post(f"{base}/chat/completions", json=BODY, timeout=30)
    (rec,) = tracker.get_records(data_id="gw")
    _assert_priced(rec, r.json()["usage"])


def test_requests_traffic_that_is_no_llm_call_passes_untouched(
    sim: SimServer, tracker: LLMTracker
) -> None:
    with tracker.track(data_id="other"):
        r = requests.get(f"{sim.openai_base_url}/models", timeout=30)
    assert r.status_code == 200 and r.json()["data"]
    assert tracker.get_records() == []


# -- urllib: in process -----------------------------------------------------------------


def _urllib_post(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    return urllib.request.urlopen(req, timeout=30)


def test_urllib_call_is_recorded_once_with_ids_and_cost(
    sim: SimServer, tracker: LLMTracker
) -> None:
    with tracker.track(data_id="u", agent_id="planner"), _urllib_post(_url(sim), BODY) as resp:
        assert resp.status == 200 and resp.geturl() == _url(sim)
        assert resp.headers["content-type"].startswith("application/json")
        out = json.loads(resp.read())
    (rec,) = tracker.get_records(data_id="u")
    assert rec.agent_id == "planner"
    _assert_priced(rec, out["usage"])


def test_urllib_stream_reads_line_by_line_and_is_recorded(
    sim: SimServer, tracker: LLMTracker
) -> None:
    with tracker.track(data_id="us"), _urllib_post(_url(sim), STREAM) as resp:
        lines = [line.decode().strip() for line in resp]
    assert _sse_data(lines)
    (rec,) = tracker.get_records(data_id="us")
    assert rec.stream and rec.ttft_seconds is not None
    assert rec.completion_tokens > 0 and rec.cost_usd is not None and rec.cost_usd > 0


def test_urllib_error_status_raises_http_error_and_is_recorded(
    sim: SimServer, tracker: LLMTracker
) -> None:
    sim.inject(MODEL, 500)
    with tracker.track(data_id="ue"), pytest.raises(urllib.error.HTTPError) as info:
        _urllib_post(_url(sim), BODY)
    assert info.value.code == 500 and json.loads(info.value.read())["error"]
    (rec,) = tracker.get_records(data_id="ue")
    assert rec.status_code == 500 and rec.error is not None


def test_urllib_connection_error_is_raised_and_recorded(tracker: LLMTracker) -> None:
    with tracker.track(data_id="udown"), pytest.raises(urllib.error.URLError):
        _urllib_post(_dead_url(), BODY)
    (rec,) = tracker.get_records(data_id="udown")
    assert rec.error is not None


class _ForwardProxy(http.server.BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: the request line carries the absolute URL."""

    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.seen.append(self.path)
        target = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers["content-length"]))
        conn = http.client.HTTPConnection(target.netloc, timeout=30)
        conn.request("POST", target.path, body, {"content-type": "application/json"})
        resp = conn.getresponse()
        payload = resp.read()
        self.send_response(resp.status)
        self.send_header("content-type", resp.getheader("content-type") or "")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        conn.close()

    def log_message(self, *args: Any) -> None:
        pass


def test_urllib_through_a_proxy_is_recorded_and_still_proxied(
    sim: SimServer, tracker: LLMTracker
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForwardProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        proxy = f"http://127.0.0.1:{server.server_address[1]}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
        req = urllib.request.Request(
            _url(sim), data=json.dumps(BODY).encode(), headers={"content-type": "application/json"}
        )
        with tracker.track(data_id="proxied"), opener.open(req, timeout=30) as resp:
            out = json.loads(resp.read())
    finally:
        server.shutdown()
        server.server_close()
    assert _ForwardProxy.seen == [_url(sim)]  # it went through the proxy
    (rec,) = tracker.get_records(data_id="proxied")
    _assert_priced(rec, out["usage"])


def test_urllib_through_the_session_gateway_is_recorded_once(
    sim: SimServer, tracker: LLMTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", sim.openai_base_url)
    with tracker.track(data_id="ugw") as session:
        base = tracker.get_session_env(session)["OPENAI_BASE_URL"]
        with _urllib_post(f"{base}/chat/completions", BODY) as resp:
            out = json.loads(resp.read())
    (rec,) = tracker.get_records(data_id="ugw")
    _assert_priced(rec, out["usage"])


# -- aiohttp: through the session's gateway -------------------------------------------------


async def _aiohttp_post(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status, await resp.read()


async def test_aiohttp_call_is_recorded_once_with_ids_and_cost(
    sim: SimServer, tracker: LLMTracker
) -> None:
    async with tracker.track(data_id="a", combo_id="c"):
        status, raw = await _aiohttp_post(_url(sim), BODY)
    assert status == 200
    (rec,) = tracker.get_records(data_id="a")
    assert rec.combo_id == "c"
    _assert_priced(rec, json.loads(raw)["usage"])


async def test_aiohttp_stream_streams_and_is_recorded(sim: SimServer, tracker: LLMTracker) -> None:
    lines: list[str] = []
    async with (
        tracker.track(data_id="as"),
        aiohttp.ClientSession() as http,
        http.post(_url(sim), json=STREAM) as resp,
    ):
        async for line in resp.content:
            lines.append(line.decode().strip())
    assert _sse_data(lines)
    (rec,) = tracker.get_records(data_id="as")
    assert rec.stream and rec.ttft_seconds is not None
    assert rec.completion_tokens > 0 and rec.cost_usd is not None and rec.cost_usd > 0


async def test_aiohttp_error_status_is_recorded_and_routing_applies(
    sim: SimServer, tracker: LLMTracker
) -> None:
    sim.inject(MODEL, 429)
    async with tracker.track(data_id="ae"):
        status, _ = await _aiohttp_post(_url(sim), BODY)
    assert status == 429
    (rec,) = tracker.get_records(data_id="ae")
    assert rec.status_code == 429 and rec.error is not None
    router = RandomRouter(candidates=["gpt-4o"], seed=0)
    async with tracker.track(data_id="ar", router=router):
        status, raw = await _aiohttp_post(_url(sim), BODY)
    assert status == 200 and json.loads(raw)["model"] == "gpt-4o"
    (rec,) = tracker.get_records(data_id="ar")
    assert (rec.requested_model, rec.model) == (MODEL, "gpt-4o")


async def test_aiohttp_outside_a_session_and_other_traffic_are_untouched(
    sim: SimServer, tracker: LLMTracker
) -> None:
    status, _ = await _aiohttp_post(_url(sim), BODY)
    async with (
        tracker.track(data_id="x"),
        aiohttp.ClientSession() as http,
        http.get(f"{sim.openai_base_url}/models") as resp,
    ):
        assert resp.status == 200 and str(resp.url).startswith(sim.url)
    assert status == 200 and tracker.get_records() == []


def test_litellm_calls_over_aiohttp_are_recorded_once(sim: SimServer, tracker: LLMTracker) -> None:
    import litellm

    async def call() -> Any:
        return await litellm.acompletion(
            model=f"openai/{MODEL}",
            messages=BODY["messages"],
            api_base=sim.openai_base_url,
            api_key="sim",
        )

    with tracker.track(data_id="ll"):
        asyncio.run(call())
    (rec,) = tracker.get_records(data_id="ll")
    assert rec.model.endswith(MODEL)


# -- with AGENTOPT_GATEWAY_URL: the daemon records ------------------------------------------


def test_every_client_is_recorded_once_by_the_daemon(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentopt.gateway.daemon import Daemon
    from agentopt.gateway.service import DaemonServer
    from agentopt.tracking.remote import GATEWAY_URL_ENV

    with DaemonServer(Daemon()) as server:
        monkeypatch.setenv(GATEWAY_URL_ENV, server.url)
        with LLMTracker(cache=False, cache_dir=None) as tracker:
            with tracker.track(data_id="remote", combo_id="c"):
                usage = [requests.post(_url(sim), json=BODY, timeout=30).json()["usage"]]
                with _urllib_post(_url(sim), BODY) as resp:
                    usage.append(json.loads(resp.read())["usage"])
                status, raw = asyncio.run(_aiohttp_post(_url(sim), BODY))
                usage.append(json.loads(raw)["usage"])
            recs = tracker.get_records(data_id="remote")
    assert status == 200 and len(recs) == 3
    for rec, u in zip(recs, usage, strict=True):
        assert rec.combo_id == "c"
        _assert_priced(rec, u)
