"""Resume: an interrupted selection keeps its observations and pays for none twice."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from agentopt.records import CallRecord
from agentopt.selectors.run.store import get_store
from agentopt.selectors.selector import ModelSelector

_session: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "resume_session", default=None
)

MODELS = {"planner": ["p", "q"], "solver": ["x", "y", "z"]}
QUALITY = {"x": 0.85, "y": 0.6, "z": 0.3}
DATA = [(i, None) for i in range(40)]


class Tracker:
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

    def call(self, cost: float) -> None:
        ids = _session.get()
        assert ids is not None
        with self._lock:
            self.recs.append(CallRecord(data_id=ids[0], combo_id=ids[1], model="m", cost_usd=cost))

    def get_records(self, data_id: str | None = None, combo_id: str | None = None) -> list[Any]:
        with self._lock:
            return [r for r in self.recs if r.data_id == data_id and r.combo_id == combo_id]


class Interrupt(BaseException):
    """A crash that is not an agent failure (like KeyboardInterrupt)."""


class Agent:
    """Deterministic agent; counts its runs; raises ``stop_with`` on run number ``stop_at``.

    Its controls live in a dict: mutable state, which (unlike code and constants)
    is not part of the agent's fingerprint, so every variant resumes the others.
    """

    tracker: Tracker
    ctl: ClassVar[dict[str, Any]] = {}
    lock = threading.Lock()

    def __init__(self, combo: dict[str, str]) -> None:
        self.combo = combo

    def run(self, x: int) -> bool:
        ctl = type(self).ctl
        with type(self).lock:
            ctl["calls"] += 1
            n = ctl["calls"]
        if ctl["stop_at"] is not None and n == ctl["stop_at"]:
            raise ctl["stop_with"]()
        self.tracker.call(0.001 if self.combo["solver"] == "z" else 0.003)
        s = self.combo["solver"]
        return (x * 37 + len(self.combo["planner"]) * 11) % 100 < QUALITY[s] * 100


def _agent(stop_at: int | None = None, stop_with: type[BaseException] = KeyboardInterrupt) -> Any:
    ctl = {"calls": 0, "stop_at": stop_at, "stop_with": stop_with}
    return type("CountingAgent", (Agent,), {"tracker": Tracker(), "ctl": ctl})


def _calls(agent: Any) -> int:
    return int(agent.ctl["calls"])


def _selector(
    agent: Any, store: Path | None, method: str = "successive_elimination", seed: int = 3
) -> ModelSelector:
    sel = ModelSelector(
        agent=agent,
        models=MODELS,
        eval_fn=lambda e, a: float(a),
        dataset=DATA,
        method=method,
        seed=seed,
        tracker=agent.tracker,
        store=store,
    )
    return sel


@pytest.mark.parametrize("suffix", [".sqlite", ".jsonl"])
@pytest.mark.parametrize("method", ["successive_elimination", "auto"])
def test_an_interrupted_run_resumes_and_pays_for_nothing_twice(
    tmp_path: Path, suffix: str, method: str
) -> None:
    reference = _selector(_agent(), None, method).select_best(parallel=False, progress=False)
    total = reference.evaluations

    store = tmp_path / f"sel{suffix}"
    first = _agent(stop_at=total // 2)
    with pytest.raises(KeyboardInterrupt):
        _selector(first, store, method).select_best(parallel=False, progress=False)
    kept = total // 2 - 1  # every run before the interrupted one was stored
    sel = _selector(first, store, method)
    st = get_store(store)
    assert len(st.load(sel.fingerprint())) == kept
    st.close()

    second = _agent()
    resumed = _selector(second, store, method).select_best(parallel=False, progress=False)
    assert _calls(second) == total - kept  # the stored cells were not run again
    assert resumed.reused_evaluations == kept
    assert resumed.evaluations == total
    assert resumed.get_best_combo() == reference.get_best_combo()
    assert resumed.selection_cost == pytest.approx(reference.selection_cost)
    assert [a.evaluations for a in resumed.arms] == [a.evaluations for a in reference.arms]

    third = _agent()
    again = _selector(third, store, method).select_best(parallel=False, progress=False)
    assert _calls(third) == 0 and again.reused_evaluations == total


def test_a_crash_mid_batch_keeps_every_finished_observation(tmp_path: Path) -> None:
    store = tmp_path / "sel.sqlite"
    crashing = _agent(stop_at=30, stop_with=Interrupt)
    with pytest.raises(Interrupt):
        _selector(crashing, store).select_best(parallel=True, max_concurrent=4, progress=False)
    st = get_store(store)
    kept = len(st.load(_selector(crashing, store).fingerprint()))
    st.close()
    # runs 1..29 started before the crash; those that finished were stored at once
    assert 1 <= kept <= 29
    resumed_agent = _agent()
    res = _selector(resumed_agent, store).select_best(parallel=True, progress=False)
    assert _calls(resumed_agent) == res.evaluations - kept
    assert res.reused_evaluations == kept


def test_another_seed_or_method_reuses_every_paid_cell(tmp_path: Path) -> None:
    """The store's key is (agent, eval_fn, combination, datapoint): comparing methods
    or seeds live on one store pays for each cell once."""
    store = tmp_path / "sel.sqlite"
    a = _agent()
    first = _selector(a, store, "brute_force").select_best(progress=False)
    assert _calls(a) == first.evaluations == 6 * len(DATA)
    for method in ("successive_elimination", "auto", "lucb"):
        b = _agent()
        res = _selector(b, store, method, seed=4).select_best(progress=False)
        assert _calls(b) == 0 and res.reused_evaluations == res.evaluations > 0
        assert res.cost_this_run == 0.0
        assert res.get_best_combo() == first.get_best_combo()


def test_a_changed_eval_fn_or_agent_is_not_served_old_cells(tmp_path: Path) -> None:
    store = tmp_path / "sel.jsonl"
    a = _agent()
    _selector(a, store, "brute_force").select_best(progress=False)
    b = _agent()
    sel = ModelSelector(
        agent=b, models=MODELS, eval_fn=lambda e, x: 1.0 - float(x), dataset=DATA,
        method="brute_force", seed=3, tracker=b.tracker, store=store,
    )  # fmt: skip
    res = sel.select_best(progress=False)
    assert res.reused_evaluations == 0 and _calls(b) == res.evaluations

    class Other(Agent):
        def run(self, x: int) -> bool:
            return not super().run(x)

    c = type("CountingAgent", (Other,), {"tracker": Tracker(), "ctl": dict(a.ctl, calls=0)})
    res = _selector(c, store, "brute_force").select_best(progress=False)
    assert res.reused_evaluations == 0 and _calls(c) == res.evaluations
    d = _agent()  # the first agent again: everything served
    res = _selector(d, store, "brute_force").select_best(progress=False)
    assert _calls(d) == 0 and res.reused_evaluations == res.evaluations


def test_nothing_paid_twice_second_select_best_reuses_the_first(tmp_path: Path) -> None:
    """No store path: the selector keeps its observations, so a second select_best()
    (say, with another method) pays for nothing it already has."""
    a = _agent()
    sel = _selector(a, None, "successive_elimination")
    first = sel.select_best(progress=False)
    paid = _calls(a)
    assert paid == first.evaluations and first.reused_evaluations == 0
    again = sel.select_best(progress=False)
    assert _calls(a) == paid  # not one agent run more
    assert again.reused_evaluations == again.evaluations == first.evaluations
    assert again.cost_this_run == 0.0 and again.selection_cost == first.selection_cost
    sel.method = "brute_force"
    full = sel.select_best(progress=False)
    assert _calls(a) == 6 * len(DATA)  # only the cells never evaluated were paid for
    assert full.reused_evaluations == first.evaluations
