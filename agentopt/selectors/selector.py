"""ModelSelector: find the best model combination for an agent, paying for few runs.

::

    from agentopt import ModelSelector

    class Agent:
        def __init__(self, combo):           # {"planner": "gpt-4o-mini", "solver": "gpt-4o"}
            self.combo = combo
        def run(self, question):             # sync or async
            ...

    selector = ModelSelector(
        agent=Agent,
        models={"planner": ["gpt-4o-mini", "gpt-4o"], "solver": ["gpt-4o-mini", "gpt-4o"]},
        eval_fn=lambda expected, actual: float(expected == actual),
        dataset=[("What is 2 + 2?", "4"), ...],
    )
    results = selector.select_best()
    results.print_summary()

``select_best()`` is a loop over the strategy's ``ask``/``tell`` (see
:func:`agentopt.selectors.run.loop.run_selection`); each evaluation runs the agent
inside a tracker session and is priced from that session's records. Every
method is also a class with the same constructor (``BruteForceSelector``, …).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import signal
import time
import warnings
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, ClassVar

# Loading the strategies package first makes `get_strategy("auto")` safe in a fresh
# process (auto.py and strategies/__init__.py import each other).
import agentopt.selectors.strategies  # noqa: F401
from agentopt.compat.objective import NormalisedObjectiveStrategy, check_lambdas
from agentopt.exceptions import ConfigError, EvaluationsFailedError, SelectionError
from agentopt.pricing import PriceBook
from agentopt.records import Observation
from agentopt.selectors.base import Problem, Strategy
from agentopt.selectors.certainty import assess_selection
from agentopt.selectors.objective import Objective
from agentopt.selectors.registry import get_strategy
from agentopt.selectors.results import SelectionResults
from agentopt.selectors.run.evaluator import Interrupted, LiveEvaluator, TrackerLike
from agentopt.selectors.run.executor import Executor, get_executor
from agentopt.selectors.run.failfast import FailFast, all_failed_message, flat_scores_warning
from agentopt.selectors.run.fingerprint import (
    CellKey,
    Scope,
    callable_fingerprint,
    combo_key,
    datapoint_keys,
)
from agentopt.selectors.run.guard import BudgetGuard, GuardStop
from agentopt.selectors.run.inputs import (
    check_dataset,
    check_models,
    check_options,
    model_label,
    probe_agent,
)
from agentopt.selectors.run.interrupt import (
    RunInfo,
    StopSignal,
    print_interrupted,
    sigint_presses,
)
from agentopt.selectors.run.loop import run_selection
from agentopt.selectors.run.progress import SelectionProgress, progress_enabled
from agentopt.selectors.run.store import (
    MemoryStore,
    ObservationStore,
    ResumingEvaluator,
    get_store,
)
from agentopt.selectors.state import SelectionState
from agentopt.selectors.stopping import StoppingRule, default_stopping

__all__ = [
    "AgentOptArmEliminationSelector",
    "AutoSelector",
    "BruteForceSelector",
    "LUCBSelector",
    "ModelSelector",
    "RandomSearchSelector",
    "SuccessiveEliminationSelector",
    "SuccessiveHalvingSelector",
    "TopTwoThompsonSelector",
    "model_label",
]

Method = str | Strategy | type[Strategy]


def _method_name(method: Method) -> str:
    if isinstance(method, str):
        return method
    if isinstance(method, Strategy):
        return type(method).name if type(method).name != "strategy" else type(method).__name__
    return method.name if method.name != "strategy" else method.__name__


class ModelSelector:
    """Select the best ``{node: model}`` combination for ``agent`` on ``dataset``.

    - ``agent``: a class or factory called with the combination ``{node: model}``;
      the object it returns has ``run(input)``, sync or async. A fresh agent is
      built per evaluation, inside that evaluation's tracker session.
    - ``models``: ``{node: [model, ...]}``: names, or framework LLM objects
      (labelled by their ``model``/``model_name``/``name`` attribute). The agent
      receives the objects exactly as given.
    - ``dataset``: a sequence of ``(input, expected)``.
    - ``eval_fn(expected, actual) -> float`` in [0, 1] (sync or async). A score
      outside [0, 1], NaN, or anything not a number (text such as ``"1"`` too) is
      not clipped or converted: the evaluation is recorded as a failure with that
      message. When the first few evaluations all fail, the selection stops with
      :class:`~agentopt.exceptions.EvaluationsFailedError` (see
      :mod:`agentopt.selectors.run.failfast`).
    - ``method``: a name (``auto``, ``brute_force``, ``successive_elimination``,
      ``lucb``, ``top_two_thompson``, ``successive_halving``, ``random_search``,
      ``agentopt_arm_elimination``), a Strategy subclass or a Strategy instance.
    - ``objective``: an :class:`Objective` (or a dict of its fields): weights on $
      and seconds per item, constraints, or "cheapest within ε".
    - ``lambda_cost`` / ``lambda_latency``: the published AgentOpt package's weights
      on *min–max normalised* $ and seconds per sample (see
      :mod:`agentopt.compat.objective`); they add to ``objective``.
    - ``budget_usd``: the whole selection's spend, resumed observations included,
      so a resumed run stops where an uninterrupted one would.
    - ``failure_score``: the score of a run whose agent or ``eval_fn`` raised.
    - ``tracker``: an :class:`~agentopt.tracking.LLMTracker` to record into
      (default: a private one, without cache, closed when the selection ends).
    - ``model_prices``: prices for models the default price map lacks (a mapping
      as :class:`PriceBook` takes, a price file path, or a PriceBook).
    - ``store``: a path (``.jsonl`` → JSON lines, else SQLite) or an
      ObservationStore: observations are written as they are made, keyed by
      (agent, eval_fn, combination, datapoint), and any later selection (another
      method, seed or dataset order included) reuses them instead of running the
      agent again. Without a path, the selector keeps them in memory, so a
      second ``select_best()`` pays for nothing twice.
    - ``agent_version`` / ``eval_fn_version``: a string of your own that replaces
      the code hash in the agent's / eval_fn's fingerprint (see
      :mod:`agentopt.selectors.run.fingerprint`): change it when behaviour changes in
      ways the code hash cannot see (a helper function, a prompt file).
    - ``executor``: where evaluations run: ``"local"`` (default: threads/asyncio in
      this process), ``"ray"`` (each evaluation a Ray task on the connected
      cluster, see :class:`~agentopt.selectors.run.ray_executor.RayExecutor`), or an
      executor object. The strategy, budget, store and tracker stay here.
    """

    default_method: ClassVar[str] = "auto"

    def __init__(
        self,
        *,
        agent: Callable[[dict[str, Any]], Any],
        models: Mapping[str, Sequence[Any]],
        eval_fn: Callable[[Any, Any], Any],
        dataset: Iterable[tuple[Any, Any]],
        method: Method | None = None,
        objective: Objective | dict[str, float] | None = None,
        confidence: float = 0.95,
        epsilon: float = 0.0,
        budget_usd: float | None = None,
        max_evaluations: int | None = None,
        failure_score: float = 0.0,
        seed: int | None = None,
        tracker: TrackerLike | None = None,
        model_prices: Mapping[str, Any] | str | Path | PriceBook | None = None,
        store: str | Path | ObservationStore | None = None,
        agent_version: str | None = None,
        eval_fn_version: str | None = None,
        executor: str | Executor | None = None,
        lambda_cost: float = 0.0,
        lambda_latency: float = 0.0,
    ) -> None:
        fixed = type(self).default_method
        if method is None:
            method = fixed
        elif type(self) is not ModelSelector and method != fixed:
            raise ConfigError(
                f"{type(self).__name__} always uses method {fixed!r}; "
                f"use ModelSelector(method={_method_name(method)!r}) instead"
            )
        self.agent = agent
        self.models = models
        self.eval_fn = eval_fn
        self.dataset = dataset
        self.method: Method = method
        self.objective = Objective.coerce(objective)
        self.confidence = confidence
        self.epsilon = epsilon
        self.budget_usd = budget_usd
        self.max_evaluations = max_evaluations
        self.failure_score = failure_score
        self.seed = seed
        self.tracker = tracker
        self.model_prices = model_prices
        self.store = store
        self.agent_version = agent_version
        self.eval_fn_version = eval_fn_version
        self.executor = executor
        self.lambda_cost = lambda_cost
        self.lambda_latency = lambda_latency
        self._validate()
        self.last_state: SelectionState | None = None
        self._memory = MemoryStore()  # observations kept between runs when store is None
        self.agent_calls = 0  #: agent runs started by this selector (all runs)

    # ----------------------------------------------------------------- checks
    def _validate(self) -> None:
        """Check every argument once, naming what is wrong and where."""
        self.nodes, self._node_models, self._node_labels = check_models(self.models)
        self.combos: list[dict[str, Any]] = [
            dict(zip(self.nodes, ms, strict=True)) for ms in itertools.product(*self._node_models)
        ]
        self.labels: list[dict[str, str]] = [
            dict(zip(self.nodes, ls, strict=True)) for ls in itertools.product(*self._node_labels)
        ]
        self.combo_ids = [Observation.combo_label(lab) for lab in self.labels]
        self._data = check_dataset(self.dataset)
        check_options(
            eval_fn=self.eval_fn,
            agent=self.agent,
            confidence=self.confidence,
            failure_score=self.failure_score,
            epsilon=self.epsilon,
            budget_usd=self.budget_usd,
            max_evaluations=self.max_evaluations,
            seed=self.seed,
        )
        for name in ("agent_version", "eval_fn_version"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v):
                raise ConfigError(f"{name} must be None or a non-empty string, not {v!r}")
        check_lambdas(self.lambda_cost, self.lambda_latency)
        if self.tracker is not None and not isinstance(self.tracker, TrackerLike):
            raise ConfigError(
                f"tracker must be an LLMTracker (with track() and get_records()), "
                f"not {type(self.tracker).__name__}"
            )
        if isinstance(self.method, str):
            get_strategy(self.method)  # an unknown name fails here, listing the known ones
        elif not isinstance(self.method, Strategy) and not (
            isinstance(self.method, type) and issubclass(self.method, Strategy)
        ):
            raise ConfigError(
                "method must be a name, a Strategy subclass or a Strategy instance, "
                f"not {type(self.method).__name__}"
            )
        if self.model_prices is None or isinstance(self.model_prices, PriceBook):
            self._price_book: PriceBook | None = self.model_prices
        else:
            self._price_book = PriceBook(self.model_prices)
        self._agent_is_async = probe_agent(self.agent, self.combos[0], self.combo_ids[0])
        self._executor = get_executor(self.executor)

    # ----------------------------------------------------------------- running
    @property
    def n_arms(self) -> int:
        return len(self.combos)

    @property
    def n_datapoints(self) -> int:
        return len(self._data)

    def fingerprint(self) -> Scope:
        """The agent's and eval_fn's fingerprints: with a combination and a datapoint,
        the key under which a store keeps an observation (see
        :mod:`agentopt.selectors.run.fingerprint`)."""
        return Scope(
            agent=callable_fingerprint(self.agent, self.agent_version),
            eval_fn=callable_fingerprint(self.eval_fn, self.eval_fn_version),
        )

    def select_best(
        self, parallel: bool = True, max_concurrent: int = 8, progress: bool = True
    ) -> SelectionResults:
        """Run the selection and return its results.

        Works in scripts and inside Jupyter: when an event loop is already running
        in this thread, the selection runs on its own loop in a worker thread.
        Ctrl-C stops it cleanly (see :mod:`agentopt.selectors.run.interrupt`): what
        finished is kept, one line says so, and ``KeyboardInterrupt`` is raised.
        """
        try:
            asyncio.get_running_loop()
            in_loop = True
        except RuntimeError:
            in_loop = False
        stop, info = StopSignal(), RunInfo()
        coro = self._select(parallel, max_concurrent, progress, stop=stop, info=info)
        failure: BaseException | None = None
        result: SelectionResults | None = None
        with sigint_presses(stop):
            if not in_loop:
                try:
                    result = asyncio.run(coro)
                except Interrupted as exc:
                    failure = exc.original
                except asyncio.CancelledError:
                    if not stop.pressed:
                        raise
                    failure = KeyboardInterrupt()
            else:
                # This thread's loop is blocked while we wait (a sync call in async
                # code): the selection gets its own loop in a worker thread.
                ctx = contextvars.copy_context()
                pool = ThreadPoolExecutor(1, thread_name_prefix="agentopt-select")
                try:
                    fut = pool.submit(ctx.run, _run_without_sigint, coro)
                    try:
                        result = _wait_waking(fut)
                    except Interrupted as exc:
                        failure = exc.original
                    except asyncio.CancelledError:
                        if not stop.pressed:
                            raise
                        failure = KeyboardInterrupt()
                finally:
                    pool.shutdown(wait=False)
        if result is not None:
            if not stop.pressed:
                return result
            failure = KeyboardInterrupt()  # Ctrl-C as the last batch ended: still a stop
        # raised here, outside any except block, so no unrelated context is printed
        assert failure is not None
        if isinstance(failure, KeyboardInterrupt):
            print_interrupted(info)
        raise failure

    async def aselect_best(
        self, parallel: bool = True, max_concurrent: int = 8, progress: bool = True
    ) -> SelectionResults:
        """The async form of :meth:`select_best`."""
        info = RunInfo()
        failure: BaseException | None = None
        try:
            return await self._select(parallel, max_concurrent, progress, info=info)
        except Interrupted as exc:
            failure = exc.original
        assert failure is not None
        if isinstance(failure, KeyboardInterrupt):
            print_interrupted(info)
        raise failure

    async def _select(
        self,
        parallel: bool,
        max_concurrent: int,
        progress: bool,
        *,
        stop: StopSignal | None = None,
        info: RunInfo | None = None,
    ) -> SelectionResults:
        if not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ConfigError(f"max_concurrent must be an integer ≥ 1, not {max_concurrent!r}")
        if stop is not None:
            stop.attach(asyncio.get_running_loop(), asyncio.current_task())
        info = info if info is not None else RunInfo()
        method_name = _method_name(self.method)
        started = time.perf_counter()
        problem = Problem.create(
            self.n_arms,
            self.n_datapoints,
            seed=self.seed,
            objective=self.objective,
            confidence=self.confidence,
            epsilon=self.epsilon,
            budget_usd=self.budget_usd,
            max_evaluations=self.max_evaluations,
            arms=self.labels,
        )
        if isinstance(self.method, Strategy):
            strategy = get_strategy(self.method)
        else:
            strategy = get_strategy(
                self.method, confidence=self.confidence, epsilon=self.epsilon, seed=self.seed
            )
        if self.lambda_cost or self.lambda_latency:
            strategy = NormalisedObjectiveStrategy(
                strategy, lambda_cost=self.lambda_cost, lambda_latency=self.lambda_latency
            )
        stopping: StoppingRule = default_stopping(
            epsilon=self.epsilon, budget_usd=self.budget_usd, max_evaluations=self.max_evaluations
        )
        guard = None
        if self.budget_usd is not None:
            guard = BudgetGuard(self.budget_usd, self.n_arms)
            stopping = GuardStop(guard) | stopping  # first: its reason is the real one
        scope = self.fingerprint()
        combo_keys = [combo_key(c, lab) for c, lab in zip(self.combos, self.labels, strict=True)]
        dp_keys = datapoint_keys(self._data)
        store = get_store(self.store) if self.store is not None else self._memory
        info.store_path = store.path
        own_tracker = self.tracker is None
        tracker: TrackerLike | None = self.tracker
        live: LiveEvaluator | None = None
        total = self.n_arms * self.n_datapoints
        if self.max_evaluations is not None:
            total = min(total, self.max_evaluations)
        bar = SelectionProgress(
            total=total,
            n_arms=self.n_arms,
            enabled=progress_enabled(progress),
            description=f"Selecting ({method_name})",
        )
        reused: set[tuple[int, int]] = set()
        fail_fast = FailFast(
            {n: len(ms) for n, ms in zip(self.nodes, self._node_labels, strict=True)}
        )

        def on_result(arm: int, dp: int, obs: Observation) -> None:
            # written through first: an interruption or an error loses nothing
            store.append(CellKey(*scope, combo_keys[arm], dp_keys[dp]), obs)
            info.kept += 1
            bar.observe(obs)  # (the evaluator settles the guard's reservation itself)
            fail_fast.observe(obs)  # raises once the first few have all failed

        def on_reused(arm: int, dp: int, obs: Observation) -> None:
            reused.add((arm, dp))
            info.kept += 1
            if guard is not None:
                guard.observe(arm, obs)
            bar.observe(obs, reused=True)

        def on_batch(state: SelectionState) -> None:
            bar.alive(len(state.alive))
            if stop is not None and stop.pressed:
                raise Interrupted(KeyboardInterrupt())

        try:
            if tracker is None:
                tracker = self._make_tracker()
            live = self._executor.evaluator(
                factory=self.agent,
                combos=self.combos,
                labels=self.labels,
                dataset=self._data,
                eval_fn=self.eval_fn,
                tracker=tracker,
                failure_score=self.failure_score,
                price_book=self._price_book,
                max_concurrent=max_concurrent if parallel else 1,
                agent_is_async=self._agent_is_async,
                on_result=on_result,
                guard=guard,
                stop=stop.event if stop is not None else None,
            )
            evaluator = ResumingEvaluator(
                live,
                stored=store.load(scope),
                combo_keys=combo_keys,
                datapoint_keys=dp_keys,
                labels=self.labels,
                on_reused=on_reused,
            )
            with bar:
                state = await run_selection(
                    strategy, evaluator, problem, stopping, on_batch=on_batch
                )
        finally:
            if live is not None:
                self.agent_calls += live.agent_calls
                live.close()
            if store is not self._memory and self.store is not store:
                store.close()
            if own_tracker and tracker is not None:
                close = getattr(tracker, "close", None)
                if close is not None:
                    close()
        self.last_state = state
        if state.observations and all(o.failed for o in state.observations):
            first = state.observations[0]
            raise EvaluationsFailedError(
                all_failed_message(len(state.observations), first, stopped_early=False),
                first_error=str(first.error),
                observations=len(state.observations),
            )
        if state.best is None:  # pragma: no cover - refresh_view always sets it
            raise SelectionError("the selection ended without a pick")
        notes = []
        certainty = assess_selection(
            strategy,
            state,
            confidence=self.confidence,
            epsilon=self.epsilon,
            value_range=_value_range(strategy.stats.values, self.objective),
            seed=self.seed or 0,
        )
        if not certainty.supported:
            msg = certainty.describe()
            warnings.warn(msg, UserWarning, stacklevel=3)
            notes.append(msg)
        flat = flat_scores_warning(state.observations)
        if flat is not None:
            warnings.warn(flat, UserWarning, stacklevel=3)
            notes.append(flat)
        arm_of = {cid: i for i, cid in enumerate(self.combo_ids)}
        observations = [
            (arm_of[Observation.combo_label(o.combo)], int(o.datapoint), o)
            for o in state.observations
        ]
        results = SelectionResults.from_parts(
            method=method_name,
            labels=self.labels,
            combos=self.combos,
            observations=observations,
            best_arm=state.best,
            intervals=(state.lower, state.upper) if state.lower is not None else None,  # type: ignore[arg-type]
            eliminated=state.eliminated,
            n_datapoints=self.n_datapoints,
            # the strategy's final objective: with lambdas, the full-run normaliser's weights
            objective=strategy.problem.objective,
            confidence=self.confidence,
            epsilon=self.epsilon,
            seed=self.seed,
            stop_reason=state.stop_reason,
            rounds=state.rounds,
            reused_keys=frozenset(reused),
            warnings=tuple(notes),
            certainty=certainty,
        )
        results.lambda_cost = self.lambda_cost
        results.lambda_latency = self.lambda_latency
        results.selection_wall_time_seconds = time.perf_counter() - started
        return results

    def _make_tracker(self) -> TrackerLike:
        from agentopt.tracking.tracker import LLMTracker

        tracker = LLMTracker(cache=False, cache_dir=None, price_book=self._price_book)
        tracker.start()
        return tracker

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(method={_method_name(self.method)!r}, "
            f"arms={self.n_arms}, datapoints={self.n_datapoints})"
        )


def _value_range(values: Any, objective: Objective) -> tuple[float, float]:
    """The range of the objective values, for the posterior's pseudo-observations."""
    if objective.is_score_only:
        return 0.0, 1.0
    import numpy as np

    seen = values[~np.isnan(values)]
    return (float(seen.min()), float(seen.max())) if seen.size else (0.0, 1.0)


class AutoSelector(ModelSelector):
    """:class:`ModelSelector` with ``method="auto"``."""

    default_method = "auto"


class BruteForceSelector(ModelSelector):
    """Every combination on every datapoint: the exact answer, at full price."""

    default_method = "brute_force"


class SuccessiveEliminationSelector(ModelSelector):
    """Rounds of paired evaluations; arms confidently worse than another are dropped."""

    default_method = "successive_elimination"


class LUCBSelector(ModelSelector):
    """LUCB: sample the empirical best and its strongest challenger until separated."""

    default_method = "lucb"


class TopTwoThompsonSelector(ModelSelector):
    """Top-two Thompson sampling (best-arm identification)."""

    default_method = "top_two_thompson"


class SuccessiveHalvingSelector(ModelSelector):
    """Successive halving: a fixed budget split over rounds, keeping the better half."""

    default_method = "successive_halving"


class RandomSearchSelector(ModelSelector):
    """A random subset of combinations, each evaluated in full (a baseline)."""

    default_method = "random_search"


class AgentOptArmEliminationSelector(ModelSelector):
    """The published anchor's arm-elimination rule, as a comparison baseline."""

    default_method = "agentopt_arm_elimination"


def _wait_waking(fut: Future[SelectionResults]) -> SelectionResults:
    """``fut.result()``. Where the worker thread blocks SIGINT (POSIX: see
    :func:`_run_without_sigint`), Ctrl-C reaches this thread and interrupts a plain
    wait. Elsewhere it wakes every 50 ms, so that a SIGINT delivered to the worker
    runs its Python handler (which needs this main thread to run bytecode)."""
    if hasattr(signal, "pthread_sigmask"):
        return fut.result()
    while True:
        try:
            return fut.result(timeout=0.05)
        except FutureTimeout:
            continue


def _run_without_sigint(coro: Coroutine[Any, Any, SelectionResults]) -> SelectionResults:
    """``asyncio.run(coro)`` in a worker thread that never receives SIGINT (nor do
    the threads it starts): the kernel then delivers Ctrl-C to the main thread,
    whose handler stops the selection at once."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    return asyncio.run(coro)
