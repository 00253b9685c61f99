"""AGENTOPT_GATEWAY_URL: the README's tracking, routing and selection examples run
unchanged against an ``agentopt serve`` daemon and give the same records,
router statistics and observations as in-process."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from agentopt.exceptions import TrackingError
from agentopt.gateway.daemon import Daemon
from agentopt.gateway.service import DaemonServer
from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker
from agentopt.tracking.remote import GATEWAY_URL_ENV

pytestmark = pytest.mark.xdist_group("daemon")

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _block(marker: str) -> str:
    (found,) = [b for b in BLOCKS if marker in b]
    return found


@pytest.fixture
def daemon() -> Iterator[tuple[Daemon, str]]:
    d = Daemon()
    with DaemonServer(d) as server:
        yield d, server.url


def _run(
    code: str, where: Path, gateway: str | None, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    where.mkdir()
    monkeypatch.chdir(where)
    if gateway is None:
        monkeypatch.delenv(GATEWAY_URL_ENV, raising=False)
    else:
        monkeypatch.setenv(GATEWAY_URL_ENV, gateway)
    ns: dict[str, Any] = {"__name__": "__readme__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "README.md", "exec"), ns)
    return ns


def _calls(records: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            r.data_id,
            r.combo_id,
            r.agent_id,
            r.provider,
            r.requested_model,
            r.model,
            r.prompt_tokens,
            r.completion_tokens,
            r.cost_usd,
            r.stream,
            r.status_code,
            r.error,
            r.cached,
        )
        for r in records
    ]


def test_readme_tracking_example_gives_the_same_records_in_both_modes(
    daemon: tuple[Daemon, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, url = daemon
    code = _block("LLMTracker(cache_dir=None) as tracker")
    local = _run(code, tmp_path / "local", None, monkeypatch)["tracker"]
    remote = _run(code, tmp_path / "remote", url, monkeypatch)["tracker"]
    assert type(remote._backend).__name__ == "RemoteBackend"
    expected = _calls(local.records)
    assert len(expected) == 2
    assert _calls(remote.records) == expected
    assert _calls(d.records()) == expected  # held by the daemon
    assert remote.get_cost() == pytest.approx(local.get_cost())
    assert remote.get_usage() == local.get_usage()


def test_readme_routing_example_learns_the_same_in_both_modes(
    daemon: tuple[Daemon, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, url = daemon
    code = _block("ThompsonRouter([")
    local = _run(code, tmp_path / "local", None, monkeypatch)
    remote = _run(code, tmp_path / "remote", url, monkeypatch)
    assert remote["router"].stats()["arms"] == local["router"].stats()["arms"]
    assert _calls(remote["tracker"].records) == _calls(local["tracker"].records)
    routed = [r.model for r in d.records()]
    assert len(routed) == 30 and set(routed) <= {"gpt-4o-mini", "gpt-4o"}


def test_readme_selection_example_gives_the_same_observations_in_both_modes(
    daemon: tuple[Daemon, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d, url = daemon
    code = _block("selector = ModelSelector(")
    keep = ["combo", "datapoint", "score", "cost_usd", "input_tokens", "output_tokens", "error"]

    def observations(ns: dict[str, Any]) -> list[dict[str, Any]]:
        df = ns["results"].observations_dataframe()
        cols = [c for c in keep if c in df.columns]
        return df[cols].astype(str).to_dict("records")  # type: ignore[no-any-return]

    local = observations(_run(code, tmp_path / "local", None, monkeypatch))
    remote = observations(_run(code, tmp_path / "remote", url, monkeypatch))
    assert local and remote == local
    assert len(d.store) > 0 and all(r.combo_id is not None for r in d.records())


def test_subprocess_children_of_a_remote_session_reach_the_daemon(
    daemon: tuple[Daemon, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, url = daemon
    monkeypatch.setenv(GATEWAY_URL_ENV, url)
    child = (
        "import openai; c = openai.OpenAI(api_key='sk-child');"
        "print(c.chat.completions.create(model='gpt-4o', messages=[{'role': 'user', 'content': 'x'}]).model)"
    )
    with SimServer("default", time_scale=0.0) as sim, LLMTracker(cache=False) as t:
        monkeypatch.setenv("OPENAI_BASE_URL", sim.openai_base_url)
        with t.track(data_id="child", agent_id="cli") as s:
            env = t.get_session_env()
            out = subprocess.run(
                [sys.executable, "-c", child], capture_output=True, text=True, timeout=120
            )
        assert out.returncode == 0, out.stderr
        assert env["OPENAI_BASE_URL"].startswith(url + "/s/")
        (rec,) = t.get_records(data_id="child")
        # the session ended: its daemon token stopped working
        late = httpx.post(
            env["OPENAI_BASE_URL"] + "/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
        )
    assert (rec.agent_id, rec.session_id, rec.model) == ("cli", s.session_id, "gpt-4o")
    assert late.status_code == 403
    assert [r.call_id for r in d.records()] == [rec.call_id]


def test_litellm_calls_of_a_remote_tracker_are_held_by_the_daemon(
    daemon: tuple[Daemon, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import litellm

    d, url = daemon
    monkeypatch.setenv(GATEWAY_URL_ENV, url)
    with SimServer("default", time_scale=0.0) as sim, LLMTracker(cache=False) as t:
        with t.track(data_id="ll"):
            litellm.completion(
                model="openai/gpt-4o-mini",
                api_base=sim.openai_base_url,
                api_key="sk-x",
                messages=[{"role": "user", "content": "hi"}],
            )
        (rec,) = t.get_records(data_id="ll")
    assert rec.model and "gpt-4o-mini" in rec.model and rec.cost_usd is not None
    assert [r.call_id for r in d.records()] == [rec.call_id]


def test_an_unreachable_daemon_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GATEWAY_URL_ENV, "http://127.0.0.1:9")
    with pytest.raises(TrackingError, match="Is `agentopt serve` running there"):
        LLMTracker()
    monkeypatch.setenv(GATEWAY_URL_ENV, "not a url")
    with pytest.raises(Exception, match="expected the daemon's URL"):
        LLMTracker()


def test_a_daemon_api_key_is_sent_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = Daemon(api_key="agk-remote-key")
    with DaemonServer(d) as server, SimServer("default", time_scale=0.0) as sim:
        monkeypatch.setenv(GATEWAY_URL_ENV, server.url)
        with pytest.raises(TrackingError, match="API key"):
            LLMTracker()
        monkeypatch.setenv("AGENTOPT_API_KEY", "agk-remote-key")
        with LLMTracker(cache=False) as t, t.track(data_id="k"):
            openai.OpenAI(base_url=sim.openai_base_url, api_key="sk").chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}]
            )
        assert [r.data_id for r in t.records] == ["k"]
    assert os.environ.get("AGENTOPT_API_KEY") == "agk-remote-key"
