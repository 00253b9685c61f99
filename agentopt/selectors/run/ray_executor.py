"""Selections on Ray: each evaluation is a Ray task; the strategy stays in the driver.

::

    import ray
    from agentopt import ModelSelector, RayExecutor

    ray.init(address="auto")          # your cluster; without it, a local Ray is started
    selector = ModelSelector(agent=Agent, models=..., eval_fn=..., dataset=...,
                             executor=RayExecutor(num_cpus=0.25))   # or executor="ray"
    results = selector.select_best(max_concurrent=64)

How it works. The driver runs the usual ask/tell loop; its evaluator (a
:class:`~agentopt.selectors.run.evaluator.LiveEvaluator` whose ``evaluate_one`` is a
Ray task) admits each evaluation through the same semaphore (``max_concurrent``,
cluster-wide, since only the driver submits) and the same budget guard
(reserved before dispatch) as a local run. The agent class, ``eval_fn``, the
combinations, the dataset and the prices are put in the object store once; a
worker deserialises them once per process. In the worker the evaluation runs
inside a tracker session of a worker-local ``LLMTracker`` and is priced and
scored there; its observation comes back with the call records, which the
driver appends to its own tracker, so ``tracker.get_cost()``, the store, the
budget and the progress bar see exactly what a local run would.

Faults. A task whose worker dies (killed, out of memory, node lost) is retried
by Ray up to ``max_retries`` times; after that, or when the task cannot run
at all, the evaluation is recorded as a failure (``failure_score``, the Ray
error, cost unknown), never dropped and never counted twice. The calls an
attempt made before its worker died are lost with the worker: they are neither
recorded nor priced. Killing the driver loses only the evaluations in flight;
re-running with the same ``store=`` reuses every finished one.

The agent class and ``eval_fn`` travel by cloudpickle: those defined in
``__main__`` travel by value, others must be importable on the workers (Ray's
``runtime_env``, or ``cloudpickle.register_pickle_by_value(module)``). A router
on the driver's tracker learns from the scores (feedback is sent from the
driver) but does not route the workers' calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentopt.exceptions import ConfigError
from agentopt.pricing import PriceBook
from agentopt.records import CallRecord, Observation
from agentopt.selectors.run.evaluator import LiveEvaluator

__all__ = ["RayEvaluator", "RayExecutor"]


def _ray() -> Any:
    try:
        import ray
    except ImportError:  # pragma: no cover - the extra is installed in the test env
        raise ConfigError(
            "executor='ray' needs Ray: pip install 'agentopt[ray]' (or pip install ray)"
        ) from None
    return ray


class RayExecutor:
    """Runs each evaluation as a Ray task on the connected cluster.

    - ``address``: passed to ``ray.init`` when Ray is not initialised yet (None: a
      local Ray on this machine); an initialised Ray is used as it is.
    - ``num_cpus``: CPUs each task reserves (fractions allowed: an agent that waits
      on LLM calls needs little CPU, so ``0.25`` runs four per core).
    - ``max_retries``: how often Ray re-runs a task whose worker died.
    - ``init_kwargs``: more ``ray.init`` arguments; ``remote_options``: more task
      options (``resources``, ``runtime_env``, ``scheduling_strategy``…).
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: float = 1.0,
        max_retries: int = 3,
        init_kwargs: dict[str, Any] | None = None,
        remote_options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(num_cpus, int | float) or num_cpus < 0:
            raise ConfigError(f"RayExecutor: num_cpus must be a number ≥ 0, not {num_cpus!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(
                f"RayExecutor: max_retries must be an integer ≥ 0, not {max_retries!r}"
            )
        self.address = address
        self.num_cpus = float(num_cpus)
        self.max_retries = max_retries
        self.init_kwargs = dict(init_kwargs or {})
        self.remote_options = dict(remote_options or {})

    def connect(self) -> Any:
        """The ``ray`` module, initialised (connecting to ``address`` if needed)."""
        ray = _ray()
        if not ray.is_initialized():
            kwargs = {"log_to_driver": False, **self.init_kwargs}
            ray.init(address=self.address, **kwargs)
        return ray

    def evaluator(self, **kwargs: Any) -> RayEvaluator:
        return RayEvaluator(executor=self, **kwargs)

    def __repr__(self) -> str:
        return (
            f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus:g}, "
            f"max_retries={self.max_retries})"
        )


@dataclass(frozen=True)
class _Payload:
    """What every task needs, shipped once through the object store."""

    factory: Any
    combos: list[dict[str, Any]]
    labels: list[dict[str, str]]
    dataset: Sequence[tuple[Any, Any]]
    eval_fn: Any
    failure_score: float
    price_book: PriceBook | None
    agent_is_async: bool | None


class RayEvaluator(LiveEvaluator):
    """A :class:`LiveEvaluator` whose evaluations run as Ray tasks (see the module doc).

    Batching, ``max_concurrent``, the budget guard and ``on_result`` are the
    local evaluator's; only :meth:`evaluate_one` differs."""

    def __init__(self, *, executor: RayExecutor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.executor = executor
        self.failed_tasks = 0  #: evaluations recorded as failures because their task failed
        self._box: list[Any] | None = None
        self._task: Any = None
        self._lock = threading.Lock()

    def _ship(self) -> None:
        with self._lock:
            if self._box is not None:
                return
            ray = self.executor.connect()
            payload = _Payload(
                self.factory,
                self.combos,
                self.labels,
                list(self.dataset),
                self.eval_fn,
                self.failure_score,
                self.price_book,
                self.agent_is_async,
            )
            # a ref inside a list is not resolved by Ray: the worker fetches it once
            self._box = [ray.put(payload)]
            options = {
                "num_cpus": self.executor.num_cpus,
                "max_retries": self.executor.max_retries,
                "retry_exceptions": False,
                **self.executor.remote_options,
            }
            self._task = ray.remote(_evaluate_remote).options(**options)

    async def evaluate_one(self, arm: int, dp: int) -> Observation:
        """Run one evaluation on the cluster; a task that fails is a failed observation."""
        self._ship()
        ray = self.executor.connect()
        self.agent_calls += 1
        ref = self._task.remote(self._box, arm, dp)
        try:
            obs, records = await ref
        except asyncio.CancelledError:
            ray.cancel(ref)
            raise
        except Exception as exc:  # worker died past its retries, task cancelled, node lost
            self.failed_tasks += 1
            obs, records = self._task_failure(arm, dp, exc), []
        self._ingest(records)
        self._feedback(str(dp), self.combo_ids[arm], obs.score)
        return obs

    def _task_failure(self, arm: int, dp: int, exc: BaseException) -> Observation:
        cause = getattr(exc, "cause", None)  # RayTaskError: what the task itself raised
        if isinstance(cause, BaseException):
            exc = cause
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        if "No module named" in first:
            first += (
                " (the workers import the agent and eval_fn: define them in __main__, "
                "or ship their module with Ray's runtime_env)"
            )
        return Observation(
            combo=self.labels[arm],
            datapoint=dp,
            score=self.failure_score,
            cost_usd=None,  # what the lost attempts spent could not be reported
            latency_seconds=None,
            error=f"ray task failed ({type(exc).__name__}): {first}",
        )

    def _ingest(self, records: list[CallRecord]) -> None:
        """Append the worker's records to the driver's tracker."""
        if not records:
            return
        store = getattr(self.tracker, "store", None)
        append = getattr(store, "append", None)
        if append is None:
            raise ConfigError(
                "executor='ray' needs a tracker with a record store (an LLMTracker) to "
                "receive the workers' call records"
            )
        for rec in records:
            append(rec)

    def close(self) -> None:
        self._box = None
        super().close()


# ---------------------------------------------------------------------------- worker side

_worker_lock = threading.Lock()
_worker_tracker: tuple[PriceBook | None, Any] | None = None  # (its prices, the tracker)
_worker_evaluators: dict[str, LiveEvaluator] = {}


def _worker_evaluator(ref: Any) -> LiveEvaluator:
    """The evaluator of the payload ``ref`` in this worker process, built once."""
    global _worker_tracker
    key = ref.hex()
    with _worker_lock:
        ev = _worker_evaluators.get(key)
        if ev is not None:
            return ev
        import ray

        from agentopt.tracking.tracker import LLMTracker

        payload: _Payload = ray.get(ref)
        prices = payload.price_book
        if _worker_tracker is None or _worker_tracker[0] is not prices:
            if _worker_tracker is not None:  # another selection's prices: a new tracker
                for old in _worker_evaluators.values():
                    old.close()
                _worker_evaluators.clear()
                _worker_tracker[1].close()
            tracker = LLMTracker(cache=False, cache_dir=None, price_book=prices).start()
            _worker_tracker = (prices, tracker)
        ev = LiveEvaluator(
            factory=payload.factory,
            combos=payload.combos,
            labels=payload.labels,
            dataset=payload.dataset,
            eval_fn=payload.eval_fn,
            tracker=_worker_tracker[1],
            failure_score=payload.failure_score,
            price_book=payload.price_book,
            max_concurrent=1,
            agent_is_async=payload.agent_is_async,
        )
        if len(_worker_evaluators) >= 8:  # payloads of finished selections
            _worker_evaluators.pop(next(iter(_worker_evaluators))).close()
        _worker_evaluators[key] = ev
        return ev


def _evaluate_remote(box: list[Any], arm: int, dp: int) -> tuple[Observation, list[CallRecord]]:
    """The Ray task: one evaluation in this worker, with its call records."""
    ev = _worker_evaluator(box[0])
    try:
        return asyncio.run(ev.run_one(arm, dp))
    finally:
        ev.tracker.clear()  # type: ignore[attr-defined]  # the driver keeps the records
