"""Worlds load from names, files and dicts; bad ones say what and where."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from agentopt.exceptions import SimulatorError
from agentopt.pricing import default_price_book
from agentopt.sim import builtin_worlds, load_world


def test_default_world_models_are_priced_by_the_price_book() -> None:
    w = load_world("default")
    assert len(w.models) >= 8
    book = default_price_book()
    for name, (pin, pout) in w.prices().items():
        assert book.is_priced(name), name
        assert pin is not None and pout is not None and pin > 0 and pout > 0


def test_default_world_is_calibrated_to_the_published_results(bench_data: Path) -> None:
    pub = pd.read_csv(bench_data / "published" / "gpqa_brute_force.csv")
    accuracy = {
        str(m): float(str(a).rstrip("%")) / 100
        for m, a in zip(pub.Model, pub.Accuracy, strict=True)
    }
    w = load_world("default")
    for m in w.models:
        assert m.published_as in accuracy
        assert m.skill("mcq") == pytest.approx(accuracy[m.published_as], abs=0.005)
        assert w.get(str(m.published_as)) is m  # the published name is an alias
    # the quality order survives: the best published model is the best simulated one
    best = max(w.models, key=lambda m: m.skill("mcq"))
    assert best.published_as == max(accuracy, key=accuracy.__getitem__)


def test_world_from_json_and_yaml_files(tmp_path: Path) -> None:
    spec = {
        "name": "tiny",
        "models": [{"name": "a", "input_per_million": 1, "output_per_million": 2}],
    }
    (tmp_path / "w.json").write_text(json.dumps(spec))
    (tmp_path / "w.yaml").write_text(
        "name: tiny\nmodels:\n  - name: a\n    input_per_million: 1\n    output_per_million: 2\n"
    )
    for f in ("w.json", "w.yaml"):
        w = load_world(tmp_path / f, seed=5)
        assert w.name == "tiny" and w.seed == 5 and w.prices() == {"a": (1, 2)}


def test_bad_worlds_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match="no world 'nowhere'"):
        load_world("nowhere")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodels:\n  - name: a\n    skills: {mcq: 1.5}\n")
    with pytest.raises(SimulatorError, match=r"bad.yaml: models.0.skills"):
        load_world(bad)
    with pytest.raises(SimulatorError, match="used twice"):
        load_world({"name": "x", "models": [{"name": "a"}, {"name": "b", "aliases": ["a"]}]})
    with pytest.raises(SimulatorError, match=r"faults\.errors"):
        load_world({"name": "x", "models": [{"name": "a", "faults": {"errors": {418: 0.1}}}]})
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(SimulatorError, match=r"broken\.json"):
        load_world(tmp_path / "broken.json")


def test_non_utf8_world_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\nmodels:\n  - name: a\n".encode("latin-1"))
    with pytest.raises(SimulatorError, match=r"latin1\.yaml is not UTF-8"):
        load_world(bad)


def test_builtin_worlds_lists_default() -> None:
    assert "default" in builtin_worlds()


def test_default_models_score_their_skill_on_the_mcq_set() -> None:
    """1,000 questions per model: sd of the mean <= 0.016, so ±0.05 is over 3 sd."""
    from agentopt.sim.engine import SimRequest, answer
    from agentopt.sim.tasks import grade, load_task

    w = load_world("default", seed=0)
    items = load_task("mcq")
    for m in w.models:
        got = sum(grade(it, answer(w, m, SimRequest(m.name, it.prompt, 1)).text) for it in items)
        assert abs(got / len(items) - m.skill("mcq")) <= 0.05, m.name
