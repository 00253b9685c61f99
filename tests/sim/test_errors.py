"""Bad requests get 4xx errors in the shape of the provider whose endpoint was called."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from agentopt.sim import SimServer

MSG: Any = [{"role": "user", "content": "hi"}]


def _oai_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    return err


def _ant_error(r: httpx.Response, status: int, kind: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[1, 2]", b'{"model": "gpt-4o"}', b'{"messages": []}']
)
def test_openai_400(sim: SimServer, raw: bytes) -> None:
    r = httpx.post(sim.openai_base_url + "/chat/completions", content=raw)
    assert _oai_error(r, 400)["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}',  # no max_tokens
        b'{"model": "gpt-4o", "max_tokens": 10}',
        b'{"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]}',
    ],
)
def test_anthropic_400(sim: SimServer, raw: bytes) -> None:
    _ant_error(httpx.post(sim.url + "/v1/messages", content=raw), 400, "invalid_request_error")


def test_unknown_model_404_in_both_shapes_and_sdks(sim: SimServer) -> None:
    r = httpx.post(
        sim.openai_base_url + "/chat/completions", json={"model": "nope", "messages": MSG}
    )
    assert _oai_error(r, 404)["code"] == "model_not_found"
    r = httpx.post(
        sim.url + "/v1/messages", json={"model": "nope", "max_tokens": 5, "messages": MSG}
    )
    _ant_error(r, 404, "not_found_error")
    with pytest.raises(openai.NotFoundError):
        openai.OpenAI(
            base_url=sim.openai_base_url, api_key="x", max_retries=0
        ).chat.completions.create(
            model="nope",
            messages=MSG,
        )
    with pytest.raises(anthropic.NotFoundError):
        anthropic.Anthropic(
            base_url=sim.anthropic_base_url, api_key="x", max_retries=0
        ).messages.create(
            model="nope",
            max_tokens=5,
            messages=MSG,
        )


def test_aliases_and_gateway_prefixes_resolve(sim: SimServer) -> None:
    for name in ("Claude Opus 4.6", "anthropic/claude-opus-4-6", "openai/gpt-4o"):
        r = httpx.post(
            sim.openai_base_url + "/chat/completions", json={"model": name, "messages": MSG}
        )
        assert r.status_code == 200 and r.json()["model"] == name


def test_unknown_path_and_method(sim: SimServer) -> None:
    assert httpx.get(sim.openai_base_url + "/chat/completions").status_code == 405
    assert httpx.get(sim.openai_base_url + "/responses").status_code == 405


def test_unknown_path_is_not_found_not_an_unknown_model(sim: SimServer) -> None:
    r = httpx.post(sim.openai_base_url + "/completions_v9", json={"model": "gpt-4o-mini"})
    err = _oai_error(r, 404)
    assert err["code"] != "model_not_found" and err["param"] is None
    assert "/v1/completions_v9" in err["message"]
    assert httpx.get(sim.url + "/v2/whatever").status_code == 404
    ant = httpx.post(sim.url + "/v1/nothing", json={}, headers={"anthropic-version": "2023-06-01"})
    _ant_error(ant, 404, "not_found_error")
    with pytest.raises(openai.NotFoundError) as info:
        openai.OpenAI(base_url=sim.url + "/v9", api_key="x", max_retries=0).responses.create(
            model="gpt-4o-mini", input="hi"
        )
    assert info.value.code is None


@pytest.fixture(scope="module")
def keyed() -> Iterator[SimServer]:
    world = {
        "name": "keyed",
        "require_key": False,
        "models": [
            {"name": "open-model"},
            {"name": "locked", "provider": "anthropic", "require_key": True},
        ],
    }
    with SimServer(world, time_scale=0.0) as s:
        yield s


def test_401_when_a_key_is_required_and_missing(keyed: SimServer) -> None:
    body = {"model": "locked", "max_tokens": 5, "messages": MSG}
    _oai_error(httpx.post(keyed.openai_base_url + "/chat/completions", json=body), 401)
    _ant_error(httpx.post(keyed.url + "/v1/messages", json=body), 401, "authentication_error")
    ok = httpx.post(keyed.url + "/v1/messages", json=body, headers={"x-api-key": "k"})
    assert ok.status_code == 200
    ok = httpx.post(
        keyed.openai_base_url + "/chat/completions",
        json=body,
        headers={"authorization": "Bearer k"},
    )
    assert ok.status_code == 200
    free = httpx.post(
        keyed.openai_base_url + "/chat/completions", json={**body, "model": "open-model"}
    )
    assert free.status_code == 200


def test_key_requirement_by_provider() -> None:
    world = {
        "name": "k",
        "require_key": ["anthropic"],
        "models": [{"name": "a", "provider": "anthropic"}, {"name": "o", "provider": "openai"}],
    }
    with SimServer(world, time_scale=0) as s, httpx.Client(base_url=s.openai_base_url) as c:
        assert c.post("/chat/completions", json={"model": "a", "messages": MSG}).status_code == 401
        assert c.post("/chat/completions", json={"model": "o", "messages": MSG}).status_code == 200


def test_world_wide_key_requirement() -> None:
    with SimServer(
        {"name": "k", "require_key": True, "models": [{"name": "m"}]}, time_scale=0
    ) as s:
        r = httpx.post(
            s.openai_base_url + "/chat/completions", json={"model": "m", "messages": MSG}
        )
        _oai_error(r, 401)
        client = openai.OpenAI(base_url=s.openai_base_url, api_key="k", max_retries=0)
        assert client.chat.completions.create(model="m", messages=MSG).choices
        with pytest.raises(openai.AuthenticationError):
            client.with_options(default_headers={"Authorization": ""}).chat.completions.create(
                model="m",
                messages=MSG,
            )
