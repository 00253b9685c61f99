"""Replay worlds: simulated models that answer exactly as a recorded table says.

For a single-node table (e.g. ``data/agentopt-bench/gpqa.csv``), model ``m``
answering datapoint ``d`` returns the recorded score, input and output tokens
and latency (× the server's time scale) of cell (m, d).

How a prompt names its datapoint: the last ``datapoint: <id>`` in the
messages (``datapoint=<id>`` and ``datapoint #<id>`` work too); or, when the
table has a ``prompt`` column, the datapoint whose recorded prompt text the
messages contain. A prompt that names no datapoint gets a 400, an unknown
datapoint a 400, and a missing cell (a run that failed in the recording) a 500.

The reply text is ``Recorded outcome for datapoint d: score s.`` plus a marker;
:func:`recorded_score` reads the score back from it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from agentopt.exceptions import DataError, SimulatorError
from agentopt.sim.engine import Reply, SimRequest, estimate_tokens
from agentopt.sim.marker import Marker, find_markers
from agentopt.sim.world import WORLDS_DIR, Latency, SimModel, World

__all__ = ["ReplayAnswerer", "recorded_score", "replay_world"]

_DATAPOINT = re.compile(r"datapoint\s*(?:[:=#]\s*)?([A-Za-z0-9_.\-]+)", re.IGNORECASE)


def _load_table(path: str) -> Any:
    from agentopt.replay import ReplayTable

    try:
        table = ReplayTable.from_csv(path)
    except DataError as exc:
        raise SimulatorError(f"replay world: {exc}") from exc
    if len(table.nodes) != 1:
        raise SimulatorError(
            f"replay world: {path} has nodes {table.nodes}; only single-node tables can be "
            "replayed model by model"
        )
    return table


def _default_names() -> dict[str, str]:
    """Published model name → the default world's simulated name."""
    import yaml

    data = yaml.safe_load((WORLDS_DIR / "default.yaml").read_text(encoding="utf-8"))
    return {m["published_as"]: m["name"] for m in data["models"] if m.get("published_as")}


def replay_world(path: str | Path) -> World:
    """A :class:`World` with one model per model of the single-node table at ``path``.

    Each model is named as in the table; the default world's name for the same
    published model (e.g. ``claude-opus-4-6`` for ``Claude Opus 4.6``) is an alias
    and prices it.
    """
    table = _load_table(str(path))
    node = table.nodes[0]
    mapped = _default_names()
    models = []
    for label in table.node_models()[node]:
        alias = mapped.get(label)
        models.append(
            SimModel(
                name=label,
                aliases=[alias] if alias else [],
                published_as=label,
                price_as=alias,
                latency=Latency(ttft_s=0.0, per_token_s=0.0),
            )
        )
    return World(
        name=f"replay:{Path(path).stem}",
        description=f"answers as recorded in {path}",
        models=models,
        replay=str(path),
        pair_noise=0.0,
    )


class ReplayAnswerer:
    """Looks up (model, datapoint) cells of the world's table."""

    def __init__(self, world: World) -> None:
        assert world.replay is not None
        self.world = world
        self.table = _load_table(world.replay)
        self.node = self.table.nodes[0]
        self._by_text = {str(d): d for d in self.table.datapoints}
        self._prompts = dict(self.table.prompts or {})

    def datapoint(self, text: str) -> Any:
        found = _DATAPOINT.findall(text)
        if found:
            return self._by_text.get(found[-1].rstrip(".-"), found[-1])
        for d, prompt in self._prompts.items():
            if prompt and prompt in text:
                return d
        return None

    def answer(
        self, model: SimModel, req: SimRequest
    ) -> tuple[Reply | None, tuple[int, str] | None]:
        d = self.datapoint(req.text)
        if d is None:
            return None, (
                400,
                "replay world: the prompt names no datapoint (add 'datapoint: <id>')",
            )
        if str(d) not in self._by_text:
            return None, (400, f"replay world: unknown datapoint {d!r}")
        i = self.table.arm_index({self.node: model.name})
        j = self.table.datapoint_index(self._by_text[str(d)])
        score = float(self.table.score[i, j])
        if math.isnan(score):
            return None, (
                500,
                f"replay world: the recorded run of {model.name} on datapoint {d} failed",
            )
        latency = float(self.table.latency_s[i, j])
        latency = 0.0 if math.isnan(latency) else latency
        n_in = self.table.input_tokens[i, j]
        n_out = self.table.output_tokens[i, j]
        prompt_tokens = estimate_tokens(req.text, req.n_messages) if math.isnan(n_in) else int(n_in)
        completion = 16 if math.isnan(n_out) else max(1, int(n_out))
        marker = Marker(model.name, f"datapoint:{d}", int(score >= 1.0), 0.0, score)
        text = f"Recorded outcome for datapoint {d}: score {score:.4g}.\n\n{marker.encode()}"
        reply = Reply(
            text=text,
            tool_calls=[],
            prompt_tokens=prompt_tokens,
            completion_tokens=completion,
            ttft_s=0.15 * latency,
            per_token_s=0.85 * latency / completion,
            finish="stop",
        )
        return reply, None


def recorded_score(text: str) -> float | None:
    """The recorded score a replay-world reply carries, or None."""
    scores = [m.score for m in find_markers(text) if m.score is not None]
    return scores[-1] if scores else None
