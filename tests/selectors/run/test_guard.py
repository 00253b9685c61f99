"""The live budget guard: reservations in flight, estimates for unpriced calls, exact stops."""

from __future__ import annotations

import asyncio

import pytest

from agentopt.records import Observation
from agentopt.selectors.run.guard import BudgetGuard, GuardStop
from agentopt.selectors.state import SelectionState
from agentopt.selectors.stopping import BudgetUSD, usd
from agentopt.selectors.strategies.brute_force import BruteForceStrategy
from tests.selectors.test_selector import PRICE, FakeTracker, _selector, make_agent


def _obs(cost: float | None) -> Observation:
    return Observation(combo={"m": "a"}, datapoint=0, score=1.0, cost_usd=cost)


def _state() -> SelectionState:
    from agentopt.selectors.base import Problem

    return SelectionState.empty(Problem.create(2, 4, seed=0))


def test_reservations_in_flight_count_against_the_budget() -> None:
    async def go() -> None:
        g = BudgetGuard(1.0, n_arms=2)
        first = await g.reserve(0)
        assert first is not None and not first.known  # nothing priced yet
        g.settle(first, _obs(0.4))
        assert g.spent == pytest.approx(0.4) and g.predict(1) == pytest.approx(0.4)
        held = await g.reserve(0)
        assert held is not None and held.estimate == pytest.approx(0.4)
        assert g.in_flight == pytest.approx(0.4)
        assert await g.reserve(1) is None and g.refused == 1  # 0.4 + 0.4 held + 0.4 > 1
        g.settle(held, _obs(0.1))  # the real cost replaces the estimate
        assert g.in_flight == 0 and g.spent == pytest.approx(0.5)

    asyncio.run(go())


def test_before_any_price_evaluations_start_one_at_a_time() -> None:
    async def go() -> None:
        g = BudgetGuard(1.0, n_arms=2)
        first = await g.reserve(0)
        assert first is not None
        waiting = asyncio.ensure_future(g.reserve(1))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not waiting.done()  # held back until the first price is known
        g.settle(first, _obs(0.3))
        second = await waiting
        assert second is not None and second.known and second.estimate == pytest.approx(0.3)

    asyncio.run(go())


def test_unpriced_evaluations_count_at_an_estimate_never_zero() -> None:
    g = BudgetGuard(1.0, n_arms=3)
    g.observe(0, _obs(0.2))
    g.observe(2, _obs(0.5))
    g.observe(1, _obs(None))  # arm 1 never priced: the dearest arm's mean
    assert g.spent == pytest.approx(1.2) and g.estimated_usd == pytest.approx(0.5)
    g.observe(0, _obs(None))  # arm 0's own mean
    assert g.spent == pytest.approx(1.4) and g.unpriced == 2


def test_a_budget_that_cannot_be_enforced_stops_with_a_clear_reason() -> None:
    g = BudgetGuard(1.0, n_arms=2)
    g.observe(0, _obs(None))  # unpriced, and nothing to estimate from
    reason = GuardStop(g).should_stop(_state())
    assert reason is not None and "cannot be enforced" in reason and "model_prices" in reason

    async def go() -> None:
        assert await g.reserve(1) is None  # nothing more starts

    asyncio.run(go())


@pytest.mark.parametrize(("x", "text"), [(0.005, "$0.005"), (5.0, "$5.00"), (44.40552, "$44.4055")])
def test_budgets_print_with_the_digits_that_matter(x: float, text: str) -> None:
    assert usd(x) == text
    st = _state()
    st.spent_usd = x
    assert BudgetUSD(x).should_stop(st) == f"budget {text} spent"


@pytest.mark.parametrize("concurrent", [1, 8])
def test_a_small_budget_is_passed_by_at_most_one_evaluation(concurrent: int) -> None:
    """budget_usd=0.005 with max_concurrent=8 spent $0.0094 and reported "budget $0.01
    reached"; now the spend stays within one evaluation of the budget, which is printed
    as given."""
    tracker = FakeTracker()
    agent = make_agent(tracker)
    most = PRICE["x"] + PRICE["p"]  # the dearest evaluation
    sel = _selector(
        agent=agent, tracker=tracker, method=BruteForceStrategy(rounds=1), budget_usd=0.005
    )
    res = sel.select_best(max_concurrent=concurrent, progress=False)
    assert res.selection_cost <= 0.005 + most
    assert res.selection_cost == pytest.approx(sum(r.cost_usd or 0 for r in tracker.recs))
    assert "budget $0.005 reached" in (res.stop_reason or "")


def test_unpriced_calls_count_against_a_dollar_budget() -> None:
    """A model with no price spends the budget at an estimate, not for free."""
    tracker = FakeTracker()
    base = make_agent(tracker)

    class HalfPriced(base):  # type: ignore[misc, valid-type]
        def _run(self, x: int) -> bool:
            tracker.call(self.combo["planner"], PRICE[self.combo["planner"]])
            if self.combo["solver"] == "y":
                tracker.call("y", None)  # unpriced
            else:
                tracker.call(self.combo["solver"], PRICE[self.combo["solver"]])
            return x % 2 == 0

    budget = 0.03
    res = _selector(
        agent=HalfPriced, tracker=tracker, method=BruteForceStrategy(rounds=1), budget_usd=budget
    ).select_best(progress=False)
    assert res.unpriced_evaluations > 0
    priced = sum(r.cost_usd for r in tracker.recs if r.cost_usd is not None)
    # with the unpriced ones at $0 the run would have gone on to the priced spend of the budget
    assert priced < budget
    assert "estimated for unpriced calls" in (res.stop_reason or "")


def test_a_budget_with_only_unpriced_calls_is_refused_clearly() -> None:
    tracker = FakeTracker()
    base = make_agent(tracker)

    class Unpriced(base):  # type: ignore[misc, valid-type]
        def _run(self, x: int) -> bool:
            tracker.call(self.combo["solver"], None)
            return True

    res = _selector(agent=Unpriced, tracker=tracker, budget_usd=1.0).select_best(progress=False)
    assert res.evaluations == 1  # one evaluation showed it; nothing more was started
    assert "cannot be enforced" in (res.stop_reason or "")
