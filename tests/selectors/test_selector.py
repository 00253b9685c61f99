"""ModelSelector with a fake tracker: inputs, methods, concurrency, failures, budgets.

The fake tracker records a "call" (with its cost) inside the session the
selector opened, exactly as LLMTracker would, so no network is involved; the
real tracker and the simulated provider are covered in test_live.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from agentopt.exceptions import ConfigError
from agentopt.records import CallRecord
from agentopt.selectors.base import Strategy
from agentopt.selectors.selector import (
    AgentOptArmEliminationSelector,
    AutoSelector,
    BruteForceSelector,
    LUCBSelector,
    ModelSelector,
    RandomSearchSelector,
    SuccessiveEliminationSelector,
    SuccessiveHalvingSelector,
    TopTwoThompsonSelector,
    model_label,
)
from agentopt.selectors.strategies.brute_force import BruteForceStrategy

_session: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "sel_session", default=None
)


class FakeTracker:
    def __init__(self) -> None:
        self.recs: list[CallRecord] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def track(self, data_id: str | None = None, combo_id: str | None = None) -> Iterator[None]:
        token = _session.set((str(data_id), str(combo_id)))
        try:
            yield None
        finally:
            _session.reset(token)

    def call(self, model: str, cost: float | None) -> None:
        ids = _session.get()
        assert ids is not None, "a call outside the evaluation's session"
        with self._lock:
            self.recs.append(
                CallRecord(
                    data_id=ids[0],
                    combo_id=ids[1],
                    model=model,
                    prompt_tokens=100,
                    completion_tokens=20,
                    cost_usd=cost,
                    latency_seconds=0.01,
                )
            )

    def get_records(self, data_id: str | None = None, combo_id: str | None = None) -> list[Any]:
        with self._lock:
            return [r for r in self.recs if r.data_id == data_id and r.combo_id == combo_id]


# Quality per model: the solver decides; "x" is the best. Cost per call in $.
QUALITY = {"x": 0.9, "y": 0.6, "z": 0.3}
PRICE = {"x": 0.004, "y": 0.002, "z": 0.001, "p": 0.0005, "q": 0.0001}
MODELS = {"planner": ["p", "q"], "solver": ["x", "y", "z"]}
DATA = [(i, None) for i in range(20)]


def correct(model: str, x: int) -> bool:
    return (x * 7919 + sum(map(ord, model)) * 31) % 100 < QUALITY[model] * 100


def make_agent(tracker: FakeTracker, *, is_async: bool = False, fail_on: str | None = None) -> Any:
    calls = {"n": 0}
    lock = threading.Lock()

    class Agent:
        def __init__(self, combo: dict[str, str]) -> None:
            self.combo = combo

        def _run(self, x: int) -> bool:
            with lock:
                calls["n"] += 1
            tracker.call(self.combo["planner"], PRICE[self.combo["planner"]])
            tracker.call(self.combo["solver"], PRICE[self.combo["solver"]])
            if self.combo["solver"] == fail_on:
                raise RuntimeError(f"{fail_on} is down")
            return correct(self.combo["solver"], x)

    if is_async:

        class AsyncAgent(Agent):
            async def run(self, x: int) -> bool:
                await asyncio.sleep(0)
                return self._run(x)

        AsyncAgent.calls = calls  # type: ignore[attr-defined]
        return AsyncAgent

    class SyncAgent(Agent):
        def run(self, x: int) -> bool:
            return self._run(x)

    SyncAgent.calls = calls  # type: ignore[attr-defined]
    return SyncAgent


def eval_fn(expected: object, actual: bool) -> float:
    return float(actual)


def _selector(cls: type[ModelSelector] = ModelSelector, **kw: Any) -> ModelSelector:
    tracker = kw.pop("tracker", None) or FakeTracker()
    args: dict[str, Any] = {
        "agent": make_agent(tracker),
        "models": MODELS,
        "eval_fn": eval_fn,
        "dataset": DATA,
        "seed": 0,
        "tracker": tracker,
        "method": "brute_force",
    }
    args.update(kw)
    return cls(**args)


def _true_means() -> dict[str, float]:
    return {m: sum(correct(m, x) for x, _ in DATA) / len(DATA) for m in QUALITY}


# ----------------------------------------------------------------- bad input
def _bad(**kw: Any) -> dict[str, Any]:
    tracker = FakeTracker()
    base = {
        "agent": make_agent(tracker),
        "models": MODELS,
        "eval_fn": eval_fn,
        "dataset": DATA,
        "tracker": tracker,
    }
    base.update(kw)
    return base


class _NoRun:
    def __init__(self, combo: dict[str, str]) -> None:
        pass


class _Broken:
    def __init__(self, combo: dict[str, str]) -> None:
        raise KeyError("api_key")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"models": {}}, "models must be a non-empty mapping"),
        ({"models": {"planner": ["p"], "solver": []}}, r"models\['solver'\] is empty"),
        ({"models": {"solver": "x"}}, r"models\['solver'\] must be a list"),
        ({"dataset": []}, "dataset is empty"),
        ({"dataset": [(1, 2), (1, 2, 3)]}, r"dataset\[1\] must be an \(input, expected\) pair"),
        ({"dataset": "abc"}, "dataset must be a sequence"),
        ({"eval_fn": 3}, "eval_fn must be callable"),
        ({"agent": None}, "agent must be a class or factory"),
        ({"agent": _Broken}, r"agent _Broken could not be built for planner=p \+ solver=x"),
        ({"agent": _NoRun}, "no run"),
        ({"confidence": 1.5}, "confidence must be strictly between 0 and 1"),
        ({"failure_score": 2}, r"failure_score must be in \[0, 1\]"),
        ({"budget_usd": -1}, "budget_usd must be None or a number"),
        ({"max_evaluations": 0}, "max_evaluations must be None or an integer"),
        ({"seed": "s"}, "seed must be None or an integer"),
        ({"method": "nope"}, "unknown selection method 'nope'"),
        ({"method": 3.5}, "method must be a name"),
        ({"tracker": object()}, "tracker must be an LLMTracker"),
    ],
)
def test_bad_input_is_a_config_error_naming_what_and_where(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ModelSelector(**_bad(**kw))


def test_model_objects_are_labelled_and_duplicate_labels_kept_apart() -> None:
    class LLM:
        def __init__(self, model: str, temperature: float) -> None:
            self.model, self.temperature = model, temperature

    class Named:
        name = "named-model"

    assert model_label("gpt-4o") == "gpt-4o"
    assert model_label(Named()) == "named-model"
    assert model_label(42) == "42"
    hot, cold = LLM("gpt-4o", 1.0), LLM("gpt-4o", 0.0)
    seen: list[dict[str, Any]] = []

    class Agent:
        def __init__(self, combo: dict[str, Any]) -> None:
            seen.append(combo)

        def run(self, x: Any) -> int:
            return 1

    sel = ModelSelector(
        agent=Agent, models={"solver": [hot, cold]}, eval_fn=lambda e, a: 1.0,
        dataset=[(1, 1)], tracker=FakeTracker(), method="brute_force",
    )  # fmt: skip
    assert [lab["solver"] for lab in sel.labels] == ["gpt-4o", "gpt-4o#2"]
    res = sel.select_best(progress=False)
    assert res.evaluations == 2
    assert any(c["solver"] is cold for c in seen)  # the agent gets the objects themselves
    assert res.get_best_combo()["solver"] in (hot, cold)


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        (AutoSelector, "auto"),
        (BruteForceSelector, "brute_force"),
        (SuccessiveEliminationSelector, "successive_elimination"),
        (LUCBSelector, "lucb"),
        (TopTwoThompsonSelector, "top_two_thompson"),
        (SuccessiveHalvingSelector, "successive_halving"),
        (RandomSearchSelector, "random_search"),
        (AgentOptArmEliminationSelector, "agentopt_arm_elimination"),
    ],
)
def test_every_method_is_a_selector_class_that_runs(cls: type[ModelSelector], method: str) -> None:
    sel = _selector(cls, method=None)
    assert sel.method == method
    res = sel.select_best(progress=False)
    assert res.method == method
    assert res.get_best().eliminated_round is None
    assert 0 < res.evaluations <= 6 * len(DATA)
    with pytest.raises(ConfigError, match="always uses method"):
        _selector(cls, method="brute_force" if method != "brute_force" else "lucb")


def test_strategy_instances_and_user_subclasses_are_accepted() -> None:
    class Mine(BruteForceStrategy):
        name = "mine"

    res = _selector(method=Mine).select_best(progress=False)
    assert res.method == "mine" and res.evaluations == 6 * len(DATA)
    inst = BruteForceStrategy(rounds=2)
    res = _selector(method=inst).select_best(progress=False)
    assert res.evaluations == 6 * len(DATA) and res.rounds == 2
    assert isinstance(inst, Strategy)


# ----------------------------------------------------------------- end to end
@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("parallel", [False, True])
def test_brute_force_finds_the_best_and_counts_cost_exactly(is_async: bool, parallel: bool) -> None:
    tracker = FakeTracker()
    agent = make_agent(tracker, is_async=is_async)
    sel = _selector(agent=agent, tracker=tracker)
    res = sel.select_best(parallel=parallel, max_concurrent=4, progress=False)
    means = _true_means()
    assert res.evaluations == 6 * len(DATA) == agent.calls["n"] == sel.agent_calls
    assert res.get_best_combo()["solver"] == "x"
    best = res.get_best()
    assert best.score == pytest.approx(means["x"])
    # cheaper planner wins the tie: both planners give the same solver score
    assert res.get_best_combo()["planner"] == "q"
    assert res.selection_cost == pytest.approx(sum(r.cost_usd for r in tracker.recs))
    assert len(tracker.recs) == 2 * res.evaluations  # two calls per run, none counted twice


async def test_select_best_works_inside_a_running_event_loop() -> None:
    asyncio.get_running_loop()  # as in Jupyter
    sel = _selector()
    res = sel.select_best(progress=False)
    assert res.evaluations == 6 * len(DATA)
    res2 = await _selector().aselect_best(progress=False)
    assert res2.get_best_combo() == res.get_best_combo()


def test_failures_are_scored_and_recorded_never_dropped() -> None:
    tracker = FakeTracker()
    sel = _selector(agent=make_agent(tracker, fail_on="x"), tracker=tracker, failure_score=0.0)
    res = sel.select_best(progress=False)
    df = res.observations_dataframe()
    failed = df[df["error"].notna()]
    assert len(failed) == 2 * len(DATA)  # both planners with solver x, every datapoint
    assert (failed["score"] == 0.0).all()
    assert failed["error"].str.contains("RuntimeError: x is down").all()
    assert res.failures == 2 * len(DATA)
    assert res.get_best_combo()["solver"] == "y"
    assert res.evaluations == 6 * len(DATA)


def _raises(e: object, a: object) -> float:
    raise ValueError("no grader configured")


@pytest.mark.parametrize(
    ("bad_eval_fn", "first_error"),
    [
        (_raises, "eval_fn raised ValueError: no grader configured"),
        (lambda e, a: None, r"eval_fn returned None \(NoneType\), not a number in \[0, 1\]"),
        (lambda e, a: "yes", r"eval_fn returned 'yes' \(str\), not a number"),
        (lambda e, a: "1", r"eval_fn returned '1' \(str\), not a number"),
        (lambda e, a: 5, r"eval_fn returned 5.0; scores must be in \[0, 1\]"),
    ],
)
@pytest.mark.parametrize("parallel", [False, True])
def test_a_broken_eval_fn_fails_fast_with_the_first_error_and_names_no_best(
    tmp_path: Any, bad_eval_fn: Any, first_error: str, parallel: bool
) -> None:
    from agentopt.exceptions import EvaluationsFailedError
    from agentopt.selectors.run.failfast import PATIENCE
    from agentopt.selectors.run.store import get_store

    tracker = FakeTracker()
    agent = make_agent(tracker)
    store = tmp_path / "obs.sqlite"
    sel = _selector(agent=agent, tracker=tracker, eval_fn=bad_eval_fn, store=store, method="auto")
    with pytest.raises(EvaluationsFailedError, match=first_error) as info:
        sel.select_best(parallel=parallel, max_concurrent=4, progress=False)
    assert f"the first {PATIENCE} evaluations all failed" in str(info.value)
    # paid only for the first few (and, in parallel, those already running)
    assert agent.calls["n"] == PATIENCE if not parallel else agent.calls["n"] < PATIENCE + 4
    st = get_store(store)
    kept = st.load(sel.fingerprint())
    st.close()
    assert len(kept) == agent.calls["n"]  # every failure kept, with its error
    assert all(o.failed and o.error for o in kept.values())


def test_an_agent_that_always_raises_fails_fast_but_one_broken_model_does_not() -> None:
    from agentopt.exceptions import EvaluationsFailedError

    tracker = FakeTracker()

    class Down:
        def __init__(self, combo: dict[str, str]) -> None:
            pass

        def run(self, x: int) -> bool:
            raise ConnectionError("no API key")

    sel = _selector(agent=Down, tracker=tracker, method="auto")
    with pytest.raises(EvaluationsFailedError, match="agent raised ConnectionError: no API key"):
        sel.select_best(parallel=False, progress=False)
    assert sel.agent_calls < 6 * len(DATA) // 2  # far from the whole run
    # one model down: its combinations fail, the others are still compared
    for method in ("auto", "successive_elimination", "random_search", "lucb"):
        t = FakeTracker()
        res = _selector(agent=make_agent(t, fail_on="x"), tracker=t, method=method).select_best(
            parallel=False, progress=False
        )
        assert res.get_best_combo()["solver"] != "x" and res.failures > 0


def test_a_selection_too_small_to_fail_fast_still_names_no_best() -> None:
    from agentopt.exceptions import EvaluationsFailedError

    sel = _selector(models={"solver": ["x", "y"]}, dataset=DATA[:1], eval_fn=lambda e, a: None)
    sel.agent = make_agent(sel.tracker)  # type: ignore[arg-type]
    with pytest.raises(EvaluationsFailedError, match="all 2 evaluations failed"):
        sel.select_best(progress=False)


def test_a_swapped_eval_fn_signature_warns_that_all_scores_are_identical() -> None:
    def swapped(actual: object, expected: object) -> float:  # expected is None here
        return float(actual is True and expected is True)

    with pytest.warns(UserWarning, match=r"all 120 successful evaluations scored 0.*eval_fn"):
        res = _selector(eval_fn=swapped).select_best(progress=False)
    assert res.warnings and "eval_fn(expected, actual)" in res.warnings[0]
    import io

    from rich.console import Console

    out = io.StringIO()
    res.print_summary(console=Console(file=out, width=100))
    assert "cannot tell the combinations apart" in out.getvalue()


def test_a_budget_stops_the_selection_without_overrunning() -> None:
    full = 20 * (0.0045 + 0.0025 + 0.0015 + 0.0041 + 0.0021 + 0.0011)
    budget = full / 3
    res = _selector(budget_usd=budget).select_best(progress=False)
    assert res.selection_cost <= budget + 1e-12
    assert res.evaluations < 6 * len(DATA)
    assert "budget" in (res.stop_reason or "")


def test_max_evaluations_stops_exactly() -> None:
    tracker = FakeTracker()
    agent = make_agent(tracker)
    res = _selector(agent=agent, tracker=tracker, max_evaluations=25).select_best(progress=False)
    assert res.evaluations == 25 == agent.calls["n"]


def test_user_prices_price_unpriced_calls() -> None:
    class Tracker(FakeTracker):
        def call(self, model: str, cost: float | None) -> None:
            super().call("house-model", None)  # the default map cannot price it

    tracker = Tracker()
    res = _selector(agent=make_agent(tracker), tracker=tracker).select_best(progress=False)
    assert res.unpriced_evaluations == res.evaluations
    assert res.get_best().cost_per_item is None
    tracker = Tracker()
    res = _selector(
        agent=make_agent(tracker),
        tracker=tracker,
        model_prices={"house-model": {"input": 1.0, "output": 2.0}},  # $ per million
    ).select_best(progress=False)
    assert res.unpriced_evaluations == 0
    assert res.get_best().cost_per_item == pytest.approx(2 * (100 * 1e-6 + 20 * 2e-6))


@pytest.mark.parametrize("is_async", [False, True])
def test_keyboard_interrupt_in_the_agent_stops_the_selection(is_async: bool) -> None:
    tracker = FakeTracker()
    base = make_agent(tracker, is_async=is_async)

    class Stop(base):  # type: ignore[misc, valid-type]
        def _run(self, x: int) -> bool:
            if x == 3:
                raise KeyboardInterrupt
            return bool(super()._run(x))

    with pytest.raises(KeyboardInterrupt):
        _selector(agent=Stop, tracker=tracker).select_best(parallel=False, progress=False)


def test_an_objective_weighting_cost_changes_the_pick() -> None:
    from agentopt.selectors.objective import Objective

    plain = _selector().select_best(progress=False)
    assert plain.get_best_combo()["solver"] == "x"
    # per item (q planner): x 0.90 @ $0.0041, y 0.55 @ $0.0021, z 0.35 @ $0.0011; at 187.5
    # points per $, y wins by 0.025 over x and 0.0125 over z
    weighted = _selector(objective=Objective(cost_weight=187.5)).select_best(progress=False)
    assert weighted.get_best_combo() == {"planner": "q", "solver": "y"}
    best = weighted.get_best()
    assert best.objective == pytest.approx(best.score - 187.5 * (best.cost_per_item or 0.0))
    assert "objective (95% CI)" in weighted._repr_html_()


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_max_concurrent_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(ConfigError, match="max_concurrent must be an integer"):
        _selector().select_best(max_concurrent=bad, progress=False)


@pytest.mark.parametrize("parallel", [False, True])
def test_a_budget_holds_inside_one_big_batch(parallel: bool) -> None:
    """All 120 evaluations are asked in one batch of unknown cost: the guard still
    stops starting them once the budget would be overrun, and the spend passes the
    budget by at most one evaluation's cost, however many run at once."""
    tracker = FakeTracker()
    agent = make_agent(tracker)
    most = 0.004 + 0.0005  # the dearest evaluation
    budget = 0.05
    sel = _selector(
        agent=agent, tracker=tracker, method=BruteForceStrategy(rounds=1), budget_usd=budget
    )
    res = sel.select_best(parallel=parallel, max_concurrent=4, progress=False)
    assert res.selection_cost <= budget + most
    assert res.evaluations == agent.calls["n"] < 6 * len(DATA)
    assert "budget" in (res.stop_reason or "")
    assert res.selection_cost == pytest.approx(sum(r.cost_usd for r in tracker.recs))


def test_the_package_exports_resolve_lazily() -> None:
    import importlib

    pkg = importlib.import_module("agentopt.selectors")
    assert pkg.__all__ == sorted(pkg._LAZY)
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None, name
    assert pkg.ModelSelector is ModelSelector
