"""Cross-format translation, aliases, feedback, fallbacks and router state across restarts."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from agentopt.gateway.config import AliasConfig, GatewayConfig
from agentopt.sim import SimServer
from tests.gateway.daemon_kit import ANTHROPIC_WEATHER_TOOL, WEATHER_TOOL, serving

pytestmark = pytest.mark.xdist_group("daemon")


def _msg(text: str = "hi") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_openai_caller_reaches_an_anthropic_model_and_gets_openai_back(sim: SimServer) -> None:
    with serving(sim) as (d, server):
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="anything", timeout=120)
        r = client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=_msg())
        stream = client.chat.completions.create(
            model="claude-haiku-4-5",  # a bare name: the price map says anthropic
            messages=_msg("stream"),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        tool = client.chat.completions.create(
            model="anthropic/claude-opus-4-6",
            messages=_msg("weather in Paris?"),
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice="required",
        )
    assert r.object == "chat.completion" and r.choices[0].message.content
    assert (r.model_extra or {})["_routing"]["selected_model"] == "anthropic/claude-haiku-4-5"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert tool.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index]
    recs = d.records()
    assert [(x.provider, x.model, x.stream) for x in recs] == [
        ("anthropic", "claude-haiku-4-5", False),
        ("anthropic", "claude-haiku-4-5", True),
        ("anthropic", "claude-opus-4-6", False),
    ]
    assert recs[0].requested_model == "anthropic/claude-haiku-4-5"
    assert all(x.cost_usd and x.cost_usd > 0 for x in recs)


def test_anthropic_caller_reaches_an_openai_model_and_gets_anthropic_back(sim: SimServer) -> None:
    with serving(sim) as (d, server):
        client = anthropic.Anthropic(base_url=server.url, api_key="anything", timeout=120)
        m = client.messages.create(model="gpt-4o-mini", max_tokens=50, messages=_msg())  # type: ignore[arg-type]
        with client.messages.stream(
            model="openai/gpt-4.1",
            max_tokens=50,
            messages=_msg("stream"),  # type: ignore[arg-type]
        ) as s:
            text = "".join(s.text_stream)
        t = client.messages.create(
            model="openai/gpt-4o",
            max_tokens=100,
            messages=_msg("weather in Paris?"),  # type: ignore[arg-type]
            tools=[ANTHROPIC_WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice={"type": "any"},
        )
    assert m.type == "message" and m.content[0].type == "text"
    assert text
    assert any(b.type == "tool_use" and b.name == "get_weather" for b in t.content)
    assert [(x.provider, x.model) for x in d.records()] == [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1"),
        ("openai", "gpt-4o"),
    ]


def test_responses_endpoint_cannot_be_translated_and_says_so(sim: SimServer) -> None:
    with serving(sim) as (_, server):
        r = httpx.post(
            server.url + "/v1/responses", json={"model": "anthropic/claude-haiku-4-5", "input": "x"}
        )
    assert r.status_code == 400
    assert "cannot be translated" in r.json()["error"]["message"]


def _alias_config(router: str = "thompson") -> GatewayConfig:
    return GatewayConfig(
        aliases={
            "smart": AliasConfig(
                targets=["openai/gpt-4o", "anthropic/claude-haiku-4-5"],
                router=router,
                options={"seed": 0},
            )
        }
    )


def test_alias_feedback_and_router_state_survive_a_restart(sim: SimServer, tmp_path: Path) -> None:
    store = tmp_path / "records.sqlite"
    with serving(sim, _alias_config(), store=store) as (d, server):
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="anything")
        for _ in range(12):
            raw = client.chat.completions.with_raw_response.create(model="smart", messages=_msg())
            r = raw.parse()
            routing = (r.model_extra or {})["_routing"]
            assert routing["alias"] == "smart" and routing["router"] == "thompson"
            score = 1.0 if routing["selected_model"] == "openai/gpt-4o" else 0.0
            fb = httpx.post(
                server.url + "/v1/feedback",
                json={"request_id": raw.headers["x-agentopt-request-id"], "score": score},
            )
            assert fb.status_code == 200, fb.text
        stats = d.aliases["smart"].router.stats()
        state = d.aliases["smart"].router.state_dict()
    assert stats["feedbacks"] == 12
    assert sum(a["rewards"] for a in stats["arms"].values()) == 12
    saved = Path(str(store) + ".state") / "routers" / "smart.json"
    assert saved.is_file()
    with serving(sim, _alias_config(), store=store) as (d2, server2):
        assert d2.aliases["smart"].router.state_dict() == json.loads(json.dumps(state))
        assert len(d2.store) == 12  # records survived the restart too
        routers = httpx.get(server2.url + "/agentopt/v1/routers").json()
    assert routers["smart"]["feedbacks"] == 12


def test_feedback_errors_are_clear(sim: SimServer) -> None:
    with serving(sim, _alias_config()) as (_, server):
        unknown = httpx.post(server.url + "/v1/feedback", json={"request_id": "nope", "score": 1})
        bad = httpx.post(server.url + "/v1/feedback", json={"request_id": "x", "score": None})
        out_of_range = httpx.post(server.url + "/v1/feedback", json={"data_id": "x", "score": 3})
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
    assert bad.status_code == 400 and "score" in bad.json()["error"]["message"]
    assert out_of_range.status_code == 400


def test_feedback_by_data_id_credits_the_alias_router(sim: SimServer) -> None:
    with serving(sim, _alias_config()) as (d, server):
        for i in range(3):
            r = httpx.post(
                server.url + "/v1/chat/completions",
                json={"model": "smart", "messages": _msg()},
                headers={"x-agentopt-data-id": f"q{i}"},
                timeout=120,  # a first translated call imports litellm: seconds under load
            )
            assert r.status_code == 200
            fb = httpx.post(server.url + "/v1/feedback", json={"data_id": f"q{i}", "score": 1.0})
            assert fb.json() == {"credited": ["smart"]}
        again = httpx.post(server.url + "/v1/feedback", json={"data_id": "q0", "score": 1.0})
        stats = d.aliases["smart"].router.stats()
    assert [r.data_id for r in d.records()] == ["q0", "q1", "q2"]
    assert stats["feedbacks"] == 3  # a second feedback for q0 is refused, not credited twice
    assert again.status_code == 404


def test_fallback_alias_tries_the_next_target_and_records_both(sim: SimServer) -> None:
    cfg = GatewayConfig(
        aliases={
            "safe": AliasConfig(targets=["openai/gpt-4o", "openai/gpt-4o-mini"], router="fallback")
        }
    )
    with serving(sim, cfg) as (d, server):
        sim.inject("gpt-4o", 500, times=3)  # the default 3 attempts of gpt-4o all fail
        r = httpx.post(
            server.url + "/v1/chat/completions", json={"model": "safe", "messages": _msg()}
        )
    body = r.json()
    assert r.status_code == 200
    assert body["_routing"]["selected_model"] == "openai/gpt-4o-mini"
    assert body["_routing"]["fallback_from"] == "openai/gpt-4o"
    *failed, ok = sorted(d.records(), key=lambda x: x.attempt or 0)
    assert [(f.model, f.status_code) for f in failed] == [("gpt-4o", 500)] * 3
    assert (ok.model, ok.status_code, ok.request_id) == ("gpt-4o-mini", 200, body["_request_id"])
    assert {f.request_id for f in failed} == {body["_request_id"]}
