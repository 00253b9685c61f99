"""A replay world answers each (model, datapoint) exactly as the table recorded."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentopt.exceptions import SimulatorError
from agentopt.replay import ReplayTable
from agentopt.sim import SimServer, load_world
from agentopt.sim.replay import recorded_score


@pytest.fixture(scope="module")
def gpqa(bench_data: Path) -> Iterator[tuple[SimServer, ReplayTable]]:
    path = bench_data / "gpqa.csv"
    with SimServer(f"replay:{path}", time_scale=0.0) as s:
        yield s, ReplayTable.from_csv(path)


def test_every_model_replays_recorded_scores(gpqa: tuple[SimServer, ReplayTable]) -> None:
    sim, table = gpqa
    with httpx.Client(base_url=sim.openai_base_url) as c:
        for model in table.node_models()["agent"]:
            i = table.arm_index({"agent": model})
            for j in range(0, table.n_datapoints, 25):
                d = table.datapoints[j]
                r = c.post(
                    "/chat/completions",
                    json={
                        "model": model,
                        "messages": [{"role": "user", "content": f"datapoint: {d}"}],
                    },
                )
                if math.isnan(table.score[i, j]):
                    assert r.status_code == 500
                    continue
                text = r.json()["choices"][0]["message"]["content"]
                assert recorded_score(text) == pytest.approx(table.score[i, j])


def test_recorded_tokens_are_the_usage(bench_data: Path, tmp_path: Path) -> None:
    import pandas as pd

    df = pd.read_csv(bench_data / "hotpotqa.csv")
    one = df[df.planner == "Claude 3 Haiku"].drop(columns=["planner"])
    one = one.rename(columns={"solver": "agent"})
    one["combo"] = "agent=" + one["agent"]
    single = tmp_path / "single_node.csv"
    one.to_csv(single, index=False)
    table = ReplayTable.from_csv(single)
    with SimServer(f"replay:{single}", time_scale=0.0) as s:
        r = httpx.post(
            s.url + "/v1/messages",
            json={
                "model": "Kimi K2.5",
                "max_tokens": 10_000,
                "messages": [{"role": "user", "content": "Please solve datapoint #7."}],
            },
        ).json()
    i, j = table.arm_index({"agent": "Kimi K2.5"}), table.datapoint_index(7)
    assert r["usage"]["input_tokens"] == int(table.input_tokens[i, j])
    assert r["usage"]["output_tokens"] == int(table.output_tokens[i, j])


def test_replay_world_aliases_default_world_names(gpqa: tuple[SimServer, ReplayTable]) -> None:
    sim, _ = gpqa
    r = httpx.post(
        sim.openai_base_url + "/chat/completions",
        json={
            "model": "claude-opus-4-6",
            "messages": [{"role": "user", "content": "datapoint: 0"}],
        },
    )
    assert r.status_code == 200 and r.headers["x-sim-model"] == "Claude Opus 4.6"


def test_prompt_without_datapoint_is_a_400(gpqa: tuple[SimServer, ReplayTable]) -> None:
    sim, _ = gpqa
    for content in ("no id here", "datapoint: 99999"):
        r = httpx.post(
            sim.openai_base_url + "/chat/completions",
            json={"model": "Kimi K2.5", "messages": [{"role": "user", "content": content}]},
        )
        assert r.status_code == 400 and "datapoint" in r.json()["error"]["message"]


def test_multi_node_tables_are_refused(bench_data: Path) -> None:
    with pytest.raises(SimulatorError, match="single-node"):
        load_world(f"replay:{bench_data / 'hotpotqa.csv'}")
