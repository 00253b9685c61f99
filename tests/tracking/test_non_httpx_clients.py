"""Clients that do not use httpx reach the session's loopback gateway through the base
URL ``tracker.get_session_env()`` gives, and are recorded there (README, Agent frameworks)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
import requests

from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker

pytestmark = pytest.mark.xdist_group("subprocess")

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "2 + 2?"}]}


@pytest.fixture
def tracker(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMTracker]:
    with SimServer("default", time_scale=0.0) as sim:
        # where the client would have gone without tracking
        monkeypatch.setenv("OPENAI_BASE_URL", sim.openai_base_url)
        with LLMTracker(cache=False, cache_dir=None) as t:
            yield t


def test_requests_through_the_session_gateway_is_recorded(tracker: LLMTracker) -> None:
    with tracker.track(data_id="dp", combo_id="c", agent_id="solver") as session:
        base = tracker.get_session_env(session)["OPENAI_BASE_URL"]
        r = requests.post(f"{base}/chat/completions", json=BODY, timeout=30)
    assert r.status_code == 200 and r.json()["model"] == "gpt-4o-mini"
    (rec,) = tracker.get_records(data_id="dp")
    assert (rec.combo_id, rec.agent_id, rec.model) == ("c", "solver", "gpt-4o-mini")
    assert rec.prompt_tokens == r.json()["usage"]["prompt_tokens"] > 0


def test_urllib_through_the_session_gateway_is_recorded(tracker: LLMTracker) -> None:
    with tracker.track(data_id="dp2") as session:
        base = tracker.get_session_env(session)["OPENAI_BASE_URL"]
        req = urllib.request.Request(
            f"{base}/chat/completions",
            data=json.dumps(BODY).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            out = json.loads(resp.read())
    (rec,) = tracker.get_records(data_id="dp2")
    assert rec.completion_tokens == out["usage"]["completion_tokens"] > 0
