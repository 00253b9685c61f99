"""The live evaluator: run the user's agent on one datapoint and score it.

Each evaluation of (combination, datapoint) runs inside its own tracker
session (``data_id`` = the datapoint's index, ``combo_id`` = the combination's
label) and is priced from that session's records only, so no call is counted
twice. A failure of the agent or of ``eval_fn`` is an observation too: it
scores ``failure_score`` and carries the error; it is never dropped.

Sync agents run in worker threads, in a copy of the caller's context (so an
enclosing tracker session carries over), and the evaluation's own session is
opened inside the thread; async agents run as asyncio tasks.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from agentopt.exceptions import EvaluationError
from agentopt.pricing import PriceBook, default_price_book
from agentopt.records import PARSE_FAILED, CallRecord, Observation
from agentopt.selectors.run.guard import BudgetGuard
from agentopt.selectors.run.interrupt import block_sigint_in_this_thread
from agentopt.tracking.routing import NO_ROUTING

_log = logging.getLogger("agentopt.selectors")

__all__ = [
    "EVAL_FN_ERROR_PREFIX",
    "EvalOutcome",
    "Interrupted",
    "LiveEvaluator",
    "TrackerLike",
    "check_score",
    "observation_from_records",
]

#: How every error of ``eval_fn`` (raised, or a return value that is not a score) begins.
EVAL_FN_ERROR_PREFIX = "eval_fn "

#: Called as each evaluation completes: (arm, datapoint index, observation).
ResultHook = Callable[[int, int, Observation], None]


@runtime_checkable
class TrackerLike(Protocol):
    """What the live evaluator needs from a tracker (``agentopt.tracking.LLMTracker``)."""

    def track(self, *, data_id: str | None = None, combo_id: str | None = None) -> Any: ...

    def get_records(
        self, *, data_id: str | None = None, combo_id: str | None = None
    ) -> Sequence[CallRecord]: ...


def check_score(value: object) -> float:
    """``eval_fn``'s return value as a float in [0, 1], or an :class:`EvaluationError`.

    Out-of-range scores are not clipped: a 0-100 scale or a NaN is a bug in
    ``eval_fn``, and clipping would hide it. The evaluation is recorded as a
    failure carrying this message.
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (str, bytes)):  # "1" is text (the answer itself?), not a score
        raise EvaluationError(
            f"eval_fn returned {value!r} ({type(value).__name__}), not a number in [0, 1]"
        )
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise EvaluationError(
            f"eval_fn returned {value!r} ({type(value).__name__}), not a number in [0, 1]"
        ) from None
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise EvaluationError(f"eval_fn returned {score!r}; scores must be in [0, 1]")
    return score


class Interrupted(Exception):
    """A KeyboardInterrupt/SystemExit raised by the agent or ``eval_fn``, carried out of
    the event loop as an ordinary exception (asyncio handles a bare KeyboardInterrupt
    in a task badly); the selector re-raises ``original`` once the loop is closed."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


def _error_text(where: str, exc: BaseException) -> str:
    msg = str(exc)
    return f"{where} raised {type(exc).__name__}" + (f": {msg}" if msg else "")


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    """Cost, latency and tokens of one evaluation, taken from its call records."""

    cost_usd: float | None
    latency_seconds: float
    input_tokens: int
    output_tokens: int
    n_calls: int
    #: ``{model: [input tokens, output tokens]}`` (the model that answered)
    tokens_by_model: dict[str, list[int]] | None = None


def _unrouted(tracker: Any) -> Callable[..., Any]:
    """``tracker.track`` with routing pinned off when the tracker routes: the
    combination under evaluation is what runs, even if the tracker has a router
    (which still gets the evaluations' feedback, with the models that ran)."""
    try:
        accepts = "router" in inspect.signature(tracker.track).parameters
    except (TypeError, ValueError):
        accepts = False
    return functools.partial(tracker.track, router=NO_ROUTING) if accepts else tracker.track


def observation_from_records(
    records: Sequence[CallRecord],
    *,
    price_book: PriceBook | None,
    wall_seconds: float,
) -> EvalOutcome:
    """Sum one session's records.

    Cost: the record's own ``cost_usd``; calls it could not price (None), and
    cache hits (recorded at $0), are priced from their tokens with
    ``price_book`` so a combination's cost per item does not depend on the
    cache. With user prices (``price_book`` given), every call is priced from
    the book, where user prices win. One unpriced call makes the total None:
    unpriced is never $0.
    Latency: the sum of the calls' latencies (provider time, unaffected by how
    many evaluations run at once); ``wall_seconds`` when there was no call.
    """
    if not records:
        return EvalOutcome(0.0, wall_seconds, 0, 0, 0)
    total: float | None = 0.0
    latency = 0.0
    tin = tout = 0
    by_model: dict[str, list[int]] = {}
    fallback = price_book or default_price_book()
    for r in records:
        tin += r.prompt_tokens
        tout += r.completion_tokens
        used = by_model.setdefault(str(r.model or r.requested_model), [0, 0])
        used[0] += r.prompt_tokens
        used[1] += r.completion_tokens
        latency += r.latency_seconds or 0.0
        if r.prompt_tokens == 0 and r.completion_tokens == 0 and not r.ok and r.usage_known:
            continue  # an error that consumed nothing costs nothing
        if not r.usage_known and not r.cached:
            total = None  # the provider did not say what it cost: unknown, never $0
            continue
        cost = None if (price_book is not None or r.cached) else r.cost_usd
        if cost is None:
            model = r.model if r.model and r.model != PARSE_FAILED else r.requested_model
            cost = fallback.cost_usd(
                model,
                r.prompt_tokens,
                r.completion_tokens,
                cached_tokens=r.cached_tokens,
                reasoning_tokens=r.reasoning_tokens,
            )
        if cost is None or total is None:
            total = None
        else:
            total += cost
    return EvalOutcome(total, latency, tin, tout, len(records), by_model)


class LiveEvaluator:
    """Evaluates (arm, datapoint) pairs by running the agent for real.

    ``factory(combo)`` builds a fresh agent per evaluation (inside the tracker
    session, so clients it creates are tracked too); ``combos[arm]`` is the
    ``{node: model}`` handed to it, ``labels[arm]`` the ``{node: label}`` the
    observation stores. ``on_result`` is called as each evaluation completes,
    which is how a store keeps every observation of an interrupted batch;
    ``guard`` (a :class:`BudgetGuard`) may refuse to start an evaluation, and so
    does ``stop`` once set (Ctrl-C). An exception from ``on_result`` (the store
    failed, every evaluation so far failed) halts the batch the same way: nothing
    new starts, the running evaluations finish and are handed to ``on_result``,
    then the first such exception is raised.
    """

    def __init__(
        self,
        *,
        factory: Callable[[dict[str, Any]], Any],
        combos: Sequence[Mapping[str, Any]],
        labels: Sequence[Mapping[str, str]],
        dataset: Sequence[tuple[Any, Any]],
        eval_fn: Callable[[Any, Any], Any],
        tracker: TrackerLike,
        failure_score: float = 0.0,
        price_book: PriceBook | None = None,
        max_concurrent: int = 8,
        agent_is_async: bool | None = None,
        on_result: ResultHook | None = None,
        guard: BudgetGuard | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.factory = factory
        self.combos = [dict(c) for c in combos]
        self.labels = [dict(lab) for lab in labels]
        self.combo_ids = [Observation.combo_label(lab) for lab in self.labels]
        self.dataset = dataset
        self.eval_fn = eval_fn
        self.tracker = tracker
        self._track = _unrouted(tracker)
        self.failure_score = float(failure_score)
        self.price_book = price_book
        self.max_concurrent = max(1, int(max_concurrent))
        self.agent_is_async = agent_is_async
        self.on_result = on_result
        self.guard = guard
        self.stop = stop
        self.eval_fn_is_async = inspect.iscoroutinefunction(eval_fn) or (
            inspect.iscoroutinefunction(getattr(eval_fn, "__call__", None))  # noqa: B004
        )
        self.agent_calls = 0  #: agent runs started (resume tests count these)
        self._executor: ThreadPoolExecutor | None = None

    # ----------------------------------------------------------------- batch
    async def evaluate(self, pairs: Sequence[tuple[int, int]]) -> list[Observation | None]:
        """Evaluate a batch, at most ``max_concurrent`` at once, results in input order.
        A pair the budget guard refuses to start yields None (no observation)."""
        if not pairs:
            return []
        sem = asyncio.Semaphore(self.max_concurrent)
        out: list[Observation | None] = [None] * len(pairs)
        guard = self.guard

        halt: list[Exception] = []

        async def one(i: int, arm: int, dp: int) -> None:
            async with sem:
                if halt or (self.stop is not None and self.stop.is_set()):
                    return
                held = await guard.reserve(arm) if guard is not None else None
                if guard is not None and held is None:
                    return
                try:
                    obs = await self.evaluate_one(arm, dp)
                except BaseException:
                    if guard is not None and held is not None:
                        guard.cancel(held)
                    raise
                if guard is not None and held is not None:
                    guard.settle(held, obs)  # the real cost replaces the reservation
            out[i] = obs
            if self.on_result is not None:
                try:
                    self.on_result(arm, dp, obs)
                except Exception as exc:  # start nothing more; let the running ones land
                    halt.append(exc)

        tasks = [asyncio.ensure_future(one(i, a, d)) for i, (a, d) in enumerate(pairs)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        if halt:
            raise halt[0]
        return out

    def close(self) -> None:
        """Release the worker threads (running ones finish in the background)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.max_concurrent,
                thread_name_prefix="agentopt-eval",
                initializer=block_sigint_in_this_thread,  # Ctrl-C goes to the main thread
            )
        return self._executor

    # ----------------------------------------------------------------- one
    async def evaluate_one(self, arm: int, dp: int) -> Observation:
        """Run, price and score one (arm, datapoint); never raises an ``Exception``."""
        obs, _ = await self.run_one(arm, dp)
        self._feedback(str(dp), self.combo_ids[arm], obs.score)
        return obs

    async def run_one(self, arm: int, dp: int) -> tuple[Observation, list[CallRecord]]:
        """:meth:`evaluate_one` without the router feedback, with the evaluation's call
        records (what a remote executor sends back to the driver)."""
        if self.agent_is_async is None:
            self.agent_is_async = self._detect_async(arm)
        data_id, combo_id = str(dp), self.combo_ids[arm]
        inp, expected = self.dataset[dp]
        self.agent_calls += 1
        loop = asyncio.get_running_loop()
        score: float | None = None
        if self.agent_is_async:
            actual, error, records, wall = await self._run_async(arm, inp, data_id, combo_id)
        else:
            # the caller's context (an enclosing tracker session, say) goes along; a
            # sync eval_fn is scored in the same thread hop, after the session closed
            ctx = contextvars.copy_context()
            actual, error, records, wall, score = await loop.run_in_executor(
                self._pool(), ctx.run, self._run_sync, arm, inp, expected, data_id, combo_id
            )
        outcome = observation_from_records(records, price_book=self.price_book, wall_seconds=wall)
        if error is None and score is None:
            try:
                if self.eval_fn_is_async:
                    raw = await self.eval_fn(expected, actual)
                else:
                    ctx = contextvars.copy_context()
                    raw = await loop.run_in_executor(
                        self._pool(), ctx.run, self.eval_fn, expected, actual
                    )
                if inspect.isawaitable(raw):
                    raw = await raw
                score = check_score(raw)
            except EvaluationError as exc:
                error = str(exc)
            except Exception as exc:
                error = _error_text("eval_fn", exc)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                raise Interrupted(exc) from exc
        obs = Observation(
            combo=self.labels[arm],
            datapoint=dp,
            score=score if error is None and score is not None else self.failure_score,
            cost_usd=outcome.cost_usd,
            latency_seconds=outcome.latency_seconds,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            tokens_by_model=outcome.tokens_by_model,
            error=error,
        )
        return obs, records

    def _detect_async(self, arm: int) -> bool:
        probe = self.factory(self.combos[arm])
        run = getattr(probe, "run", None)
        return inspect.iscoroutinefunction(run)

    def _seen(self, data_id: str, combo_id: str) -> set[str]:
        """Call ids already recorded for this cell (an earlier run with this tracker)."""
        return {r.call_id for r in self.tracker.get_records(data_id=data_id, combo_id=combo_id)}

    def _records(self, seen: set[str], data_id: str, combo_id: str) -> list[CallRecord]:
        """This evaluation's calls: the cell's records minus those seen before it ran.
        Sessions the agent nests inside ours carry the same ids, so they count too."""
        records = self.tracker.get_records(data_id=data_id, combo_id=combo_id)
        return [r for r in records if r.call_id not in seen]

    def _run_sync(
        self, arm: int, inp: Any, expected: Any, data_id: str, combo_id: str
    ) -> tuple[Any, str | None, list[CallRecord], float, float | None]:
        """Run a sync agent in its session; then score it here too when ``eval_fn`` is
        sync (None: score in the loop)."""
        actual: Any = None
        error: str | None = None
        seen = self._seen(data_id, combo_id)
        t0 = time.perf_counter()
        with self._track(data_id=data_id, combo_id=combo_id):
            try:
                agent = self.factory(dict(self.combos[arm]))
                actual = agent.run(inp)
                if inspect.isawaitable(actual):
                    actual = asyncio.run(_await(actual))
            except Exception as exc:
                error = _error_text("agent", exc)
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop the selection
                raise Interrupted(exc) from exc
        wall = time.perf_counter() - t0
        records = self._records(seen, data_id, combo_id)
        score: float | None = None
        if error is None and not self.eval_fn_is_async:
            try:
                raw = self.eval_fn(expected, actual)
                if inspect.isawaitable(raw):
                    raw = asyncio.run(_await(raw))
                score = check_score(raw)
            except EvaluationError as exc:
                error = str(exc)
            except Exception as exc:
                error = _error_text("eval_fn", exc)
            except BaseException as exc:
                raise Interrupted(exc) from exc
        return actual, error, records, wall, score

    async def _run_async(
        self, arm: int, inp: Any, data_id: str, combo_id: str
    ) -> tuple[Any, str | None, list[CallRecord], float]:
        actual: Any = None
        error: str | None = None
        seen = self._seen(data_id, combo_id)
        t0 = time.perf_counter()
        with self._track(data_id=data_id, combo_id=combo_id):
            try:
                agent = self.factory(dict(self.combos[arm]))
                actual = agent.run(inp)
                if inspect.isawaitable(actual):
                    actual = await actual
            except Exception as exc:
                error = _error_text("agent", exc)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop the selection
                raise Interrupted(exc) from exc
        wall = time.perf_counter() - t0
        return actual, error, self._records(seen, data_id, combo_id), wall

    def _feedback(self, data_id: str, combo_id: str, score: float) -> None:
        """Hand the score to the tracker's router, if it has one (a failure to do so
        must not lose the observation)."""
        feedback = getattr(self.tracker, "feedback", None)
        if feedback is None:
            return
        try:
            feedback(data_id=data_id, score=score, combo_id=combo_id)
        except Exception as exc:  # the observation is kept; the router misses one reward
            _log.warning(
                "router feedback failed for data_id=%s, combo=%s: %r", data_id, combo_id, exc
            )


async def _await(aw: Any) -> Any:
    return await aw
