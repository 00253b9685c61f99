"""The selection core's contracts: Problem, Strategy (ask/tell), Evaluator.

A :class:`Strategy` holds no I/O. It is told the :class:`Problem` once
(``start``), then repeatedly asked for a batch of ``(arm, datapoint)`` pairs and
told their outcomes. Live and replay evaluators are indistinguishable to it.
The loop that drives both is :func:`agentopt.selectors.run.loop.run_selection`
(async, any :class:`Evaluator`) and :func:`agentopt.selectors.replay.run_replay`
(sync, array fast path).

Conventions every strategy follows:

- datapoint indices are positions ``0..n_datapoints-1``; ``problem.order`` is the
  seed-shuffled evaluation order, and alive arms are evaluated on the same
  prefix of it, so comparisons are paired;
- a pair asked but never told (a missing replay cell under ``--missing skip``)
  is not an evaluation: the strategy moves on and never asks it again;
- a failed run is told with its ``failure_score``: it is never dropped;
- ``best()`` is never an eliminated arm; ties go to the cheaper, then the faster;
- the dataset is a finite population: an arm asked on every datapoint is known
  exactly (its interval has zero width).

Example::

    from agentopt.selectors.base import Problem
    from agentopt.selectors.registry import get_strategy

    problem = Problem.create(n_arms=3, n_datapoints=100, seed=0)
    s = get_strategy("successive_elimination")
    s.start(problem)
    while pairs := s.ask():
        for arm, dp in pairs:
            s.tell(arm, dp, score=..., cost_usd=0.001, latency_s=1.0)
    s.best()
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from agentopt.exceptions import ConfigError, SelectionError
from agentopt.records import Observation
from agentopt.selectors.confidence import per_arm_radius
from agentopt.selectors.objective import Objective
from agentopt.selectors.state import ArmStats

__all__ = ["Evaluator", "Pair", "Problem", "Strategy", "rank_key"]

#: ``(arm index, datapoint index)``
Pair = tuple[int, int]

# relative tolerance under which two means count as tied
_TIE = 1e-12


@dataclass(frozen=True, eq=False)
class Problem:
    """What a strategy is told at start.

    ``order`` lists datapoint indices in evaluation order (a seed-shuffled
    permutation). ``arm_costs_hint``, when given, is a prior $ per item per arm
    (e.g. from a price book), used by cost-aware strategies before any evaluation.
    ``budget_usd`` and ``max_evaluations`` are the limits the run will enforce
    (None: none); a strategy may plan with them (``auto`` spends a binding budget
    by paired halving), the loop enforces them whatever the strategy does.
    ``arms``, when given, is each arm's ``{node: model}`` label: the combination
    structure that strategies with a surrogate model share information through.
    """

    n_arms: int
    n_datapoints: int
    order: np.ndarray
    objective: Objective = field(default_factory=Objective)
    confidence: float = 0.95
    epsilon: float = 0.0
    seed: int | None = None
    arm_costs_hint: np.ndarray | None = None
    budget_usd: float | None = None
    max_evaluations: int | None = None
    arms: tuple[dict[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if self.n_arms < 1:
            raise ConfigError(f"a selection needs at least one arm, got {self.n_arms}")
        if self.n_datapoints < 1:
            raise ConfigError(f"a selection needs at least one datapoint, got {self.n_datapoints}")
        order = np.asarray(self.order, dtype=np.int64)
        if order.shape != (self.n_datapoints,) or not np.array_equal(
            np.sort(order), np.arange(self.n_datapoints)
        ):
            raise ConfigError("Problem.order must be a permutation of range(n_datapoints)")
        object.__setattr__(self, "order", order)
        _check_confidence(self.confidence)
        _check_epsilon(self.epsilon)
        if self.arm_costs_hint is not None:
            hint = np.asarray(self.arm_costs_hint, dtype=float)
            if hint.shape != (self.n_arms,):
                raise ConfigError(
                    f"Problem.arm_costs_hint must have one value per arm ({self.n_arms}), "
                    f"got shape {hint.shape}"
                )
            object.__setattr__(self, "arm_costs_hint", hint)
        if self.budget_usd is not None and not (
            isinstance(self.budget_usd, int | float) and 0.0 <= self.budget_usd < math.inf
        ):
            raise ConfigError(f"budget_usd must be None or a number ≥ 0, not {self.budget_usd!r}")
        if self.max_evaluations is not None and not (
            isinstance(self.max_evaluations, int) and self.max_evaluations >= 0
        ):
            raise ConfigError(
                f"max_evaluations must be None or an integer ≥ 0, not {self.max_evaluations!r}"
            )
        if self.arms is not None:
            arms = tuple(dict(a) for a in self.arms)
            if len(arms) != self.n_arms:
                raise ConfigError(
                    f"Problem.arms must label every arm ({self.n_arms}), got {len(arms)}"
                )
            object.__setattr__(self, "arms", arms)

    @classmethod
    def create(
        cls,
        n_arms: int,
        n_datapoints: int,
        *,
        seed: int | None = None,
        objective: Objective | dict[str, float] | None = None,
        confidence: float = 0.95,
        epsilon: float = 0.0,
        arm_costs_hint: Sequence[float] | np.ndarray | None = None,
        shuffle: bool = True,
        budget_usd: float | None = None,
        max_evaluations: int | None = None,
        arms: Sequence[Mapping[str, str]] | None = None,
    ) -> Problem:
        """A problem whose datapoint order is shuffled with ``seed``."""
        order = list(range(n_datapoints))
        if shuffle:
            # the stdlib generator: the same permutation as the published harness for a seed
            random.Random(seed).shuffle(order)
        return cls(
            n_arms=n_arms,
            n_datapoints=n_datapoints,
            order=np.asarray(order, dtype=np.int64),
            objective=Objective.coerce(objective),
            confidence=confidence,
            epsilon=epsilon,
            seed=seed,
            arm_costs_hint=None if arm_costs_hint is None else np.asarray(arm_costs_hint, float),
            budget_usd=budget_usd,
            max_evaluations=max_evaluations,
            arms=None if arms is None else tuple(dict(a) for a in arms),
        )


def _check_confidence(c: float) -> None:
    if not (isinstance(c, int | float) and 0.0 < c < 1.0):
        raise ConfigError(f"confidence must be a number strictly between 0 and 1, not {c!r}")


def _check_epsilon(e: float) -> None:
    if not (isinstance(e, int | float) and math.isfinite(e) and e >= 0.0):
        raise ConfigError(f"epsilon must be a finite number ≥ 0, not {e!r}")


def rank_key(
    mean: np.ndarray, cost: np.ndarray, latency: np.ndarray, candidates: Sequence[int]
) -> int:
    """The best candidate: highest mean; ties (to 1e-12 relative) → cheaper, then faster,
    then the lower index. Unknown (NaN) cost or latency ranks after any known one."""
    cand = np.asarray(candidates, dtype=np.int64)
    m = mean[cand]
    seen = ~np.isnan(m)
    if not seen.any():
        return int(cand[0])
    cand, m = cand[seen], m[seen]
    top = m.max()
    tied = cand[m >= top - _TIE * max(1.0, abs(float(top)))]
    if tied.size == 1:
        return int(tied[0])
    c = np.nan_to_num(cost[tied], nan=np.inf)
    lat = np.nan_to_num(latency[tied], nan=np.inf)
    return int(tied[np.lexsort((tied, lat, c))[0]])


class Strategy(ABC):
    """Decides which (arm, datapoint) pairs to evaluate next; holds no I/O.

    Subclasses implement :meth:`ask`; the base keeps the statistics (``self.stats``,
    an :class:`ArmStats`), the alive set, eliminations with their round, the
    per-arm asked counts (``self.pos``: arm i has been asked on
    ``problem.order[:pos[i]]``), and implements ``tell``, ``best``,
    ``intervals`` and ``gap_bound`` generically.

    ``confidence``, ``epsilon`` and ``seed`` left as None take the problem's
    values at :meth:`start` (``self.confidence_``, ``self.epsilon_``, ``self.seed_``).
    Unknown keyword options raise :class:`ConfigError`.
    """

    name: ClassVar[str] = "strategy"
    #: True when the method's own stop certifies the pick at ``confidence`` (its
    #: results then say so); otherwise they state a posterior estimate
    certifies: ClassVar[bool] = False

    def __init__(
        self,
        *,
        confidence: float | None = None,
        epsilon: float | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> None:
        if options:
            raise ConfigError(
                f"strategy {self.name!r} got unknown option(s): {', '.join(sorted(options))}"
            )
        if confidence is not None:
            _check_confidence(confidence)
        if epsilon is not None:
            _check_epsilon(epsilon)
        self.confidence = confidence
        self.epsilon = epsilon
        self.seed = seed
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def start(self, problem: Problem) -> None:
        """Reset all learned state for ``problem``."""
        self.problem = problem
        self.confidence_ = self.confidence if self.confidence is not None else problem.confidence
        self.epsilon_ = self.epsilon if self.epsilon is not None else problem.epsilon
        self.seed_ = self.seed if self.seed is not None else problem.seed
        self.rng = np.random.default_rng(self.seed_)
        self.stats = ArmStats(problem.n_arms, problem.n_datapoints)
        self.pos = np.zeros(problem.n_arms, dtype=np.int64)
        self._alive = np.ones(problem.n_arms, dtype=bool)
        self._eliminated: dict[int, int] = {}
        self.round = 0
        self._finished = False
        self._started = True
        self._on_start()

    def _on_start(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Hook for subclasses: initialise their own state."""

    def _require_started(self) -> None:
        if not self._started:
            raise SelectionError(f"strategy {self.name!r}: call start(problem) first")

    # ------------------------------------------------------------------ ask / tell
    @abstractmethod
    def ask(self) -> list[Pair]:
        """The next batch of (arm, datapoint) pairs; ``[]`` means finished."""

    def tell(
        self,
        arm: int,
        datapoint: int,
        score: float,
        cost_usd: float = math.nan,
        latency_s: float = math.nan,
        *,
        failed: bool = False,
    ) -> None:
        """Record one outcome. ``score`` already includes ``failure_score`` for a
        failed run; NaN cost/latency means unknown. Telling a pair twice counts once."""
        self._require_started()
        value = self.problem.objective.value(score, cost_usd, latency_s)
        self.stats.add(arm, datapoint, score, value, cost_usd, latency_s, failed)

    def tell_many(
        self,
        arms: np.ndarray,
        datapoints: np.ndarray,
        scores: np.ndarray,
        costs: np.ndarray,
        latencies: np.ndarray,
    ) -> None:
        """Vectorised :meth:`tell` (the replay fast path)."""
        self._require_started()
        values = self.problem.objective.values(scores, costs, latencies)
        self.stats.add_many(arms, datapoints, scores, values, costs, latencies)

    def update(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Digest the outcomes told so far (e.g. run a pending elimination check)
        without asking for more. The loops call it after every batch, so the
        alive set they report is current; ``ask`` calls it first."""

    # ------------------------------------------------------------------ views
    def finished(self) -> bool:
        return self._finished

    def alive(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self._alive)]

    def eliminated(self) -> dict[int, int]:
        """arm → the round it was eliminated in."""
        return dict(self._eliminated)

    def exhausted(self) -> np.ndarray:
        """Mask of arms asked on every datapoint (their mean is exact)."""
        return np.asarray(self.pos >= self.problem.n_datapoints)

    def best(self) -> int:
        """The pick: among alive (feasible) arms, the best mean objective;
        ties → cheaper, then faster. With ``Objective.within`` set: the cheapest
        alive arm whose mean score is within ``within`` of the best alive mean."""
        self._require_started()
        st = self.stats
        alive = np.flatnonzero(self._alive)
        cand = alive if alive.size else np.arange(self.problem.n_arms)
        cost = st.mean_cost()
        if self.problem.arm_costs_hint is not None:
            cost = np.where(np.isnan(cost), self.problem.arm_costs_hint, cost)
        lat = st.mean_latency()
        obj = self.problem.objective
        if obj.within is not None:
            sm = st.score_mean()
            seen = [int(i) for i in cand if not math.isnan(sm[i])]
            if seen:
                top = max(sm[i] for i in seen)
                ok = [i for i in seen if sm[i] >= top - obj.within - _TIE]
                neg_cost = -np.nan_to_num(cost, nan=math.inf)
                return rank_key(neg_cost, np.nan_to_num(lat, nan=math.inf), lat, ok)
        return rank_key(st.mean(), cost, lat, cand.tolist())

    def _eliminate(self, arm: int) -> None:
        if self._alive[arm]:
            self._alive[arm] = False
            self._eliminated[int(arm)] = self.round

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-arm (lower, upper) bounds on the mean objective, simultaneous over
        arms (δ split K ways), finite-population aware (zero width when exhausted)."""
        self._require_started()
        st = self.stats
        k = self.problem.n_arms
        delta = (1.0 - self.confidence_) / k
        mean = st.mean()
        r = per_arm_radius(st.std(), st.n, self.pos, self.problem.n_datapoints, delta)
        lo = np.where(st.n > 0, mean - r, -np.inf)
        hi = np.where(st.n > 0, mean + r, np.inf)
        if self.problem.objective.is_score_only:
            lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
        return lo, hi

    def gap_bound(self) -> float:
        """An upper confidence bound on (best alive arm's mean − the pick's mean).

        ≤ 0 certifies the pick is the best; ≤ ε certifies it is within ε. Strategies
        with paired bounds override this with a tighter one.
        """
        alive = self.alive()
        if len(alive) <= 1:
            return 0.0
        b = self.best()
        lo, hi = self.intervals()
        return float(max(hi[j] for j in alive if j != b) - lo[b])

    # ------------------------------------------------------------------ helpers
    def _next_prefix_pairs(self, arms: Sequence[int], upto: int) -> list[Pair]:
        """Pairs that bring each arm's asked prefix up to ``upto`` (paired order)."""
        order = self.problem.order
        upto = min(upto, self.problem.n_datapoints)
        out: list[Pair] = []
        for a in arms:
            p = int(self.pos[a])
            if p < upto:
                out.extend((int(a), int(d)) for d in order[p:upto])
                self.pos[a] = upto
        return out


@runtime_checkable
class Evaluator(Protocol):
    """Turns (arm, datapoint) pairs into Observations, in the same order.

    ``None`` for a pair means *no observation* (a missing replay cell under
    ``missing="skip"``): it is not an evaluation. A failed run is an Observation
    with the failure score and its ``error``.
    """

    async def evaluate(self, pairs: list[Pair]) -> Sequence[Observation | None]: ...
