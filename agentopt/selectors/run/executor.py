"""Where a selection's evaluations run: in this process (the default) or on a cluster.

An executor makes the evaluator the selection loop drives. The local one is the
:class:`~agentopt.selectors.run.evaluator.LiveEvaluator` itself (worker threads for
sync agents, asyncio tasks for async ones); ``"ray"`` runs each evaluation as a
Ray task (:class:`agentopt.selectors.run.ray_executor.RayExecutor`). Either way the
strategy, the stopping rules, the budget guard, the store and the progress bar
stay in the driver: only evaluations travel.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from agentopt.exceptions import ConfigError
from agentopt.selectors.run.evaluator import LiveEvaluator

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "get_executor"]

#: executor names :func:`get_executor` knows
EXECUTORS = ("local", "ray")


@runtime_checkable
class Executor(Protocol):
    """Makes the evaluator of one selection run (its arguments: :class:`LiveEvaluator`'s)."""

    name: str

    def evaluator(self, **kwargs: Any) -> LiveEvaluator: ...


class LocalExecutor:
    """Evaluations in this process: threads for sync agents, asyncio for async ones."""

    name = "local"

    def evaluator(self, **kwargs: Any) -> LiveEvaluator:
        return LiveEvaluator(**kwargs)

    def __repr__(self) -> str:
        return "LocalExecutor()"


def get_executor(spec: str | Executor | None) -> Executor:
    """``None``/``"local"`` → :class:`LocalExecutor`; ``"ray"`` → a default
    :class:`~agentopt.selectors.run.ray_executor.RayExecutor`; an executor object as is."""
    if spec is None or spec == "local":
        return LocalExecutor()
    if spec == "ray":
        from agentopt.selectors.run.ray_executor import RayExecutor

        return RayExecutor()
    if isinstance(spec, str):
        raise ConfigError(f"unknown executor {spec!r}; known: {', '.join(EXECUTORS)}")
    if not isinstance(spec, Executor):
        raise ConfigError(
            "executor must be 'local', 'ray' or an executor object with name and "
            f"evaluator(**kwargs), not {type(spec).__name__}"
        )
    return spec
