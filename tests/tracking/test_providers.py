"""ProviderRegistry: which requests are LLM calls, and in which wire format."""

from __future__ import annotations

import httpx
import pytest

from agentopt.exceptions import ConfigError
from agentopt.tracking.providers import OFFICIAL_BASE_URLS, default_registry


@pytest.mark.parametrize(
    ("url", "name", "wire"),
    [
        ("https://api.openai.com/v1/chat/completions", "openai", "openai"),
        ("https://api.openai.com/v1/responses", "openai", "openai"),
        ("https://api.anthropic.com/v1/messages", "anthropic", "anthropic"),
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent",
            "gemini",
            "gemini",
        ),
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            "gemini",
            "gemini",
        ),
        ("https://api.groq.com/openai/v1/chat/completions", "groq", "openai"),
    ],
)
def test_official_endpoints_match_with_their_wire(url: str, name: str, wire: str) -> None:
    spec = default_registry().match("POST", url)
    assert spec is not None
    assert (spec.name, spec.wire) == (name, wire)


@pytest.mark.parametrize(
    ("url", "wire", "base"),
    [
        ("http://127.0.0.1:8123/v1/chat/completions", "openai", "http://127.0.0.1:8123/v1"),
        ("http://localhost:9000/openai/v1/responses", "openai", "http://localhost:9000/openai/v1"),
        ("http://127.0.0.1:8123/v1/messages", "anthropic", "http://127.0.0.1:8123"),
        ("http://10.0.0.2/v1beta/models/g-1:generateContent", "gemini", "http://10.0.0.2"),
    ],
)
def test_any_host_on_a_well_known_path_matches(url: str, wire: str, base: str) -> None:
    spec = default_registry().match("POST", httpx.URL(url))
    assert spec is not None
    assert spec.wire == wire
    assert spec.name == wire
    assert spec.base_url == base


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "https://api.anthropic.com/v1/messages/count_tokens"),
        ("POST", "https://api.openai.com/v1/embeddings"),
        ("POST", "https://api.openai.com/v1/responses/resp_123/cancel"),
        ("GET", "https://api.openai.com/v1/chat/completions"),
        ("GET", "https://api.openai.com/v1/models"),
        ("POST", "http://127.0.0.1:8123/v1/files"),
        ("POST", "not a url at all ::"),
    ],
)
def test_non_llm_requests_do_not_match(method: str, url: str) -> None:
    assert default_registry().match(method, url) is None


def test_registered_provider_matches_its_host_and_patterns() -> None:
    reg = default_registry()
    spec = reg.register("corp", "https://llm.corp.example/api", [r"/generate$"], wire="openai")
    assert reg.match("POST", "https://llm.corp.example/api/generate") == spec
    assert reg.by_name("corp") == spec
    assert spec.hosts == ("llm.corp.example",)
    # other paths on that host fall back to the well-known ones, named after the host's provider
    other = reg.match("POST", "https://llm.corp.example/api/v1/chat/completions")
    assert other is not None and other.name == "corp"
    assert reg.match("POST", "https://llm.corp.example/api/health") is None


def test_two_local_providers_on_one_host_are_told_apart_by_port() -> None:
    reg = default_registry()
    reg.register("vllm-a", "http://127.0.0.1:8001/v1", [r"/chat/completions$"])
    reg.register("vllm-b", "http://127.0.0.1:8002/v1", [r"/chat/completions$"])
    a = reg.match("POST", "http://127.0.0.1:8001/v1/chat/completions")
    b = reg.match("POST", "http://127.0.0.1:8002/v1/chat/completions")
    assert (a and a.name, b and b.name) == ("vllm-a", "vllm-b")
    # A third port on the same host is neither of them: a generic OpenAI endpoint.
    c = reg.match("POST", "http://127.0.0.1:8003/v1/chat/completions")
    assert c is not None and c.name == "openai" and c.base_url == "http://127.0.0.1:8003/v1"
    # Re-registering one keeps the other.
    reg.register("vllm-a", "http://127.0.0.1:8001/v1", [r"/generate$"])
    b = reg.match("POST", "http://127.0.0.1:8002/v1/chat/completions")
    assert b is not None and b.name == "vllm-b"


def test_reregistering_replaces_and_invalidates_the_memo() -> None:
    reg = default_registry()
    url = "https://llm.corp.example/x"
    assert reg.match("POST", url) is None  # memoised miss
    reg.register("corp", "https://llm.corp.example", [r"/x$"])
    first = reg.match("POST", url)
    assert first is not None and first.name == "corp"
    reg.register("corp", "https://llm.corp.example", [r"/y$"], wire="anthropic")
    assert reg.match("POST", url) is None
    again = reg.match("POST", "https://llm.corp.example/y")
    assert again is not None and again.wire == "anthropic"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("", "https://x.example", ["/a"]), {}),
        (("x", "ftp://x.example", ["/a"]), {}),
        (("x", "/relative", ["/a"]), {}),
        (("x", "https://x.example", ["(unclosed"]), {}),
        (("x", "https://x.example", ["/a"]), {"wire": "cohere"}),
    ],
)
def test_bad_registration_is_a_config_error(args: tuple, kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="register_provider"):
        default_registry().register(*args, **kwargs)


def test_by_name_knows_the_official_bases() -> None:
    reg = default_registry()
    for wire in ("openai", "anthropic", "gemini"):
        spec = reg.by_name(wire)
        assert spec is not None and spec.base_url == OFFICIAL_BASE_URLS[wire]  # type: ignore[index]
    assert reg.by_name("nope") is None


def test_ignored_origins_never_match() -> None:
    from agentopt.tracking.providers import ignore_origin, unignore_origin

    reg = default_registry()
    url = "http://127.0.0.1:45678/s/abc/openai/v1/chat/completions"
    assert reg.match("POST", url) is not None
    ignore_origin("http://127.0.0.1:45678")
    try:
        assert reg.match("POST", url) is None
        assert reg.match("POST", "http://127.0.0.1:45679/v1/chat/completions") is not None
    finally:
        unignore_origin("http://127.0.0.1:45678")
    assert reg.match("POST", url) is not None


def test_ignoring_an_origin_invalidates_memoised_answers() -> None:
    from agentopt.tracking.providers import ignore_origin, unignore_origin

    reg = default_registry()
    text = "http://127.0.0.1:45680/v1/messages"
    url = httpx.URL(text)
    assert reg.match("POST", text) is not None and reg.match("POST", url) is not None
    ignore_origin(text)
    try:
        assert reg.match("POST", text) is None and reg.match("POST", url) is None
    finally:
        unignore_origin(text)
    assert reg.match("POST", text) is not None
