"""The subprocess front-end: children reach the session's gateway, and their calls are recorded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from agentopt.gateway import local
from agentopt.gateway.upstreams import Upstreams
from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker
from agentopt.tracking.capture import subprocess_front
from agentopt.tracking.capture.subprocess_env import (
    BASE_URL_VARS,
    SESSION_ID_VAR,
    install_popen_patch,
    merge_env,
    popen_patched,
    session_env,
    uninstall_popen_patch,
)

pytestmark = pytest.mark.xdist_group("subprocess")

VARS = [*BASE_URL_VARS, SESSION_ID_VAR, "MINE"]
PRINT_ENV = f"import os, json; print(json.dumps({{k: os.environ.get(k) for k in {VARS!r}}}))"


def _child_env(**kw: Any) -> dict[str, str | None]:
    out = subprocess.run(
        [sys.executable, "-c", PRINT_ENV], capture_output=True, text=True, check=True, **kw
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# -- env computation and merge rule (no server) ---------------------------------------


def test_session_env_points_each_variable_at_its_own_upstream() -> None:
    ups = Upstreams()
    env = session_env(
        "http://127.0.0.1:9",
        "sid",
        ups,
        {"OPENAI_BASE_URL": "http://10.0.0.5:8000/v1/", "OTHER": "x"},
    )
    key, _ = ups.register("http://10.0.0.5:8000/v1")
    assert env["OPENAI_BASE_URL"] == f"http://127.0.0.1:9/s/sid/{key}/v1"
    assert ups.origin(key) == "http://10.0.0.5:8000"
    # a child reading OPENAI_API_BASE falls back to OPENAI_BASE_URL without tracking
    assert env["OPENAI_API_BASE"] == env["OPENAI_BASE_URL"]
    # other unset variables stand for the official endpoints
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9/s/sid/anthropic"
    assert env["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:9/s/sid/gemini"
    assert env[SESSION_ID_VAR] == "sid"
    assert "OTHER" not in env


def test_each_variable_forwards_where_a_child_reading_it_would_have_gone() -> None:
    ups = Upstreams()
    gw = "http://127.0.0.1:9"
    none = session_env(gw, "s", ups, {})
    assert none["OPENAI_BASE_URL"] == none["OPENAI_API_BASE"] == f"{gw}/s/s/openai/v1"
    both = session_env(
        gw, "s", ups, {"OPENAI_BASE_URL": "http://a:1/v1", "OPENAI_API_BASE": "http://b:2/v1"}
    )
    assert ups.origin(both["OPENAI_BASE_URL"].split("/")[5]) == "http://a:1"
    assert ups.origin(both["OPENAI_API_BASE"].split("/")[5]) == "http://b:2"
    # only OPENAI_API_BASE: the openai SDK would go to the official API, litellm to
    # OPENAI_API_BASE; OPENAI_BASE_URL is left unset so that each goes where it would
    only_api_base = session_env(gw, "s", ups, {"OPENAI_API_BASE": "http://b:2/v1"})
    assert "OPENAI_BASE_URL" not in only_api_base
    assert ups.origin(only_api_base["OPENAI_API_BASE"].split("/")[5]) == "http://b:2"


def test_malformed_upstream_falls_back_to_official() -> None:
    env = session_env("http://127.0.0.1:9", "s", Upstreams(), {"ANTHROPIC_BASE_URL": "not a url"})
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9/s/s/anthropic"


def test_merge_rule_explicit_beats_implicit() -> None:
    injected = {"OPENAI_BASE_URL": "http://gw", "X": "injected"}
    merged = merge_env(None, injected)
    assert merged["OPENAI_BASE_URL"] == "http://gw"
    assert merged.get("PATH") == os.environ.get("PATH")
    assert merge_env({"X": "mine"}, injected) == {"OPENAI_BASE_URL": "http://gw", "X": "mine"}


@pytest.fixture
def patched() -> Iterator[list[dict[str, str]]]:
    seen: list[dict[str, str]] = []

    def get_env(base: Any) -> dict[str, str]:
        seen.append(dict(base))
        return {"OPENAI_BASE_URL": "http://gw/v1", "MINE": "injected"}

    install_popen_patch(get_env)
    try:
        yield seen
    finally:
        uninstall_popen_patch()
    assert not popen_patched()


def test_popen_patch_with_inherited_env(patched: list[dict[str, str]]) -> None:
    env = _child_env()
    assert (env["OPENAI_BASE_URL"], env["MINE"]) == ("http://gw/v1", "injected")
    assert patched[-1].get("PATH") == os.environ.get("PATH")  # base env = os.environ


def test_popen_patch_with_explicit_env_lets_the_caller_win(patched: list[dict[str, str]]) -> None:
    env = _child_env(env={"MINE": "caller", "PATH": os.environ.get("PATH", "")})
    assert (env["OPENAI_BASE_URL"], env["MINE"]) == ("http://gw/v1", "caller")
    assert patched[-1] == {"MINE": "caller", "PATH": os.environ.get("PATH", "")}


def test_popen_patch_with_positional_env(patched: list[dict[str, str]]) -> None:
    args = [sys.executable, "-c", PRINT_ENV]
    env = {"PATH": os.environ.get("PATH", "")}
    # Popen(args, bufsize, executable, stdin, stdout, stderr, preexec_fn, close_fds, shell, cwd, env)
    p = subprocess.Popen(args, -1, None, None, subprocess.PIPE, None, None, True, False, None, env)
    out, _ = p.communicate(timeout=30)
    assert json.loads(out)["OPENAI_BASE_URL"] == "http://gw/v1"


def test_a_failing_getter_never_stops_the_child() -> None:
    def boom(base: Any) -> dict[str, str]:
        raise RuntimeError("bug")

    install_popen_patch(boom)
    try:
        assert _child_env()["MINE"] is None
    finally:
        uninstall_popen_patch()


# -- end to end against the simulated provider --------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as s:
        yield s


@pytest.fixture
def tracker(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMTracker]:
    monkeypatch.setenv("OPENAI_BASE_URL", sim.openai_base_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", sim.anthropic_base_url)
    t = LLMTracker(cache=False, cache_dir=None)
    t.start()
    subprocess_front.install(t)
    try:
        yield t
    finally:
        subprocess_front.uninstall(t)
        local.stop_gateway(t)
        t.close()


OPENAI_CHILD = """
import openai
c = openai.OpenAI(api_key="sk-child-secret")
r = c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello from a child"}])
s = c.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "stream"}],
                              stream=True, stream_options={"include_usage": True})
text = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
print(r.model, r.usage.total_tokens, len(text) > 0)
"""


def test_python_child_with_the_openai_sdk_is_recorded(tracker: LLMTracker, sim: SimServer) -> None:
    with tracker.track(data_id="q1", agent_id="child"):
        out = subprocess.run(
            [sys.executable, "-c", OPENAI_CHILD], capture_output=True, text=True, timeout=120
        )
    assert out.returncode == 0, out.stderr
    model, total, streamed_text = out.stdout.split()
    assert model == "gpt-4o-mini"
    recs = tracker.get_records(data_id="q1")
    assert [(r.model, r.stream, r.agent_id) for r in recs] == [
        ("gpt-4o-mini", False, "child"),
        ("gpt-4.1-mini", True, "child"),
    ]
    assert recs[0].total_tokens == int(total) > 0
    assert recs[1].completion_tokens > 0 and recs[1].ttft_seconds is not None
    assert all(r.request_url.startswith(sim.openai_base_url) for r in recs if r.request_url)
    assert streamed_text == "True"
    dump = json.dumps([r.model_dump() for r in recs])
    assert "sk-child-secret" not in dump


def test_python_child_with_explicit_env_built_from_the_session_env(
    tracker: LLMTracker, sim: SimServer
) -> None:
    code = (
        "import openai; print(openai.OpenAI(api_key='x').chat.completions.create("
        "model='gpt-4o', messages=[{'role':'user','content':'explicit'}]).model)"
    )
    with tracker.track(data_id="q2") as s:
        # the caller builds its own env from the session's variables (os.environ
        # names the simulator as OPENAI_BASE_URL, so that is the upstream)
        env = {**local.session_env_for(tracker, s), "PATH": os.environ.get("PATH", "")}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "gpt-4o"
    (rec,) = tracker.get_records(data_id="q2")
    assert rec.model == "gpt-4o" and rec.error is None
    assert rec.request_url is not None and rec.request_url.startswith(sim.openai_base_url)


API_BASE_FIRST_CHILD = """
import os, openai
base = os.environ.get("OPENAI_API_BASE") or os.environ.get("OPENAI_BASE_URL")
c = openai.OpenAI(base_url=base, api_key="x", max_retries=0)
print(c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]).model)
"""


def test_a_child_reading_openai_api_base_first_reaches_the_parents_base_url(
    tracker: LLMTracker, sim: SimServer
) -> None:
    """os.environ names the simulator as OPENAI_BASE_URL only: without tracking, this
    child reaches the simulator, so under tracking it must too (not the official API)."""
    assert "OPENAI_API_BASE" not in os.environ
    with tracker.track(data_id="q-api-base"):
        out = subprocess.run(
            [sys.executable, "-c", API_BASE_FIRST_CHILD],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr
    (rec,) = tracker.get_records(data_id="q-api-base")
    assert (
        rec.ok and rec.request_url is not None and rec.request_url.startswith(sim.openai_base_url)
    )


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def _curl(url: str, body: dict[str, Any], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-X", "POST", url,
         "-H", "content-type: application/json", "-H", "authorization: Bearer sk-curl-secret",
         "-d", json.dumps(body)],
        capture_output=True, text=True, timeout=60, **kw,
    )  # fmt: skip


@needs_curl
def test_curl_child_with_inherited_env(tracker: LLMTracker) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "curl"}]}
    with tracker.track(data_id="c1"):
        # the shell expands the injected variable, as an agent's script would
        out = subprocess.run(
            f"curl -sS -X POST \"$OPENAI_BASE_URL/chat/completions\" -H 'content-type: application/json' -d '{json.dumps(body)}'",
            shell=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["model"] == "gpt-4o-mini"
    (rec,) = tracker.get_records(data_id="c1")
    assert rec.model == "gpt-4o-mini" and rec.prompt_tokens > 0 and rec.status_code == 200


@needs_curl
def test_curl_child_with_explicit_env_streams_through_the_gateway(
    tracker: LLMTracker, sim: SimServer
) -> None:
    with tracker.track(data_id="c2"):
        env = local.session_env_for(tracker, None, {"OPENAI_BASE_URL": sim.openai_base_url})
        url = env["OPENAI_BASE_URL"] + "/chat/completions"
        body = {
            "model": "gpt-4o",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "stream via curl"}],
        }
        out = _curl(url, body, env={"PATH": os.environ.get("PATH", "")})
    assert out.returncode == 0, out.stderr
    assert "data: [DONE]" in out.stdout
    (rec,) = tracker.get_records(data_id="c2")
    assert (rec.model, rec.stream, rec.error) == ("gpt-4o", True, None)
    assert rec.completion_tokens > 0


def test_outside_a_session_children_are_left_alone(tracker: LLMTracker, sim: SimServer) -> None:
    env = _child_env()
    assert env["OPENAI_BASE_URL"] == sim.openai_base_url
    assert env[SESSION_ID_VAR] is None


def test_inside_a_session_the_child_sees_the_gateway(tracker: LLMTracker) -> None:
    with tracker.track(data_id="e") as s:
        env = _child_env()
    assert env[SESSION_ID_VAR] == s.session_id
    # the URL names the session by its token, not by its id (item 24)
    assert env["OPENAI_BASE_URL"] is not None and "/s/" in env["OPENAI_BASE_URL"]
    assert s.session_id not in env["OPENAI_BASE_URL"]
    # an explicit env that names the base URL wins
    with tracker.track(data_id="e2"):
        mine = _child_env(
            env={"OPENAI_BASE_URL": "http://mine/v1", "PATH": os.environ.get("PATH", "")}
        )
    assert mine["OPENAI_BASE_URL"] == "http://mine/v1"
    assert mine["ANTHROPIC_BASE_URL"] is not None and "/anthropic" in mine["ANTHROPIC_BASE_URL"]


def test_a_getter_without_arguments_is_accepted() -> None:
    install_popen_patch(lambda: {"MINE": "noarg"})
    try:
        assert _child_env()["MINE"] == "noarg"
    finally:
        uninstall_popen_patch()
