"""Answers: deterministic, calibrated to skill, and shaped by upstream outputs."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from agentopt.sim import SimServer, find_markers, load_world, strip_markers
from agentopt.sim.engine import SimRequest, answer, success_probability
from agentopt.sim.marker import Marker
from agentopt.sim.tasks import grade, load_task
from agentopt.sim.world import World


def _world(skill: float, **extra: Any) -> World:
    model = {"name": "m", "skills": {"mcq": skill, "arithmetic": skill}, **extra}
    return load_world({"name": "t", "seed": 3, "pair_noise": 0.0, "models": [model]})


def _ask(world: World, model: str, text: str) -> str:
    m = world.get(model)
    assert m is not None
    return answer(world, m, SimRequest(model, f"user: {text}", 1)).text


def test_skill_08_on_2000_questions_scores_08_within_003() -> None:
    w = _world(0.8)
    items = load_task("mcq") + load_task("arithmetic")
    assert len(items) == 2000
    scores = [grade(it, _ask(w, "m", it.prompt)) for it in items]
    # 2,000 Bernoulli(0.8) draws: sd 0.009, so ±0.03 is over 3 sd
    assert abs(np.mean(scores) - 0.8) <= 0.03


def test_wrong_answers_keep_the_expected_format() -> None:
    w = _world(0.0)
    for it in load_task("mcq")[:50]:
        text = strip_markers(_ask(w, "m", it.prompt))
        letter = text.rsplit("Answer: ", 1)[1].strip()
        assert letter in "ABCD" and letter != it.answer
    for it in load_task("arithmetic")[:50]:
        text = strip_markers(_ask(w, "m", it.prompt))
        number = text.rsplit("Answer: ", 1)[1].strip()
        assert number.lstrip("-").isdigit() and number != it.answer


def test_unknown_prompts_get_filler_of_the_modelled_length() -> None:
    w = _world(0.5, output_tokens={"median": 200, "sigma": 0.0})
    text = strip_markers(_ask(w, "m", "Write me a poem about the sea"))
    assert "Answer:" not in text
    assert 120 <= len(text.split()) <= 200  # about 0.75 words a token


def test_same_request_same_answer_other_seed_differs(sim: SimServer) -> None:
    items = load_task("mcq")[:40]
    w0, w1 = load_world("default", seed=0), load_world("default", seed=1)
    a0 = [_ask(w0, "gpt-4o-mini", it.prompt) for it in items]
    again = [_ask(load_world("default", seed=0), "gpt-4o-mini", it.prompt) for it in items]
    a1 = [_ask(w1, "gpt-4o-mini", it.prompt) for it in items]
    assert a0 == again
    assert sum(x != y for x, y in zip(a0, a1, strict=True)) > 20


def test_both_wire_formats_give_the_same_answer(sim: SimServer) -> None:
    prompt = load_task("arithmetic")[7].prompt
    o = httpx.post(
        sim.openai_base_url + "/chat/completions",
        json={"model": "gpt-5-nano", "messages": [{"role": "user", "content": prompt}]},
    ).json()
    a = httpx.post(
        sim.url + "/v1/messages",
        json={
            "model": "gpt-5-nano",
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": prompt}],
        },
    ).json()
    assert o["choices"][0]["message"]["content"] == a["content"][0]["text"]
    assert o["usage"]["completion_tokens"] == a["usage"]["output_tokens"]


def test_max_tokens_caps_usage_and_sets_length(sim: SimServer) -> None:
    body = {
        "model": "gpt-4o",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "Tell me a long story"}],
    }
    o = httpx.post(sim.openai_base_url + "/chat/completions", json=body).json()
    assert o["usage"]["completion_tokens"] == 5 and o["choices"][0]["finish_reason"] == "length"
    a = httpx.post(sim.url + "/v1/messages", json=body).json()
    assert a["usage"]["output_tokens"] == 5 and a["stop_reason"] == "max_tokens"


def test_output_carries_a_marker_naming_producer_item_and_correctness() -> None:
    w = _world(1.0, plan=0.3)
    it = load_task("mcq")[3]
    (m,) = find_markers(_ask(w, "m", it.prompt))
    assert (m.model, m.item, m.correct, m.help) == ("m", it.id, 1, 0.3)


def test_upstream_markers_move_the_success_probability() -> None:
    w = load_world(
        {
            "name": "t",
            "pair_noise": 0.0,
            "models": [
                {"name": "weak", "skills": {"mcq": 0.4}},
                {"name": "strong", "skills": {"mcq": 0.9}},
            ],
        }
    )
    it = load_task("mcq")[0]
    weak, strong = w.get("weak"), w.get("strong")
    assert weak is not None and strong is not None
    good = [Marker("p", it.id, 1, 0.3)]
    bad = [Marker("p", it.id, 0, -0.3)]
    other = [Marker("p", "mcq-9999", 1, 0.9)]
    assert success_probability(w, weak, it, []) == 0.4
    assert success_probability(w, weak, it, other) == 0.4  # a marker about another item
    # a good plan lifts the weak solver more than the strong one
    lift_weak = success_probability(w, weak, it, good) - 0.4
    lift_strong = success_probability(w, strong, it, good) - 0.9
    assert lift_weak > lift_strong > 0
    assert success_probability(w, strong, it, bad) < 0.9


def test_planner_solver_best_combo_is_not_the_best_model_twice() -> None:
    """Default world, 1,000 mcq items: planner=gpt-5-mini + solver=claude-opus-4-6
    beats the best single model (claude-opus-4-6) at both nodes, by far more than
    the ~0.02 sd of a difference of two 1,000-item means."""
    w = load_world("default", seed=0)
    items = load_task("mcq")

    def accuracy(planner: str, solver: str) -> float:
        total = 0.0
        for it in items:
            plan = _ask(w, planner, it.prompt)
            total += grade(it, _ask(w, solver, f"{it.prompt}\nA colleague's notes:\n{plan}"))
        return total / len(items)

    mixed = accuracy("gpt-5-mini", "claude-opus-4-6")
    same = accuracy("claude-opus-4-6", "claude-opus-4-6")
    alone = np.mean([grade(it, _ask(w, "claude-opus-4-6", it.prompt)) for it in items])
    assert mixed > same + 0.15
    assert mixed > alone + 0.03
