"""Auth, binding, key policy, secrets, body limits: the daemon is no open proxy."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from agentopt._serving import ThreadedServer
from agentopt.exceptions import ConfigError
from agentopt.gateway.config import GatewayConfig
from agentopt.gateway.daemon import Daemon
from agentopt.gateway.service import DaemonServer
from agentopt.sim import SimServer
from tests.gateway.daemon_kit import PLANTED, CannedUpstream, files_under, serving

pytestmark = pytest.mark.xdist_group("daemon")

DAEMON_KEY = "agk-daemon-key-7e3f19a2"


class CaptureUpstream(CannedUpstream):
    """Remembers the headers it received."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def before_answer(self, scope: Any) -> None:
        self.seen.append({k.decode(): v.decode() for k, v in scope["headers"]})


@pytest.fixture
def upstream() -> Iterator[tuple[CaptureUpstream, str]]:
    app = CaptureUpstream()
    with ThreadedServer(app, name="capture-upstream") as server:
        yield app, server.url + "/v1"


def _call(url: str, **headers: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )


def test_non_loopback_bind_without_a_key_is_refused_with_a_how_to(sim: SimServer) -> None:
    with pytest.raises(ConfigError) as err:
        DaemonServer(Daemon(GatewayConfig()), host="0.0.0.0")
    assert "--api-key" in str(err.value) and "AGENTOPT_API_KEY" in str(err.value)


def test_every_endpoint_but_healthz_needs_the_key(sim: SimServer) -> None:
    with serving(sim, api_key=DAEMON_KEY, host="0.0.0.0") as (d, server):
        url = server.url.replace("0.0.0.0", "127.0.0.1")
        assert httpx.get(url + "/healthz").status_code == 200
        for path in ("/v1/models", "/internal/health", "/agentopt/v1/records"):
            assert httpx.get(url + path).status_code == 401, path
        assert _call(url).status_code == 401
        assert _call(url, authorization="Bearer wrong").status_code == 401
        assert _call(url, authorization=f"Bearer {DAEMON_KEY}").status_code == 200
        assert _call(url, **{"x-api-key": DAEMON_KEY}).status_code == 200
        assert httpx.get(url + "/v1/models", headers={"x-api-key": DAEMON_KEY}).status_code == 200
    assert len(d.store) == 2


def test_loopback_daemon_refuses_foreign_host_headers(sim: SimServer) -> None:
    with serving(sim) as (_, server):
        assert _call(server.url, host="evil.example:80").status_code == 403
        assert _call(server.url).status_code == 200


def test_oversized_body_gets_413(sim: SimServer) -> None:
    with serving(sim, GatewayConfig(max_body_bytes=2000)) as (d, server):
        r = httpx.post(
            server.url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5000}]},
        )
    assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]["message"]
    assert len(d.store) == 0


@pytest.mark.parametrize(
    ("policy", "caller_key", "sent"),
    [
        ("engine", "sk-caller", f"Bearer {PLANTED['OPENAI_API_KEY']}"),
        ("caller", "sk-caller", "Bearer sk-caller"),
        ("caller-first", "sk-caller", "Bearer sk-caller"),
        ("caller-first", None, f"Bearer {PLANTED['OPENAI_API_KEY']}"),
        ("caller", None, None),
    ],
)
def test_key_policy_decides_which_key_reaches_the_provider(
    sim: SimServer,
    upstream: tuple[CaptureUpstream, str],
    policy: str,
    caller_key: str | None,
    sent: str | None,
) -> None:
    app, base = upstream
    daemon = Daemon(
        GatewayConfig(keys=policy),  # type: ignore[arg-type]
        openai_base_url=base,
        environ=dict(PLANTED),
    )
    with DaemonServer(daemon) as server:
        headers = {} if caller_key is None else {"authorization": f"Bearer {caller_key}"}
        assert _call(server.url, **headers).status_code == 200
    assert app.seen[-1].get("authorization") == sent


def test_the_daemon_key_is_never_forwarded(upstream: tuple[CaptureUpstream, str]) -> None:
    app, base = upstream
    daemon = Daemon(
        GatewayConfig(keys="caller-first"), openai_base_url=base, api_key=DAEMON_KEY, environ={}
    )
    with DaemonServer(daemon) as server:
        assert _call(server.url, authorization=f"Bearer {DAEMON_KEY}").status_code == 200
    assert DAEMON_KEY not in json.dumps(app.seen)


def test_secrets_file_must_be_private(
    tmp_path: Path, upstream: tuple[CaptureUpstream, str]
) -> None:
    app, base = upstream
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("OPENAI_API_KEY: sk-from-secrets-file-123\n")
    os.chmod(secrets, 0o644)
    with pytest.raises(ConfigError) as err:
        Daemon(GatewayConfig(secrets_file=str(secrets)), environ={})
    assert "chmod 600" in str(err.value) and "sk-from-secrets" not in str(err.value)
    os.chmod(secrets, 0o600)
    daemon = Daemon(GatewayConfig(secrets_file=str(secrets)), openai_base_url=base, environ={})
    with DaemonServer(daemon) as server:
        assert _call(server.url).status_code == 200
    assert app.seen[-1]["authorization"] == "Bearer sk-from-secrets-file-123"


def test_a_planted_key_is_never_in_the_store_logs_or_errors(
    sim: SimServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = tmp_path / "records.sqlite"
    dead = "http://127.0.0.1:9"  # nothing listens: connection refused
    cfg = GatewayConfig(providers={"dead": {"base_url": dead}})  # type: ignore[dict-item]
    bodies: list[str] = []
    with serving(sim, cfg, store=store, api_key=DAEMON_KEY) as (d, server):
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=DAEMON_KEY, max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        for model in ("dead/some-model", "anthropic/claude-haiku-4-5", "nowhere/x"):
            r = httpx.post(
                server.url + "/v1/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {DAEMON_KEY}"},
                timeout=120,  # the first translated call imports litellm
            )
            bodies.append(r.text)
        records = httpx.get(
            server.url + "/agentopt/v1/records", headers={"x-api-key": DAEMON_KEY}
        ).text
        export = "\n".join(r.model_dump_json() for r in d.records())
    assert "upstream" in bodies[0] and "ConnectError" in bodies[0]
    secrets = [*PLANTED.values(), DAEMON_KEY]
    haystacks = {
        "errors": "\n".join(bodies),
        "logs": caplog.text,
        "records api": records,
        "export": export,
    }
    for f in files_under(tmp_path):
        haystacks[str(f)] = f.read_bytes().decode("latin-1")
    for where, text in haystacks.items():
        for s in secrets:
            assert s not in text, f"a key leaked into {where}"


class BreakingStream:
    """An upstream whose stream breaks half-way (the connection drops)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "half"}}]}  # fmt: skip
        await send(
            {
                "type": "http.response.body",
                "body": b"data: " + json.dumps(chunk).encode() + b"\n\n",
                "more_body": True,
            }
        )
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        assert transport is not None
        transport.close()  # the connection drops mid-body


def test_a_stream_that_breaks_mid_body_prints_no_traceback(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    with ThreadedServer(BreakingStream(), name="breaking-upstream") as up:
        daemon = Daemon(GatewayConfig(), openai_base_url=up.url + "/v1", environ={})
        with DaemonServer(daemon) as server:
            with httpx.stream(
                "POST",
                server.url + "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [], "stream": True},
            ) as r:
                body = b"".join(r.iter_raw())
            (rec,) = daemon.records()
    assert b"half" in body
    assert rec.error is not None and rec.stream
    printed = capfd.readouterr()
    assert "Traceback" not in caplog.text + printed.err + printed.out
    assert "upstream stream from" in caplog.text  # one line says what broke


def test_the_loopback_gateway_prints_no_traceback_when_a_stream_breaks(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from agentopt.gateway import local
    from agentopt.tracking import LLMTracker

    caplog.set_level(logging.INFO)
    with ThreadedServer(BreakingStream(), name="breaking-upstream") as up:
        t = LLMTracker(cache=False)
        t.start()
        try:
            with t.track(data_id="broken") as s:
                proxy = local.proxy_for(t, s)
                assert proxy is not None
                url = proxy.base_url_for(up.url + "/v1") + "/chat/completions"
                with httpx.stream(
                    "POST", url, json={"model": "m", "messages": [], "stream": True}
                ) as r:
                    body = b"".join(r.iter_raw())
            (rec,) = t.get_records(data_id="broken")
        finally:
            t.close()
    assert b"half" in body and rec.error is not None
    printed = capfd.readouterr()
    assert "Traceback" not in caplog.text + printed.err + printed.out
    assert "broke mid-body" in caplog.text
