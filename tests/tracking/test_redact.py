"""Redaction: credentials never kept; with redact=True no message content kept."""

from __future__ import annotations

import json

from agentopt.tracking.redact import REDACTED, scrub_body, scrub_headers, scrub_url


def test_credential_headers_are_replaced_whatever_their_case() -> None:
    out = scrub_headers(
        [
            ("Authorization", "Bearer sk-1"),
            ("X-API-Key", "a"),
            ("x-goog-api-key", "g"),
            ("accept", "*/*"),
        ]
    )
    assert out == {
        "Authorization": REDACTED,
        "X-API-Key": REDACTED,
        "x-goog-api-key": REDACTED,
        "accept": "*/*",
    }


def test_url_keys_and_userinfo_are_removed() -> None:
    url = "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent?key=AIzaSECRET&alt=sse"
    out = scrub_url(url)
    assert "AIzaSECRET" not in out and "alt=sse" in out
    assert "hunter2" not in scrub_url("https://user:hunter2@host/v1/chat/completions")
    assert scrub_url("http://127.0.0.1:1/v1/messages") == "http://127.0.0.1:1/v1/messages"


def test_body_credentials_always_go_content_stays_without_redact() -> None:
    body = {"model": "m", "api_key": "sk-x", "messages": [{"role": "user", "content": "hi"}]}
    out = scrub_body(body)
    assert out["api_key"] == REDACTED
    assert out["messages"] == body["messages"]
    assert body["api_key"] == "sk-x"  # the caller's body is not mutated


def test_redact_removes_request_and_response_content_but_keeps_usage() -> None:
    request = {
        "model": "claude",
        "system": "secret system prompt",
        "messages": [{"role": "user", "content": "secret question"}],
        "max_tokens": 10,
    }
    response = {
        "model": "claude",
        "content": [{"type": "text", "text": "secret answer"}],
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }
    chat = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "secret answer",
                    "tool_calls": [{"function": {"name": "f", "arguments": '{"secret": 1}'}}],
                }
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }
    gemini = {
        "contents": [{"parts": [{"text": "secret"}]}],
        "candidates": [{"content": {"parts": [{"text": "secret"}]}}],
        "usageMetadata": {"promptTokenCount": 1},
    }
    for body in (request, response, chat, gemini):
        out = scrub_body(body, redact=True)
        assert "secret" not in json.dumps(out)
    assert scrub_body(response, redact=True)["usage"] == response["usage"]
    assert scrub_body(request, redact=True)["max_tokens"] == 10
    assert scrub_body(gemini, redact=True)["usageMetadata"] == {"promptTokenCount": 1}
    assert scrub_body("raw secret text", redact=True) == REDACTED


def test_nested_credentials_go_and_clean_bodies_are_not_copied() -> None:
    body = {
        "model": "m",
        "extra_headers": {"Authorization": "Bearer sk-1", "X-Trace": "t"},
        "metadata": {"api_key": "k"},
    }
    out = scrub_body(body)
    assert out["extra_headers"] == {"Authorization": REDACTED, "X-Trace": "t"}
    assert out["metadata"] == {"api_key": REDACTED}
    assert body["extra_headers"]["Authorization"] == "Bearer sk-1"
    clean = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert scrub_body(clean) is clean
