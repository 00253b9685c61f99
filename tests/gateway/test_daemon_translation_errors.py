"""A call litellm cannot translate: a clean JSON error for the caller, the traceback in the log."""

from __future__ import annotations

import logging

import httpx
import pytest

from agentopt.gateway.config import AliasConfig, GatewayConfig
from agentopt.sim import SimServer
from tests.gateway.daemon_kit import PLANTED, serving

pytestmark = pytest.mark.xdist_group("daemon")

# An OpenAI-format call whose messages are no list: litellm fails on it with a
# Python error (and puts the traceback into its exception's message).
UNTRANSLATABLE = {"model": "anthropic/claude-haiku-4-5", "messages": "not a list"}


def test_an_untranslatable_openai_call_gets_a_clean_json_error(
    sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with serving(sim) as (d, server):
        r = httpx.post(server.url + "/v1/chat/completions", json=UNTRANSLATABLE, timeout=240)
        records = d.records()
    assert r.status_code == 500
    error = r.json()["error"]
    message = error["message"]
    assert "translating this openai-format call to anthropic/claude-haiku-4-5 failed" in message
    assert "Traceback" not in message and 'File "' not in message and "\n" not in message
    assert "AttributeError" in message or "APIConnectionError" in message  # what failed
    assert r.headers["x-agentopt-request-id"]
    # the log has the whole story, keys never
    assert "Traceback (most recent call last)" in caplog.text
    assert all(k not in caplog.text + r.text for k in PLANTED.values())
    # litellm's own failure is not retried and does not count against the provider
    (rec,) = records
    assert rec.status_code == 500 and rec.error is not None and "Traceback" not in rec.error
    assert d.health_registry.available("anthropic")


def test_an_untranslatable_anthropic_call_gets_an_anthropic_shaped_error(sim: SimServer) -> None:
    with serving(sim) as (_d, server):
        r = httpx.post(
            server.url + "/v1/messages",
            json={"model": "openai/gpt-4o-mini", "max_tokens": 10, "messages": "not a list"},
            timeout=240,
        )
    body = r.json()
    assert r.status_code >= 400 and body["type"] == "error"
    message = body["error"]["message"]
    assert "anthropic-format call to openai/gpt-4o-mini failed" in message
    assert "Traceback" not in message and "\n" not in message


def test_an_alias_falls_back_when_a_target_cannot_be_translated(sim: SimServer) -> None:
    cfg = GatewayConfig(
        aliases={
            "any": AliasConfig(
                targets=["anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"], router="fallback"
            )
        }
    )
    with serving(sim, cfg) as (d, server):
        r = httpx.post(
            server.url + "/v1/chat/completions",
            json={**UNTRANSLATABLE, "model": "any"},
            timeout=240,
        )
        records = d.records()
    # the untranslatable target was tried once (not retried), then the next one
    # got the call as it is (the simulator refuses it in its own words)
    first, second = sorted(records, key=lambda x: x.attempt or 0)
    assert (first.provider, first.status_code, first.attempt) == ("anthropic", 500, 1)
    assert (second.provider, second.attempt) == ("openai", 2)
    assert r.status_code == second.status_code
    assert first.request_id == second.request_id == r.headers["x-agentopt-request-id"]
