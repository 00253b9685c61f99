"""Fingerprints of agents, eval_fns, combinations and datapoints: stable, and sensitive
to what changes behaviour (code, constants), blind to what does not (state, order)."""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentopt.selectors.run.fingerprint import callable_fingerprint, combo_key, datapoint_keys


def exact(expected: Any, actual: Any) -> float:
    return float(expected == actual)


def exact_again(expected: Any, actual: Any) -> float:
    return float(expected == actual)


def lenient(expected: Any, actual: Any) -> float:
    return float(str(expected).strip() == str(actual).strip())


def _decorate(fn: Any) -> Any:
    @functools.wraps(fn)
    def inner(*a: Any) -> Any:
        return fn(*a)

    return inner


class Agent:
    PROMPT = "Answer briefly."

    def __init__(self, combo: dict[str, str]) -> None:
        self.combo = combo
        self.history: list[str] = []

    def run(self, question: str) -> str:
        return f"{self.PROMPT} {question}"


def test_a_function_is_named_and_hashed_by_its_code() -> None:
    fp = callable_fingerprint(exact)
    assert fp.startswith(f"{__name__}.exact@") and fp == callable_fingerprint(exact)
    assert callable_fingerprint(lenient) != fp
    assert callable_fingerprint(exact_again) != fp  # another name is another function


def test_lambdas_on_one_line_differ_by_their_constants() -> None:
    one, zero = (lambda e, a: 1.0), (lambda e, a: 0.0)
    assert callable_fingerprint(one) != callable_fingerprint(zero)


def test_closures_count_constants_not_state() -> None:
    def make(threshold: float, log: list[str]) -> Any:
        def score(expected: Any, actual: Any) -> float:
            log.append("x")
            return float(abs(expected - actual) < threshold)

        return score

    log: list[str] = []
    a, b = make(0.1, log), make(0.1, ["other", "state"])
    assert callable_fingerprint(a) == callable_fingerprint(b)  # a mutable log is state
    assert callable_fingerprint(make(0.2, log)) != callable_fingerprint(a)
    a(1, 1)
    assert callable_fingerprint(a) == callable_fingerprint(b)  # running it changes nothing


def test_decorated_partial_and_bound_callables_are_told_apart() -> None:
    assert callable_fingerprint(_decorate(exact)) == callable_fingerprint(exact)
    assert callable_fingerprint(_decorate(exact)) != callable_fingerprint(_decorate(lenient))
    p1 = functools.partial(lambda e, a, k: float(k), k=1)
    p2 = functools.partial(p1.func, k=0)
    assert callable_fingerprint(p1) != callable_fingerprint(p2)

    class Judge:
        def __init__(self, strict: bool) -> None:
            self.strict, self.calls = strict, []

        def __call__(self, expected: Any, actual: Any) -> float:
            return float(expected == actual)

    assert callable_fingerprint(Judge(True)) == callable_fingerprint(Judge(True))
    assert callable_fingerprint(Judge(True)) != callable_fingerprint(Judge(False))


def test_an_agent_class_is_hashed_by_its_methods_and_constants() -> None:
    fp = callable_fingerprint(Agent)
    assert fp.startswith(f"{__name__}.Agent@")

    class Louder(Agent):
        PROMPT = "Answer loudly."

    class Same(Agent):
        pass

    assert callable_fingerprint(Louder) != callable_fingerprint(Same)
    assert callable_fingerprint(Agent, "v2") == f"{__name__}.Agent@v:v2"
    assert callable_fingerprint(Agent, "v2") != callable_fingerprint(Agent, "v3")


USER_MODULE = """
LIMIT = 3
PROMPT = "Answer in one word."

def normalise(text):
    return text.strip().lower()

def eval_fn(expected, actual):
    return float(expected in {"a", "b", "c"} and normalise(actual) == expected)

class Agent:
    STEPS = ("plan", "solve")

    def __init__(self, combo):
        self.combo = combo

    def run(self, q):
        return PROMPT + q
"""


def _fingerprints(tmp_path: Path, source: str, seed: str = "0") -> str:
    (tmp_path / "user_agent.py").write_text(source)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import user_agent as u;"
        "from agentopt.selectors.run.fingerprint import callable_fingerprint as f;"
        "print(f(u.eval_fn), f(u.Agent))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": seed, "PATH": ""},
    ).stdout


def test_fingerprints_are_the_same_in_another_process(tmp_path: Path) -> None:
    outs = {_fingerprints(tmp_path, USER_MODULE, seed) for seed in ("1", "2", "3")}
    assert len(outs) == 1, outs  # frozensets and dict orders do not leak into the hash
    eval_fp, agent_fp = next(iter(outs)).split()
    assert eval_fp.startswith("user_agent.eval_fn@") and agent_fp.startswith("user_agent.Agent@")
    # a helper the eval_fn calls, or a module constant the agent reads, is part of it
    helper = _fingerprints(tmp_path, USER_MODULE.replace(".lower()", ".casefold()")).split()
    assert helper[0] != eval_fp and helper[1] == agent_fp
    prompt = _fingerprints(tmp_path, USER_MODULE.replace("one word", "two words")).split()
    assert prompt[0] == eval_fp and prompt[1] != agent_fp
    unused = _fingerprints(tmp_path, USER_MODULE.replace("LIMIT = 3", "LIMIT = 4")).split()
    assert unused == [eval_fp, agent_fp]  # what neither reads does not matter


def test_datapoints_are_keyed_by_content_and_repeats_stay_apart() -> None:
    @dataclass(frozen=True)
    class Item:
        question: str

    keys = datapoint_keys([(Item("q1"), "1"), (Item("q2"), "2"), (Item("q1"), "1")])
    assert keys[0] != keys[1] and keys[2] == keys[0] + "#1"
    assert datapoint_keys([(Item("q2"), "2")]) == [keys[1]]  # the order does not matter


def test_combination_keys_tell_configured_objects_apart() -> None:
    class LLM:
        def __init__(self, model: str, temperature: float) -> None:
            self.model, self.temperature = model, temperature

    labels = {"solver": "gpt-4o"}
    assert combo_key({"solver": "gpt-4o"}, labels) == "solver=gpt-4o"
    hot = combo_key({"solver": LLM("gpt-4o", 1.0)}, labels)
    cold = combo_key({"solver": LLM("gpt-4o", 0.0)}, {"solver": "gpt-4o#2"})
    assert hot.startswith("solver=gpt-4o@") and hot != cold
    assert combo_key({"solver": LLM("gpt-4o", 0.0)}, labels) == cold  # not the "#2" label
