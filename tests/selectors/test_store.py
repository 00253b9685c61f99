"""Observation stores: write-through, reload, fingerprints, serving stored cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentopt.exceptions import StoreError
from agentopt.records import Observation
from agentopt.selectors.store import (
    JSONLStore,
    ResumingEvaluator,
    SQLiteStore,
    fingerprint,
    get_store,
)


def _obs(model: str, dp: int, score: float = 1.0, cost: float | None = 0.01) -> Observation:
    return Observation(combo={"solver": model}, datapoint=dp, score=score, cost_usd=cost)


def _fp(**kw: object) -> str:
    base: dict[str, object] = {
        "agent": _fp,
        "labels": {"solver": ["a", "b"]},
        "dataset": [("q1", 1), ("q2", 2)],
        "seed": 0,
        "method": "auto",
    }
    base.update(kw)
    return fingerprint(**base)  # type: ignore[arg-type]


def test_fingerprint_is_stable_and_changes_with_each_ingredient() -> None:
    assert _fp() == _fp()
    others = {
        _fp(agent=test_fingerprint_is_stable_and_changes_with_each_ingredient),
        _fp(labels={"solver": ["a", "c"]}),
        _fp(dataset=[("q1", 1), ("q2", 3)]),
        _fp(seed=1),
        _fp(method="lucb"),
    }
    assert _fp() not in others and len(others) == 5


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_store_round_trips_observations_per_fingerprint(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"obs{suffix}"
    store = get_store(path)
    assert isinstance(store, JSONLStore if suffix == ".jsonl" else SQLiteStore)
    store.append("fp1", _obs("a", 0, 0.5))
    store.append("fp1", _obs("b", 3, 0.0, None))
    store.append("fp2", _obs("a", 0, 1.0))
    store.close()
    again = get_store(path)
    got = again.load("fp1")
    again.close()
    assert set(got) == {("solver=a", 0), ("solver=b", 3)}
    assert got[("solver=a", 0)].score == 0.5
    assert got[("solver=b", 3)].cost_usd is None


def test_jsonl_store_skips_a_last_line_cut_short_by_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "obs.jsonl"
    store = JSONLStore(path)
    store.append("fp", _obs("a", 0))
    store.close()
    with path.open("a") as fh:
        fh.write('{"fingerprint": "fp", "observation": {"combo": {"sol')
    assert list(JSONLStore(path).load("fp")) == [("solver=a", 0)]


def test_jsonl_store_repairs_a_cut_last_line_so_later_resumes_keep_working(
    tmp_path: Path,
) -> None:
    path = tmp_path / "obs.jsonl"
    store = JSONLStore(path)
    store.append("fp", _obs("a", 0))
    store.close()
    with path.open("a") as fh:
        fh.write('{"fingerprint": "fp", "observation": {"combo": {"sol')
    first = JSONLStore(path)  # the first resume: the fragment is cut off on open
    assert list(first.load("fp")) == [("solver=a", 0)]
    first.append("fp", _obs("b", 1))
    first.close()
    second = JSONLStore(path)  # the second resume must read both, not fail on a glued line
    assert set(second.load("fp")) == {("solver=a", 0), ("solver=b", 1)}
    second.close()
    assert all(line.startswith("{") for line in path.read_text().splitlines())


def test_jsonl_store_ends_a_whole_last_line_that_lost_only_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "obs.jsonl"
    store = JSONLStore(path)
    store.append("fp", _obs("a", 0))
    store.close()
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    again = JSONLStore(path)
    again.append("fp", _obs("b", 1))
    again.close()
    assert set(JSONLStore(path).load("fp")) == {("solver=a", 0), ("solver=b", 1)}


def test_jsonl_store_rejects_a_corrupt_complete_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "obs.jsonl"
    path.write_text('{"fingerprint": "fp", "observation": {"oops": 1}}\n')
    with pytest.raises(StoreError, match=r"obs\.jsonl:1"):
        JSONLStore(path).load("fp")


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
        stored={("solver=a", 1): _obs("a", 1, 0.75)},
        combo_ids=["solver=a", "solver=b"],
        on_reused=lambda a, d, o: reused.append((a, d)),
    )
    out = await ev.evaluate([(0, 0), (0, 1), (1, 1)])
    assert inner.asked == [(0, 0), (1, 1)]
    assert [o.score for o in out] == [0.0, 0.75, 0.0]
    assert [o.datapoint for o in out] == [0, 1, 1]
    assert ev.reused == 1 and reused == [(0, 1)]


def test_fingerprint_reads_the_content_of_dataset_objects() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True, slots=True)
    class Item:
        question: str
        answer: str

    class Plain:
        def __init__(self, x: int) -> None:
            self.x = x

    a = _fp(dataset=[(Item("q", "1"), Plain(1))])
    assert a == _fp(dataset=[(Item("q", "1"), Plain(1))])
    assert a != _fp(dataset=[(Item("q", "2"), Plain(1))])
    assert a != _fp(dataset=[(Item("q", "1"), Plain(2))])


def test_an_unusable_store_path_is_a_store_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the observation store"):
        get_store(tmp_path)  # a directory, not a database
