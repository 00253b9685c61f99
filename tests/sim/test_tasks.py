"""Task sets: sizes, stable content, right answer keys, and grading."""

from __future__ import annotations

import pytest

from agentopt.exceptions import DataError
from agentopt.sim.marker import Marker, find_markers, strip_markers
from agentopt.sim.tasks import all_items, find_item, grade, load_task


def test_sets_are_large_unique_and_stable() -> None:
    for family in ("mcq", "arithmetic"):
        items = load_task(family)
        assert len(items) >= 200
        assert len({it.question for it in items}) == len(items)
        assert all(it.question.endswith("?") and "\n" not in it.question for it in items)
    assert load_task("mcq")[0].question == "What is the capital of Portugal?"
    assert load_task("mcq")[0].answer == "B"
    assert len(all_items()) == 2000


def test_answer_keys_are_right() -> None:
    for it in load_task("mcq"):
        assert len(set(it.choices)) == 4 and it.answer in "ABCD"
        if it.question.startswith("What is the square root of "):
            n = int(it.question.removeprefix("What is the square root of ").rstrip("?"))
            assert int(it.answer_text) ** 2 == n
        if it.question.startswith("What is the remainder when "):
            a, b = [int(w) for w in it.question.replace("?", "").split() if w.isdigit()]
            assert int(it.answer_text) == a % b
    rows = [it for it in load_task("arithmetic") if it.question.startswith("A hall has ")]
    assert rows
    for it in rows:
        r, c, broken = [int(w) for w in it.question.split() if w.isdigit()]
        assert int(it.answer) == r * c - broken


def test_find_item_in_any_wrapping() -> None:
    it = load_task("arithmetic")[42]
    assert find_item(f"System: be brief.\nSolve this: {it.question} Show work.") is it
    assert find_item(it.prompt) is it
    assert find_item("What is the capital of Atlantis?") is None
    assert find_item("no question here") is None


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Answer: B", 1.0),
        ("the answer is (b)", 1.0),
        ("B", 1.0),
        ("Answer: C", 0.0),
        ("Lisbon", 1.0),
        ("", 0.0),
    ],
)
def test_grade_mcq(reply: str, score: float) -> None:
    it = load_task("mcq")[0]  # capital of Portugal, B) Lisbon
    assert grade(it, reply) == score


def test_grade_arithmetic_uses_the_last_number_and_ignores_markers() -> None:
    it = load_task("arithmetic")[0]
    marker = Marker("m", it.id, 1, 0.2).encode()
    assert grade(it, f"Step 1: 3 + 4. Answer: {it.answer}\n\n{marker}") == 1.0
    assert grade(it, f"Answer: {int(it.answer) + 1}") == 0.0
    assert grade(it, "no number") == 0.0


def test_markers_round_trip_and_strip() -> None:
    m = Marker("claude-opus-4-6", "mcq-0001", 0, -0.45, None)
    text = f"Answer: A\n\n{m.encode()}"
    assert find_markers(text) == [m]
    assert strip_markers(text) == "Answer: A"
    assert not any(ch.isdigit() or ch.isupper() for ch in m.encode())


def test_unknown_family() -> None:
    with pytest.raises(DataError, match="unknown task family"):
        load_task("poetry")
