"""Observation stores: write-through, reload per scope, serving stored cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentopt.exceptions import StoreError
from agentopt.records import Observation
from agentopt.selectors.run.store import (
    CellKey,
    JSONLStore,
    MemoryStore,
    ResumingEvaluator,
    Scope,
    SQLiteStore,
    get_store,
)

S1 = Scope("agent@1", "eval@1")
S2 = Scope("agent@1", "eval@2")


def _obs(model: str, dp: int, score: float = 1.0, cost: float | None = 0.01) -> Observation:
    return Observation(combo={"solver": model}, datapoint=dp, score=score, cost_usd=cost)


def _key(scope: Scope, model: str, dp: str) -> CellKey:
    return CellKey(*scope, f"solver={model}", dp)


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite", None])
def test_store_round_trips_observations_per_scope(tmp_path: Path, suffix: str | None) -> None:
    path = tmp_path / f"obs{suffix}"
    store = get_store(path) if suffix else MemoryStore()
    if suffix:
        assert isinstance(store, JSONLStore if suffix == ".jsonl" else SQLiteStore)
    store.append(_key(S1, "a", "d0"), _obs("a", 0, 0.5))
    store.append(_key(S1, "b", "d3"), _obs("b", 3, 0.0, None))
    store.append(_key(S2, "a", "d0"), _obs("a", 0, 1.0))
    store.append(_key(S1, "a", "d9"), _obs("a", 9, 0.0))
    store.append(_key(S1, "a", "d9"), _obs("a", 9, 0.25))  # the same cell again: replaced
    store.close()
    again = get_store(path) if suffix else store
    got = again.load(S1)
    again.close()
    assert set(got) == {("solver=a", "d0"), ("solver=b", "d3"), ("solver=a", "d9")}
    assert got[("solver=a", "d0")].score == 0.5
    assert got[("solver=a", "d9")].score == 0.25
    assert got[("solver=b", "d3")].cost_usd is None


def test_jsonl_store_skips_a_last_line_cut_short_by_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "obs.jsonl"
    store = JSONLStore(path)
    store.append(_key(S1, "a", "d0"), _obs("a", 0))
    store.close()
    with path.open("a") as fh:
        fh.write('{"key": {"agent": "agent@1", "eval_fn": "eval@1", "combo": "sol')
    assert list(JSONLStore(path).load(S1)) == [("solver=a", "d0")]


def test_jsonl_store_repairs_a_cut_last_line_so_later_resumes_keep_working(
    tmp_path: Path,
) -> None:
    path = tmp_path / "obs.jsonl"
    store = JSONLStore(path)
    store.append(_key(S1, "a", "d0"), _obs("a", 0))
    store.close()
    with path.open("a") as fh:
        fh.write('{"key": {"agent": "agent@1", "eval_fn": "eval@1", "combo": "sol')
    first = JSONLStore(path)  # the first resume: the fragment is cut off on open
    assert list(first.load(S1)) == [("solver=a", "d0")]
    first.append(_key(S1, "b", "d1"), _obs("b", 1))
    first.close()
    second = JSONLStore(path)  # the second resume must read both, not fail on a glued line
    assert set(second.load(S1)) == {("solver=a", "d0"), ("solver=b", "d1")}
    second.close()
    assert all(line.startswith("{") for line in path.read_text().splitlines())


def test_jsonl_store_ends_a_whole_last_line_that_lost_only_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "obs.jsonl"
    store = JSONLStore(path)
    store.append(_key(S1, "a", "d0"), _obs("a", 0))
    store.close()
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    again = JSONLStore(path)
    again.append(_key(S1, "b", "d1"), _obs("b", 1))
    again.close()
    assert set(JSONLStore(path).load(S1)) == {("solver=a", "d0"), ("solver=b", "d1")}


def test_jsonl_store_rejects_a_corrupt_complete_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "obs.jsonl"
    key = '{"agent": "agent@1", "eval_fn": "eval@1", "combo": "solver=a", "datapoint": "d"}'
    path.write_text('{"key": ' + key + ', "observation": {"oops": 1}}\n')
    with pytest.raises(StoreError, match=r"obs\.jsonl:1"):
        JSONLStore(path).load(S1)


def test_a_store_in_the_old_layout_is_a_clear_error_not_a_silent_repay(tmp_path: Path) -> None:
    import sqlite3

    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.execute(
        "CREATE TABLE observations (fingerprint TEXT, combo TEXT, datapoint INTEGER, "
        "observation TEXT, PRIMARY KEY (fingerprint, combo, datapoint))"
    )
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=r"old\.sqlite: .*earlier agentopt.*agentopt report"):
        get_store(old)
    jl = tmp_path / "old.jsonl"
    jl.write_text('{"fingerprint": "f", "observation": {}}\n')
    with pytest.raises(StoreError, match=r"old\.jsonl:1: .*earlier agentopt"):
        get_store(jl).load(S1)


def test_get_store_rejects_other_objects() -> None:
    with pytest.raises(StoreError, match="store must be a path"):
        get_store(42)  # type: ignore[arg-type]


class _Counting:
    def __init__(self) -> None:
        self.asked: list[tuple[int, int]] = []

    async def evaluate(self, pairs: list[tuple[int, int]]) -> list[Observation]:
        self.asked.extend(pairs)
        return [_obs("ab"[a], d, 0.0) for a, d in pairs]


async def test_resuming_evaluator_serves_stored_cells_and_asks_only_the_rest() -> None:
    inner = _Counting()
    reused: list[tuple[int, int]] = []
    ev = ResumingEvaluator(
        inner,
        stored={
            ("solver=a", "k1"): _obs("a", 7, 0.75),  # stored by a run where it was #7
            ("solver=b", "k0"): _obs("b", 0, 0.0).model_copy(update={"error": "boom"}),
        },
        combo_keys=["solver=a", "solver=b"],
        datapoint_keys=["k0", "k1"],
        labels=[{"solver": "a"}, {"solver": "b"}],
        on_reused=lambda a, d, o: reused.append((a, d)),
    )
    out = await ev.evaluate([(0, 0), (0, 1), (1, 1), (1, 0)])
    assert inner.asked == [(0, 0), (1, 1), (1, 0)]  # a stored failure is run again
    assert [o.score for o in out if o is not None] == [0.0, 0.75, 0.0, 0.0]
    assert [o.datapoint for o in out if o is not None] == [0, 1, 1, 0]  # re-labelled
    assert ev.reused == 1 and reused == [(0, 1)]


def test_an_unusable_store_path_is_a_store_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the observation store"):
        get_store(tmp_path)  # a directory, not a database
