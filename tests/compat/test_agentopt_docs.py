"""The published AgentOpt package's documented surface, run against the simulator.

Each test follows one usage its ``docs/api`` pages document (selectors.md,
results.md, tracker.md, router.md and the subprocess helpers) with the imports
those pages use, and asserts the behaviour they describe.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from agentopt.demo import arithmetic_dataset, grade_answer
from agentopt.sim import SimServer

pytestmark = pytest.mark.xdist_group("compat")

MODELS = {"planner": ["gpt-4.1-nano", "gpt-4o"], "solver": ["gpt-4o-mini", "gpt-5-mini"]}
DATA = arithmetic_dataset(8)
PRICES = {  # $ per million tokens, the documented keys
    "gpt-4.1-nano": {"input_price": 0.1, "output_price": 0.4},
    "gpt-4o": {"input_price": 2.5, "output_price": 10.0},
    "gpt-4o-mini": {"input_price": 0.15, "output_price": 0.6},
    "gpt-5-mini": {"input_price": 0.25, "output_price": 2.0},
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as server:
        yield server


@pytest.fixture
def MyAgent(sim: SimServer) -> type:
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sim")

    class Agent:
        """Duck-typed as documented: ``__init__(self, models)`` and ``run(self, input_data)``."""

        def __init__(self, models: dict[str, str]) -> None:
            self.models = models

        def ask(self, node: str, prompt: str) -> str:
            r = client.chat.completions.create(
                model=self.models[node], messages=[{"role": "user", "content": prompt}]
            )
            return r.choices[0].message.content or ""

        def run(self, input_data: str) -> str:
            plan = self.ask("planner", f"Plan the steps, do not solve:\n{input_data}")
            return self.ask("solver", f"{input_data}\nPlan:\n{plan}\nEnd with 'Answer: <n>'.")

    return Agent


def _selector(MyAgent: type, **kw: Any) -> Any:
    from agentopt import ModelSelector

    return ModelSelector(
        agent=MyAgent, models=MODELS, eval_fn=grade_answer, dataset=DATA, seed=0, **kw
    )


# -- selectors.md ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["auto", "brute_force", "arm_elimination", "matrix_ucb", "matrix_ucb_lrf", "bayesian"]
)
def test_every_documented_method_name_selects_one_best(MyAgent: type, method: str) -> None:
    results = _selector(MyAgent, method=method).select_best(parallel=True, max_concurrent=20)
    results.print_summary()
    best = [r for r in results if r.is_best]
    assert len(best) == 1 and best[0] is results.get_best()
    assert results.get_best_combo() == dict(best[0].summary.combo)


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        ("BruteForceModelSelector", "brute_force"),
        ("ArmEliminationModelSelector", "arm_elimination"),
        ("MatrixUCBModelSelector", "matrix_ucb"),
        ("MatrixUCBLRFModelSelector", "matrix_ucb_lrf"),
        ("BayesianOptimizationModelSelector", "bayesian"),
    ],
)
def test_documented_selector_classes_take_the_common_constructor(
    MyAgent: type,
    cls: str,
    method: str,
) -> None:
    import agentopt

    selector = getattr(agentopt, cls)(
        agent=MyAgent,
        models=MODELS,
        eval_fn=grade_answer,
        dataset=DATA,
        model_prices=PRICES,
    )
    assert selector.method == method
    results = selector.select_best()
    assert results.get_best() is not None and results.evaluations > 0


def test_brute_force_evaluates_every_combination_on_every_datapoint(MyAgent: type) -> None:
    results = _selector(MyAgent, method="brute_force").select_best()
    assert len(list(results)) == 4
    assert all(r.num_samples == len(DATA) for r in results)


def test_a_tracker_passed_in_stays_queryable_after_select_best(
    MyAgent: type,
    tmp_path: Path,
) -> None:
    from agentopt import LLMTracker

    tracker = LLMTracker(cache_dir=str(tmp_path / "shared_cache"))
    selector = _selector(MyAgent, method="brute_force", tracker=tracker)
    results = selector.select_best()
    usage = tracker.get_usage()  # {model: (input_tokens, output_tokens)}
    assert set(usage) == {m for ms in MODELS.values() for m in ms}
    # every token the tracker saw is in the results' per-model token dicts, once
    for model, (tin, tout) in usage.items():
        assert sum(r.input_tokens.get(model, 0) for r in results) == tin
        assert sum(r.output_tokens.get(model, 0) for r in results) == tout
    tracker.close()


def test_model_prices_with_input_and_output_price_price_every_sample(MyAgent: type) -> None:
    results = _selector(MyAgent, method="brute_force", model_prices=PRICES).select_best()
    for r in results:
        expected = (
            sum(
                (
                    r.input_tokens[m] * PRICES[m]["input_price"]
                    + r.output_tokens[m] * PRICES[m]["output_price"]
                )
                / 1e6
                for m in r.input_tokens
            )
            / r.num_samples
        )
        assert r.price == pytest.approx(expected, rel=1e-9)


def _documented_combined(results: Any, lc: float, ll: float) -> dict[str, float]:
    """The formula of selectors.md, computed here from the per-datapoint results."""
    points = [(r.model_name, p) for r in results for p in r.datapoint_results]
    costs = [p.cost_usd for _, p in points]
    lats = [p.latency_seconds for _, p in points]

    def norm(v: float, xs: list[float]) -> float:
        lo, hi = min(xs), max(xs)
        return 0.0 if hi <= lo else (v - lo) / (hi - lo)

    out: dict[str, list[float]] = {}
    for name, p in points:
        v = p.score - lc * norm(p.cost_usd, costs) - ll * norm(p.latency_seconds, lats)
        out.setdefault(name, []).append(v)
    return {k: sum(v) / len(v) for k, v in out.items()}


def test_lambdas_give_the_documented_combined_objective_and_rank_by_it(MyAgent: type) -> None:
    results = _selector(
        MyAgent, method="brute_force", lambda_cost=0.3, lambda_latency=0.2, model_prices=PRICES
    ).select_best()
    expected = _documented_combined(results, 0.3, 0.2)
    for r in results:
        assert r.combined_objective == pytest.approx(expected[r.model_name], abs=1e-12)
    # brute force eliminates nothing: the best is the highest combined objective
    assert results.get_best().combined_objective == pytest.approx(max(expected.values()))
    ranked = [r.combined_objective for r in results]
    assert ranked[0] == max(ranked)


def test_a_large_lambda_cost_moves_the_pick_to_a_cheaper_combination(MyAgent: type) -> None:
    plain = _selector(MyAgent, method="brute_force", model_prices=PRICES).select_best()
    costly = _selector(
        MyAgent, method="brute_force", model_prices=PRICES, lambda_cost=50.0
    ).select_best()
    assert costly.get_best().price <= plain.get_best().price
    assert costly.get_best().price == min(r.price for r in costly)


def test_without_lambdas_combined_objective_is_none(MyAgent: type) -> None:
    results = _selector(MyAgent, method="brute_force").select_best()
    assert all(r.combined_objective is None for r in results)


@pytest.mark.parametrize("method", ["matrix_ucb", "arm_elimination", "bayesian"])
def test_lambdas_steer_every_method(MyAgent: type, method: str) -> None:
    results = _selector(
        MyAgent, method=method, lambda_cost=0.3, lambda_latency=0.2, model_prices=PRICES
    ).select_best()
    assert all(r.combined_objective is not None for r in results if r.datapoint_results)
    assert not results.get_best().eliminated_round  # never an eliminated arm


def test_bad_lambdas_are_a_clear_error(MyAgent: type) -> None:
    from agentopt import ConfigError

    with pytest.raises(ConfigError, match="lambda_cost"):
        _selector(MyAgent, lambda_cost=-1.0)


# -- results.md -------------------------------------------------------------------------


def test_results_surface_as_documented(MyAgent: type, tmp_path: Path) -> None:
    results = _selector(MyAgent, method="brute_force", model_prices=PRICES).select_best(
        parallel=True
    )
    best = results.get_best()
    line = f"Best: {best.model_name}, accuracy={best.accuracy:.1%}, ${best.price:.6f}/sample"
    assert best.model_name in line and "planner=" in best.model_name and " + solver=" in line
    assert results.results == list(results) and len(results.results) == 4
    assert results.selection_wall_time_seconds > 0
    assert results.selection_cost == pytest.approx(sum(r.price * r.num_samples for r in results))
    for r in results:
        assert 0.0 <= r.accuracy <= 1.0 and r.latency_seconds >= 0.0
        assert r.total_input_tokens == sum(r.input_tokens.values()) > 0
        assert r.total_output_tokens == sum(r.output_tokens.values()) > 0
        assert r.attribute == "score" and r.num_samples == len(r.datapoint_results)
        assert r.accuracy == pytest.approx(
            sum(p.score for p in r.datapoint_results) / r.num_samples
        )
        assert {p.datapoint_index for p in r.datapoint_results} == set(range(len(DATA)))
        text = str(r)
        assert text.startswith(r.model_name) and "accuracy:" in text and "price: $" in text
    assert results.get_best(attribute="score") is best
    assert results.get_best(attribute="other-track") is None
    assert results.get_by_attribute("score") == results.results
    results.to_csv(tmp_path / "all_results.csv")
    assert (tmp_path / "all_results.csv").read_text().count("\n") == 5


def test_export_config_is_a_litellm_model_list(MyAgent: type, tmp_path: Path) -> None:
    results = _selector(MyAgent, method="brute_force").select_best()
    best = results.get_best_combo()
    doc = yaml.safe_load(results.export_config(tmp_path / "optimized_config.yaml").read_text())
    entries = {e["model_name"]: e["litellm_params"] for e in doc["model_list"]}
    assert entries == {
        node: {"model": f"openai/{model}", "api_key": "os.environ/OPENAI_API_KEY"}
        for node, model in best.items()
    }
    custom = results.export_config(
        tmp_path / "custom.yaml", api_key_env_vars={"openai": "MY_OPENAI_KEY"}
    )
    params = yaml.safe_load(custom.read_text())["model_list"][0]["litellm_params"]
    assert params["api_key"] == "os.environ/MY_OPENAI_KEY"


def test_export_config_names_each_provider_and_its_key() -> None:
    from agentopt.compat.results import litellm_model_list

    entries = litellm_model_list(
        {"planner": "claude-haiku-4-5", "solver": "gemini/gemini-2.5-flash", "judge": "gpt-4o"}
    )
    params = {e["model_name"]: e["litellm_params"] for e in entries}
    assert params["planner"] == {
        "model": "anthropic/claude-haiku-4-5",
        "api_key": "os.environ/ANTHROPIC_API_KEY",
    }
    assert params["solver"]["api_key"] == "os.environ/GEMINI_API_KEY"
    assert params["judge"]["model"] == "openai/gpt-4o"


# -- tracker.md ------------------------------------------------------------------------


def test_tracker_surface_as_documented(sim: SimServer, tmp_path: Path) -> None:
    from agentopt.proxy import CallRecord, LLMTracker, ResponseCache

    tracker = LLMTracker(cache=True, cache_dir=str(tmp_path / ".agentopt_cache"))
    tracker.start()
    tracker.start()  # idempotent
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sim")
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "2+2?"}]}
    with tracker.track("dp_1", "combo_a"), tracker.track_agent("solver"):
        client.chat.completions.create(**ask)
    with tracker.track(data_id="dp_2", combo_id="combo_a", agent_id="planner"):
        client.chat.completions.create(**ask)  # the same request: a cache hit
    records = tracker.get_records(data_id="dp_1", combo_id="combo_a")
    assert len(records) == 1 and isinstance(records[0], CallRecord)
    r = records[0]
    assert (r.data_id, r.combo_id, r.agent_id, r.model) == (
        "dp_1",
        "combo_a",
        "solver",
        "gpt-4o-mini",
    )
    assert r.prompt_tokens > 0 and r.completion_tokens > 0 and r.latency_seconds > 0
    assert r.request_url.endswith("/chat/completions") and r.request_body["model"] == "gpt-4o-mini"
    assert r.response_body["usage"]["prompt_tokens"] == r.prompt_tokens
    assert "T" in r.timestamp and r.cached is False
    assert tracker.get_records(data_id="dp_2")[0].cached is True
    assert tracker.get_usage(combo_id="combo_a") == {
        "gpt-4o-mini": (2 * r.prompt_tokens, 2 * r.completion_tokens)
    }
    tracker.flush_cache()
    tracker.clear_cache()
    tracker.clear()
    assert tracker.get_records() == []
    tracker.stop()
    assert isinstance(ResponseCache, type)
    tracker.close()


def test_subprocess_helper_get_session_env_records_a_child(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentopt.proxy import LLMTracker

    # where the child would have gone without tracking
    monkeypatch.setenv("OPENAI_BASE_URL", sim.openai_base_url)
    child = (
        "import openai; c = openai.OpenAI(api_key='sim');"
        "c.chat.completions.create(model='gpt-4o-mini', messages=[{'role':'user','content':'hi'}])"
    )
    with LLMTracker(cache=False, cache_dir=None) as tracker:
        with tracker.track(data_id="dp_1", combo_id="cli") as session:
            env = {**os.environ, **tracker.get_session_env(session)}
            subprocess.run([sys.executable, "-c", child], env=env, check=True, timeout=120)
        recs = tracker.get_records(data_id="dp_1", combo_id="cli")
        assert len(recs) == 1 and recs[0].model == "gpt-4o-mini"


# -- router.md -------------------------------------------------------------------------


def _call(sim: SimServer, model: str = "gpt-4o-mini") -> str:
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sim")
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return r.model


def test_with_random_router_routes_each_call_and_is_seeded(sim: SimServer) -> None:
    from agentopt import RandomRouter

    def picks(seed: int) -> list[str]:
        with RandomRouter(candidates=["gpt-4o", "gpt-4o-mini"], seed=seed):
            return [_call(sim, "gpt-4.1-nano") for _ in range(12)]

    first = picks(0)
    assert set(first) == {"gpt-4o", "gpt-4o-mini"}  # never the requested model
    assert picks(0) == first


def test_custom_router_implementing_route_only(sim: SimServer) -> None:
    from agentopt import LLMTracker, Router
    from agentopt.routing import RouteContext

    seen: list[RouteContext] = []

    class FirstCallBigRouter(Router):
        def __init__(self, big: str, small: str) -> None:  # no super().__init__, as documented
            self.big = big
            self.small = small

        def route(self, ctx: RouteContext) -> str | None:
            seen.append(ctx)
            return self.big if not ctx.history else self.small

    router = FirstCallBigRouter(big="gpt-4o", small="gpt-4o-mini")
    with router:
        assert [_call(sim, "gpt-4.1-nano") for _ in range(3)] == [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4o-mini",
        ]
    ctx = seen[-1]
    assert ctx.requested_model == "gpt-4.1-nano" and ctx.provider == "openai"
    assert ctx.request_body["model"] == "gpt-4.1-nano" and len(ctx.history) == 2
    assert ctx.session.records == list(ctx.history)

    with LLMTracker(cache=False, cache_dir=None) as tracker:
        with tracker.track(data_id="dp_1", combo_id="gpt4o-pool", router=router):
            assert _call(sim) == "gpt-4o"
        assert tracker.get_records(data_id="dp_1")[0].model == "gpt-4o"
        assert seen[-1].session.data_id == "dp_1"


def test_a_failing_route_is_logged_and_the_call_proceeds_unrouted(
    sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    from agentopt import Router

    class Broken(Router):
        def __init__(self) -> None:
            pass

        def route(self, ctx: Any) -> str | None:
            raise ValueError("boom")

    with Broken():
        assert _call(sim, "gpt-4o-mini") == "gpt-4o-mini"
    assert "boom" in caplog.text


def test_with_router_inside_track_and_twice_on_one_instance_raise(sim: SimServer) -> None:
    from agentopt import LLMTracker, RandomRouter, RoutingError

    router = RandomRouter(candidates=["gpt-4o"], seed=0)
    with (
        LLMTracker(cache=False, cache_dir=None) as tracker,
        tracker.track(data_id="x"),
        pytest.raises(RoutingError, match=r"track\(router="),
    ):
        router.__enter__()
    with router:
        with pytest.raises(RoutingError, match="distinct instance"):
            router.__enter__()
        assert _call(sim) == "gpt-4o"
