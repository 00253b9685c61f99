"""The published AgentOpt ``router.md``, daemon mode: ``Router.config()`` is
``{"policy", "kwargs"}``, the daemon rebuilds it per session, ``agentopt serve
--policy-module`` loads custom routers, and ``--routing-policy`` /
``--candidate-models`` / ``--seed`` set a daemon-wide default policy."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from agentopt import LLMTracker, RandomRouter, Router
from agentopt.exceptions import ConfigError
from agentopt.routers import RouteContext, router_from_config
from agentopt.sim import SimServer
from agentopt.tracking.remote import GATEWAY_URL_ENV
from tests.gateway.daemon_kit import ServeProcess, serving, sim_args

pytestmark = pytest.mark.xdist_group("daemon")

CONTROL = "/agentopt/v1"

# router.md's minimal --policy-module example, as a user would write the file
MY_POLICIES = '''
from agentopt import Router


class FirstCallBigRouter(Router):
    """Big model on the first call of a workflow, cheap after."""

    def __init__(self, big: str, small: str):
        self.big = big
        self.small = small

    def route(self, ctx):
        return self.big if not ctx.history else self.small

    def _config_kwargs(self):
        return {"big": self.big, "small": self.small}
'''


class KeepsItsArgs(Router):
    def __init__(self, big: str, small: str) -> None:
        self.big, self.small = big, small

    def route(self, ctx: Any) -> str | None:
        return self.big

    def _config_kwargs(self) -> dict[str, Any]:
        return {"big": self.big, "small": self.small}


class NoConfig(Router):
    def __init__(self) -> None:
        pass

    def route(self, ctx: Any) -> str | None:
        return None


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as s:
        yield s


@pytest.fixture
def my_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``my_policies.py`` on disk, importable here too (client and daemon import the
    same file, as router.md advises)."""
    path = tmp_path / "my_policies.py"
    path.write_text(MY_POLICIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_policies", raising=False)
    yield path
    sys.modules.pop("my_policies", None)


def _chat(url: str, model: str = "gpt-4.1-nano", **headers: str) -> str:
    client = openai.OpenAI(
        base_url=url + "/v1", api_key="sk-anything", max_retries=0, default_headers=headers
    )
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return r.model


def _session(url: str, **body: Any) -> str:
    r = httpx.post(url + CONTROL + "/sessions", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


# -- Router.config() ----------------------------------------------------------------------


def test_config_of_a_builtin_router_is_policy_and_kwargs_and_rebuilds_it() -> None:
    router = RandomRouter(candidates=["gpt-4o", "gpt-4o-mini"], seed=3)
    cfg = router.config()
    assert cfg["policy"] == "random"
    assert cfg["kwargs"]["candidates"] == ["gpt-4o", "gpt-4o-mini"] and cfg["kwargs"]["seed"] == 3
    twin = router_from_config(json.loads(json.dumps(cfg)))  # it travels as JSON
    assert type(twin) is RandomRouter
    ctx = RouteContext(requested_model="gpt-4.1-nano")
    assert [twin.route(ctx) for _ in range(20)] == [router.route(ctx) for _ in range(20)]


def test_config_of_a_custom_router_names_module_and_class() -> None:
    router = KeepsItsArgs(big="gpt-4o", small="gpt-4o-mini")
    assert router.config() == {
        "policy": f"{__name__}:KeepsItsArgs",
        "kwargs": {"big": "gpt-4o", "small": "gpt-4o-mini"},
    }
    twin = router_from_config(router.config())  # default from_config: cls(**kwargs)
    assert isinstance(twin, KeepsItsArgs) and (twin.big, twin.small) == ("gpt-4o", "gpt-4o-mini")


def test_a_custom_router_without_config_kwargs_raises_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"NoConfig.*_config_kwargs"):
        NoConfig().config()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"policy": "no_such_module_xyz:R", "kwargs": {}}, "--policy-module"),
        ({"policy": f"{__name__}:Missing"}, "has no 'Missing'"),
        ({"policy": "json:JSONDecoder"}, "not a Router subclass"),
        ({"policy": "nonexistent"}, "unknown router"),
        ({"policy": "random", "kwargs": {"nope": 1}}, "cannot build it"),
        ({"kwargs": {}}, "policy"),
    ],
)
def test_a_bad_router_config_says_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        router_from_config(config)


# -- the daemon: per-session routers and the default policy ---------------------------------


def test_a_session_routed_by_its_own_router_config(sim: SimServer) -> None:
    router = KeepsItsArgs(big="gpt-4o", small="gpt-4o-mini")
    with serving(sim) as (daemon, server):
        opened = httpx.post(
            server.url + CONTROL + "/sessions", json={"data_id": "dp", "router": router.config()}
        ).json()
        assert opened["router"] == router.config() and opened["data_id"] == "dp"
        token = opened["token"]
        assert _chat(server.url, **{"x-agentopt-session": token}) == "gpt-4o"
        assert _chat(server.url) == "gpt-4.1-nano"  # other calls are not routed
        (rec,) = daemon.records(data_id="dp")
    assert (rec.requested_model, rec.model) == ("gpt-4.1-nano", "gpt-4o")


def test_a_bad_session_router_is_a_400_naming_the_problem(sim: SimServer) -> None:
    with serving(sim) as (_, server):
        r = httpx.post(
            server.url + CONTROL + "/sessions",
            json={"router": {"policy": "no_such_module_xyz:R", "kwargs": {}}},
        )
    assert r.status_code == 400 and "no_such_module_xyz" in r.json()["error"]["message"]


def test_the_default_policy_routes_every_session_that_has_no_router_of_its_own(
    sim: SimServer,
) -> None:
    default = RandomRouter(candidates=["gpt-4o", "gpt-4o-mini"], seed=0)
    with serving(sim, default_router=default) as (_, server):
        picks = {_chat(server.url) for _ in range(12)}
        opted_out = _session(server.url, data_id="out", router=None)
        kept = _chat(server.url, **{"x-agentopt-session": opted_out})
        own = _session(server.url, data_id="own", router=KeepsItsArgs("gpt-5-mini", "x").config())
        overridden = _chat(server.url, **{"x-agentopt-session": own})
    assert picks == {"gpt-4o", "gpt-4o-mini"}  # never the requested gpt-4.1-nano
    assert kept == "gpt-4.1-nano" and overridden == "gpt-5-mini"


def test_a_python_client_router_overrides_the_daemon_default(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = RandomRouter(candidates=["gpt-4o-mini"], seed=0)
    big_first = KeepsItsArgs(big="gpt-4o", small="gpt-4o-mini")
    with serving(sim, default_router=default) as (_, server):
        monkeypatch.setenv(GATEWAY_URL_ENV, server.url)
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sim", max_retries=0)

        def ask(model: str) -> str:
            r = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
            return r.model

        with LLMTracker(cache=False, cache_dir=None) as tracker:
            with tracker.track(data_id="client", router=big_first):
                routed = ask("gpt-4.1-nano")
            with tracker.track(data_id="keeps", router=NoConfig()):  # route() -> None
                kept = ask("gpt-4.1-nano")
            with tracker.track(data_id="none"):  # no router of its own: the default
                default_pick = ask("gpt-4.1-nano")
    assert (routed, kept, default_pick) == ("gpt-4o", "gpt-4.1-nano", "gpt-4o-mini")


# -- agentopt serve --policy-module / --routing-policy ---------------------------------------


def test_serve_policy_module_resolves_the_documented_example(
    sim: SimServer, my_policies: Path, tmp_path: Path
) -> None:
    FirstCallBigRouter = importlib.import_module("my_policies").FirstCallBigRouter
    router = FirstCallBigRouter(big="gpt-4o", small="gpt-4o-mini")
    assert router.config() == {
        "policy": "my_policies:FirstCallBigRouter",
        "kwargs": {"big": "gpt-4o", "small": "gpt-4o-mini"},
    }
    d = ServeProcess(
        "--store", str(tmp_path / "r.sqlite"), *sim_args(sim), "--policy-module", str(my_policies)
    )
    try:
        token = _session(d.url, data_id="dp_1", router=router.config())
        models = [_chat(d.url, **{"x-agentopt-session": token}) for _ in range(3)]
        records = httpx.get(d.url + CONTROL + "/records", params={"data_id": "dp_1"}).json()
    finally:
        code, _, err = d.stop()
    assert code == 0, err
    assert models == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]  # ctx.history seen by the daemon
    assert [r["model"] for r in records["records"]] == models


def test_serve_routing_policy_flags_set_the_default(sim: SimServer, tmp_path: Path) -> None:
    d = ServeProcess(
        "--store",
        str(tmp_path / "r.sqlite"),
        *sim_args(sim),
        "--routing-policy",
        "random",
        "--candidate-models",
        "gpt-4o,gpt-4o-mini",
        "--seed",
        "42",
    )
    try:
        picks = [_chat(d.url) for _ in range(12)]
    finally:
        code, _, err = d.stop()
    assert code == 0, err
    assert set(picks) == {"gpt-4o", "gpt-4o-mini"}


def _serve_fails(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "agentopt.cli", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    return r.stderr


def test_serve_refuses_candidates_without_a_policy_and_bad_policy_files(tmp_path: Path) -> None:
    assert "--routing-policy" in _serve_fails("--candidate-models", "gpt-4o,gpt-4o-mini")
    assert "--candidate-models" in _serve_fails("--routing-policy", "random")
    broken = tmp_path / "broken_policies.py"
    broken.write_text("raise RuntimeError('cannot load me')\n")
    err = _serve_fails("--policy-module", str(broken))
    assert str(broken) in err and "cannot load me" in err
    shadow = tmp_path / "json.py"
    shadow.write_text("")
    assert "standard library" in _serve_fails("--policy-module", str(shadow))
    assert "no such file" in _serve_fails("--policy-module", str(tmp_path / "missing.py"))
