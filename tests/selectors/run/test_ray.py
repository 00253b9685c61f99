"""ModelSelector(executor="ray") on a local Ray cluster started here: evaluations run as
Ray tasks, and the driver's tracker, costs, budget, store and concurrency bound behave
as in a local run; a killed worker is retried or recorded as a failure; a killed driver
resumes from its store without paying again."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import ray_helpers
from ray_helpers import MODELS, agent_for, eval_fn

from agentopt import LLMTracker, ModelSelector, RayExecutor
from agentopt.exceptions import ConfigError, EvaluationsFailedError
from agentopt.records import Observation
from agentopt.selectors.run.executor import LocalExecutor, get_executor
from agentopt.sim import SimServer
from agentopt.sim.tasks import load_task

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(600)]

ITEMS = load_task("arithmetic")[:6]
DATA = [(it.prompt, it.answer) for it in ITEMS]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray with two CPUs; yields its address for other drivers."""
    info: Any = None
    for attempt in range(3):  # Ray waits a fixed 30 s for its node: a loaded machine may need more
        try:
            info = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as exc:
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise
            ray.shutdown()
    try:
        yield str(info.address_info["gcs_address"])
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as server:
        yield server


def _select(agent: Any, executor: Any, tracker: LLMTracker, **kw: Any) -> ModelSelector:
    sel = ModelSelector(
        agent=agent,
        models={"solver": MODELS},
        eval_fn=eval_fn,
        dataset=kw.pop("dataset", DATA),
        method=kw.pop("method", "brute_force"),
        executor=executor,
        tracker=tracker,
        **kw,
    )
    return sel


def _cells(sel: ModelSelector) -> dict[tuple[str, int], Observation]:
    assert sel.last_state is not None
    keys = [
        (Observation.combo_label(o.combo), int(o.datapoint)) for o in sel.last_state.observations
    ]
    assert len(keys) == len(set(keys))  # every cell once
    return {
        (Observation.combo_label(o.combo), int(o.datapoint)): o for o in sel.last_state.observations
    }


def test_executor_names_resolve() -> None:
    assert isinstance(get_executor(None), LocalExecutor)
    assert isinstance(get_executor("ray"), RayExecutor)
    ex = RayExecutor(num_cpus=0.5)
    assert get_executor(ex) is ex
    with pytest.raises(ConfigError, match="unknown executor 'dask'"):
        get_executor("dask")
    with pytest.raises(ConfigError, match="max_retries"):
        RayExecutor(max_retries=-1)


def test_ray_run_equals_the_local_run_and_feeds_the_drivers_tracker(
    cluster: str, sim: SimServer
) -> None:
    agent = agent_for(sim.openai_base_url)
    runs = {}
    for name in ("local", "ray"):
        with LLMTracker(cache=False, cache_dir=None) as tracker:
            sel = _select(agent, name, tracker)
            res = sel.select_best(progress=False)
            cells = _cells(sel)
            records = tracker.records
            assert len(records) == len(cells) == len(MODELS) * len(DATA) == sel.agent_calls
            for (combo_id, dp), obs in cells.items():
                [rec] = tracker.get_records(data_id=str(dp), combo_id=combo_id)
                assert rec.cost_usd == pytest.approx(obs.cost_usd)
                assert (rec.prompt_tokens, rec.completion_tokens) == (
                    obs.input_tokens,
                    obs.output_tokens,
                )
            assert tracker.get_cost() == pytest.approx(sum(o.cost_usd or 0 for o in cells.values()))
            runs[name] = (cells, res.get_best_combo())
    (local, best_local), (remote, best_remote) = runs["local"], runs["ray"]
    assert local.keys() == remote.keys()
    for key, obs in local.items():
        other = remote[key]
        assert (obs.score, obs.input_tokens, obs.output_tokens, obs.error) == (
            other.score,
            other.input_tokens,
            other.output_tokens,
            other.error,
        )
        assert obs.cost_usd == pytest.approx(other.cost_usd)
    assert best_local == best_remote


def test_killed_worker_is_retried_and_counted_once(
    cluster: str, sim: SimServer, tmp_path: Path
) -> None:
    agent = agent_for(sim.openai_base_url, kill_on=DATA[2][0], marks=str(tmp_path))
    with LLMTracker(cache=False, cache_dir=None) as tracker:
        sel = _select(agent, RayExecutor(max_retries=2), tracker)
        sel.select_best(max_concurrent=2, progress=False)
        cells = _cells(sel)
        assert len(list(tmp_path.glob("*.killed"))) == len(MODELS)  # one kill per arm
        assert len(cells) == len(MODELS) * len(DATA)
        assert all(o.error is None for o in cells.values())
        # the dead attempts' calls died with their workers; each cell has its one record
        assert Counter((r.combo_id, r.data_id) for r in tracker.records) == Counter(
            {key: 1 for key in ((c, str(d)) for c, d in cells)}
        )


def test_killed_worker_without_retries_is_a_failure_not_a_loss(
    cluster: str, sim: SimServer, tmp_path: Path
) -> None:
    agent = agent_for(sim.openai_base_url, kill_on=DATA[1][0], marks=str(tmp_path))
    with LLMTracker(cache=False, cache_dir=None) as tracker:
        sel = _select(agent, RayExecutor(max_retries=0), tracker, failure_score=0.0)
        res = sel.select_best(progress=False)
        cells = _cells(sel)
    assert len(cells) == len(MODELS) * len(DATA) == res.evaluations
    failed = {key: o for key, o in cells.items() if o.error is not None}
    assert {dp for _, dp in failed} == {1} and len(failed) == len(MODELS)
    for obs in failed.values():
        assert "ray task failed" in (obs.error or "") and obs.cost_usd is None
        assert obs.score == 0.0


def test_max_concurrent_bounds_tasks_across_the_cluster(cluster: str, tmp_path: Path) -> None:
    world = {
        "name": "slow",
        "models": [
            {"name": m, "latency": {"ttft_s": 0.2, "ttft_sigma": 0.0, "per_token_s": 0.0}}
            for m in MODELS
        ],
    }
    with SimServer(world, time_scale=1.0, seed=0) as slow:
        agent = agent_for(slow.openai_base_url, log_dir=str(tmp_path))
        with LLMTracker(cache=False, cache_dir=None) as tracker:
            sel = _select(agent, "ray", tracker, dataset=DATA[:3])
            sel.select_best(max_concurrent=1, progress=False)
    spans = sorted(tuple(map(float, p.read_text().split())) for p in tmp_path.glob("*.txt"))
    assert len(spans) == len(MODELS) * 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # never two evaluations at once, though two CPUs were free


def test_budget_is_reserved_before_dispatch(cluster: str, sim: SimServer) -> None:
    agent = agent_for(sim.openai_base_url)
    data = [(it.prompt, it.answer) for it in load_task("arithmetic")[:20]]
    with LLMTracker(cache=False, cache_dir=None) as tracker:
        probe = _select(agent, "ray", tracker, dataset=data[:2])
        probe.select_best(progress=False)
        per_eval = max(o.cost_usd or 0.0 for o in _cells(probe).values())
    budget = per_eval * 10
    with LLMTracker(cache=False, cache_dir=None) as tracker:
        sel = _select(agent, "ray", tracker, dataset=data, budget_usd=budget)
        res = sel.select_best(max_concurrent=2, progress=False)
        cells = _cells(sel)
        spent = sum(o.cost_usd or 0.0 for o in cells.values())
        assert tracker.get_cost() == pytest.approx(spent)
    assert res.evaluations < len(MODELS) * len(data)  # the budget stopped it
    assert sel.agent_calls == len(cells)  # nothing was dispatched that the guard refused
    # the guard's promise: only evaluations of not-yet-known cost can overrun
    assert spent <= budget + 2 * per_eval


_DRIVER = """
import sys
sys.path.insert(0, {helpers!r})
import ray
from ray_helpers import MODELS, agent_for, eval_fn
from agentopt import LLMTracker, ModelSelector
ray.init(address={address!r}, log_to_driver=False)
with LLMTracker(cache=False, cache_dir=None) as tracker:
    ModelSelector(
        agent=agent_for({url!r}), models={{"solver": MODELS}}, eval_fn=eval_fn,
        dataset={data!r}, method="brute_force", executor="ray", tracker=tracker,
        store={store!r},
    ).select_best(max_concurrent=1, progress=False)
"""


def test_killed_driver_resumes_from_the_store_without_paying_again(
    cluster: str, tmp_path: Path
) -> None:
    world = {
        "name": "slow",
        "models": [
            {"name": m, "latency": {"ttft_s": 0.15, "ttft_sigma": 0.0, "per_token_s": 0.0}}
            for m in MODELS
        ],
    }
    data = [(it.prompt, it.answer) for it in load_task("arithmetic")[:30]]
    store = tmp_path / "obs.jsonl"
    with SimServer(world, time_scale=1.0, seed=0) as slow:
        script = _DRIVER.format(
            helpers=str(Path(ray_helpers.__file__).parent),
            address=cluster,
            url=slow.openai_base_url,
            data=data,
            store=str(store),
        )
        driver = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
        try:
            deadline = time.monotonic() + 240
            while _lines(store) < 3:  # wait until some evaluations are stored
                assert driver.poll() is None, "the driver ended before it could be killed"
                assert time.monotonic() < deadline, "the driver stored nothing in time"
                time.sleep(0.05)
            driver.send_signal(signal.SIGKILL)
        finally:
            driver.kill()
            driver.wait(30)
        stored = _lines(store)
        assert 3 <= stored < len(MODELS) * len(data)
        with LLMTracker(cache=False, cache_dir=None) as tracker:
            sel = _select(
                agent_for(slow.openai_base_url), "ray", tracker, dataset=data, store=store
            )
            res = sel.select_best(max_concurrent=2, progress=False)
            cells = _cells(sel)
            assert len(cells) == len(MODELS) * len(data) == res.evaluations
            # only the cells not stored were run (and paid) again
            assert sel.agent_calls == len(cells) - stored == len(tracker.records)


def _lines(path: Path) -> int:
    """Complete observations in a JSONL store (a line cut by the kill does not count)."""
    if not path.exists():
        return 0
    n = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            n += isinstance(json.loads(line), dict)
        except ValueError:
            continue
    return n


def test_agent_the_workers_cannot_import_fails_each_evaluation_with_the_reason(
    cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "driver_only_agent.py").write_text(
        "class Agent:\n"
        "    def __init__(self, combo):\n"
        "        pass\n"
        "    def run(self, question):\n"
        "        return 'Answer: 1'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # the driver can import it, workers cannot
    import driver_only_agent

    with LLMTracker(cache=False, cache_dir=None) as tracker:
        sel = _select(driver_only_agent.Agent, "ray", tracker, dataset=DATA[:2])
        with pytest.raises(EvaluationsFailedError) as info:  # all failed: it stops early
            sel.select_best(progress=False)
    error = info.value.first_error
    assert error.startswith("ray task failed")
    assert "No module named 'driver_only_agent'" in error and "runtime_env" in error


def test_user_prices_travel_to_the_workers(cluster: str, sim: SimServer) -> None:
    prices = {m: {"input": 1000.0, "output": 2000.0} for m in MODELS}  # $ per million
    with LLMTracker(cache=False, cache_dir=None) as tracker:
        sel = _select(
            agent_for(sim.openai_base_url), "ray", tracker, dataset=DATA[:2], model_prices=prices
        )
        sel.select_best(progress=False)
        for rec in tracker.records:
            expected = (rec.prompt_tokens * 1000.0 + rec.completion_tokens * 2000.0) / 1e6
            assert rec.cost_usd == pytest.approx(expected)
        assert sum(o.cost_usd or 0 for o in _cells(sel).values()) == pytest.approx(
            tracker.get_cost()
        )
