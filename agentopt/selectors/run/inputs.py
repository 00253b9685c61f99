"""Checking what a user hands ModelSelector: models, dataset, agent, numbers.

Every check raises :class:`~agentopt.exceptions.ConfigError` naming the
argument and, where it applies, the node or the dataset index at fault.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from agentopt.exceptions import ConfigError

__all__ = [
    "check_dataset",
    "check_models",
    "check_options",
    "model_label",
    "node_labels",
    "probe_agent",
]


def model_label(model: Any) -> str:
    """A model's display name: the string itself, else its ``model`` /
    ``model_name`` / ``name`` attribute (framework LLM objects), else ``str()``."""
    if isinstance(model, str):
        return model
    for attr in ("model", "model_name", "name"):
        v = getattr(model, attr, None)
        if isinstance(v, str) and v:
            return v
    return str(model)


def node_labels(models: Sequence[Any]) -> list[str]:
    """Labels for one node's models, made unique (``name``, ``name#2``, …) so two
    configurations of one model (say, two temperatures) stay distinct arms."""
    out: list[str] = []
    for m in models:
        base = model_label(m)
        label, k = base, 2
        while label in out:
            label, k = f"{base}#{k}", k + 1
        out.append(label)
    return out


def check_models(models: Any) -> tuple[list[str], list[list[Any]], list[list[str]]]:
    """``{node: [model, ...]}`` → (nodes, models per node, labels per node)."""
    if not isinstance(models, Mapping) or not models:
        raise ConfigError("models must be a non-empty mapping {node: [model, ...]}")
    nodes: list[str] = []
    per_node: list[list[Any]] = []
    labels: list[list[str]] = []
    for node, ms in models.items():
        if not isinstance(node, str) or not node:
            raise ConfigError(f"models: node names must be non-empty strings, not {node!r}")
        if isinstance(ms, (str, bytes)) or not isinstance(ms, Iterable):
            raise ConfigError(
                f"models[{node!r}] must be a list of models, not {type(ms).__name__} "
                f"(write [{ms!r}] for a single model)"
            )
        lst = list(ms)
        if not lst:
            raise ConfigError(f"models[{node!r}] is empty: every node needs at least one model")
        nodes.append(node)
        per_node.append(lst)
        labels.append(node_labels(lst))
    return nodes, per_node, labels


def check_dataset(dataset: Any) -> list[tuple[Any, Any]]:
    """A sequence of ``(input, expected)`` pairs, as a list of tuples."""
    if isinstance(dataset, (str, bytes, Mapping)) or not isinstance(dataset, Iterable):
        raise ConfigError(
            f"dataset must be a sequence of (input, expected) pairs, not {type(dataset).__name__}"
        )
    data = list(dataset)
    if not data:
        raise ConfigError("dataset is empty: a selection needs at least one datapoint")
    for i, item in enumerate(data):
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 2:
            raise ConfigError(f"dataset[{i}] must be an (input, expected) pair, not {item!r:.80}")
    return [(a, b) for a, b in data]


def _number(name: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise ConfigError(f"{name} must be a number, not {v!r}")
    return float(v)


def check_options(
    *,
    eval_fn: Any,
    agent: Any,
    confidence: Any,
    failure_score: Any,
    epsilon: Any,
    budget_usd: Any,
    max_evaluations: Any,
    seed: Any,
) -> None:
    """The callables and numbers of a selection."""
    if not callable(eval_fn):
        raise ConfigError(
            f"eval_fn must be callable as eval_fn(expected, actual), not {type(eval_fn).__name__}"
        )
    if not callable(agent):
        raise ConfigError(
            f"agent must be a class or factory taking {{node: model}}, not {agent!r:.80}"
        )
    if not 0.0 < _number("confidence", confidence) < 1.0:
        raise ConfigError(f"confidence must be strictly between 0 and 1, not {confidence}")
    if not 0.0 <= _number("failure_score", failure_score) <= 1.0:
        raise ConfigError(f"failure_score must be in [0, 1], not {failure_score}")
    if not 0.0 <= _number("epsilon", epsilon) < math.inf:
        raise ConfigError(f"epsilon must be a finite number ≥ 0, not {epsilon!r}")
    if budget_usd is not None and not (
        isinstance(budget_usd, (int, float))
        and not isinstance(budget_usd, bool)
        and 0.0 <= budget_usd < math.inf
    ):
        raise ConfigError(f"budget_usd must be None or a number ≥ 0, not {budget_usd!r}")
    if max_evaluations is not None and not (
        isinstance(max_evaluations, int)
        and not isinstance(max_evaluations, bool)
        and max_evaluations >= 1
    ):
        raise ConfigError(
            f"max_evaluations must be None or an integer ≥ 1, not {max_evaluations!r}"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"seed must be None or an integer, not {seed!r}")


def callable_name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__qualname__


def probe_agent(agent: Callable[[dict[str, Any]], Any], combo: dict[str, Any], label: str) -> bool:
    """Build the agent for one combination: it must build and have ``run``.
    Returns whether ``run`` is a coroutine function."""
    name = callable_name(agent)
    try:
        probe = agent(dict(combo))
    except Exception as exc:
        raise ConfigError(
            f"agent {name} could not be built for {label}: {type(exc).__name__}: {exc}"
        ) from exc
    run = getattr(probe, "run", None)
    if not callable(run):
        raise ConfigError(
            f"agent {name}({{...}}) returned a {type(probe).__name__} with no run(input) method"
        )
    return inspect.iscoroutinefunction(run)
