"""Candidates, normalised into arms.

A router's candidates come in three shapes, all turned into one list of *arms*:

- a list of models (``["gpt-4o-mini", "gpt-4o"]``): one arm per model, every
  call may go to any of them;
- a dict per node (``{"planner": [...], "solver": [...]}``): one arm per
  combination (the product of the node lists), chosen once per datapoint, each
  call routed by its session's ``agent_id``;
- a list of combinations (``[{"planner": "a", "solver": "b"}, ...]``): the same,
  restricted to the combinations given.

Arm labels are model names for flat candidates, and the canonical combination
label ``node=Model + node=Model`` (as in :class:`~agentopt.records.Observation`)
otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.records import Observation

__all__ = ["Arms", "Candidates"]

Candidates: TypeAlias = Sequence[str] | Mapping[str, Sequence[str]] | Sequence[Mapping[str, str]]


@dataclass(eq=False)
class Arms:
    """The arms of a router: labels, and for multi-node candidates the combos."""

    labels: list[str]
    nodes: list[str] | None = None  # None: flat candidates (arm = model)
    combos: list[dict[str, str]] | None = None
    index: dict[str, int] = field(default_factory=dict, repr=False)
    models: list[str] = field(default_factory=list)
    # for each arm, the distinct models it uses (for quota and budget checks)
    arm_models: list[tuple[str, ...]] = field(default_factory=list, repr=False)
    # node → model → indices of the arms using that model at that node
    by_node_model: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.index = {label: i for i, label in enumerate(self.labels)}
        if self.combos is None:
            self.arm_models = [(label,) for label in self.labels]
            self.models = list(self.labels)
        else:
            assert self.nodes is not None
            self.arm_models = [tuple(dict.fromkeys(c.values())) for c in self.combos]
            self.models = list(dict.fromkeys(m for c in self.combos for m in c.values()))
            for n in self.nodes:
                groups: dict[str, list[int]] = {}
                for i, c in enumerate(self.combos):
                    groups.setdefault(c[n], []).append(i)
                self.by_node_model[n] = {
                    m: np.asarray(ix, dtype=np.intp) for m, ix in groups.items()
                }

        self._model_set = frozenset(self.models)
        # name without a "provider/" prefix → candidate (first wins)
        self._bare: dict[str, str] = {}
        for m in self.models:
            self._bare.setdefault(m.split("/", 1)[1] if "/" in m else m, m)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def multi_node(self) -> bool:
        return self.combos is not None

    def match_model(self, name: str | None, provider: str | None = None) -> str | None:
        """The candidate model a recorded model name stands for, or None.

        Records name the model that answered, which may differ from the name
        routed to: ``simanthropic/claude-haiku-4-5`` answers as
        ``claude-haiku-4-5``, ``gpt-4o-mini`` as ``gpt-4o-mini-2024-07-18``.
        Matches, in order: the exact name, ``provider/name``, the name after a
        ``provider/`` prefix, then the longest candidate that the name extends
        with a ``-`` suffix."""
        if not name:
            return None
        models = self._model_set
        if name in models:
            return name
        if provider and f"{provider}/{name}" in models:
            return f"{provider}/{name}"
        hit = self._bare.get(name)
        if hit is not None:
            return hit
        best: str | None = None
        best_len = 0
        for bare, model in self._bare.items():
            if len(bare) > best_len and name.startswith(bare + "-"):
                best, best_len = model, len(bare)
        return best

    def label_of(self, combo: Mapping[str, str]) -> str | None:
        """The arm label of a (complete) combination, or None if it is not an arm."""
        assert self.nodes is not None
        if any(n not in combo for n in self.nodes):
            return None
        label = Observation.combo_label({n: combo[n] for n in self.nodes})
        return label if label in self.index else None

    @classmethod
    def from_candidates(cls, candidates: Candidates) -> Arms:
        """Normalise any accepted shape; :class:`ConfigError` says what is wrong."""
        if isinstance(candidates, str):
            raise ConfigError(
                f"candidates must be a list of models or a dict per node, not the string "
                f"{candidates!r}"
            )
        if isinstance(candidates, Mapping):
            if not candidates:
                raise ConfigError("candidates: the dict per node is empty")
            nodes = [str(n) for n in candidates]
            lists: list[list[str]] = []
            for n, models in candidates.items():
                ms = _model_list(models, where=f"candidates[{n!r}]")
                lists.append(ms)
            combos = [dict(zip(nodes, prod, strict=True)) for prod in itertools.product(*lists)]
            return cls._combos(nodes, combos)
        items = list(candidates)
        if not items:
            raise ConfigError("candidates: the list is empty")
        if all(isinstance(c, Mapping) for c in items):
            combos = [
                {str(k): str(v) for k, v in cast(Mapping[str, str], c).items()} for c in items
            ]
            nodes = list(combos[0])
            for i, c in enumerate(combos):
                if list(c) != nodes:
                    raise ConfigError(
                        f"candidates[{i}]: combination nodes {list(c)} differ from "
                        f"the first combination's {nodes}"
                    )
            return cls._combos(nodes, combos)
        return cls(labels=_model_list(items, where="candidates"))

    @classmethod
    def _combos(cls, nodes: list[str], combos: list[dict[str, str]]) -> Arms:
        labels = [Observation.combo_label(c) for c in combos]
        if len(set(labels)) != len(labels):
            dup = next(x for x in labels if labels.count(x) > 1)
            raise ConfigError(f"candidates: combination {dup!r} appears twice")
        return cls(labels=labels, nodes=nodes, combos=combos)

    def to_json(self) -> Any:
        """The candidates in a JSON-serialisable shape that :meth:`from_candidates` reads."""
        if self.combos is None:
            return list(self.labels)
        return [dict(c) for c in self.combos]


def _model_list(models: Any, *, where: str) -> list[str]:
    if isinstance(models, str) or not isinstance(models, Sequence):
        raise ConfigError(f"{where}: expected a list of model names, got {models!r}")
    out: list[str] = []
    for i, m in enumerate(models):
        if not isinstance(m, str) or not m:
            raise ConfigError(f"{where}[{i}]: expected a model name, got {m!r}")
        if m in out:
            raise ConfigError(f"{where}: model {m!r} appears twice")
        out.append(m)
    if not out:
        raise ConfigError(f"{where}: the list is empty")
    return out
