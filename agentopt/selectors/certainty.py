"""How sure the pick is: what the evidence of a selection supports.

Three cases, in this order:

- **unsupported**: nothing was evaluated, the pick itself was never evaluated, or
  an arm still in the running was never evaluated (nothing is known about it);
  the results then name no supported best and warn.
- **certified**: the method's stopping rule ended the run on its own (one arm
  left, or all alive arms seen on every datapoint) with every elimination made
  by its test (none by a budget halving), or every arm saw every datapoint (the
  dataset's exact best). The statement is the method's: best (or within ε) at
  the confidence asked for, or exact.
- **estimate**: anything else (a budget or an evaluation cap ended the run, or
  the method certifies nothing): a *posterior estimate*, clearly labelled, of
  the probability that the pick is the best on the whole dataset and that it is
  within ε of it.

The posterior (:func:`posterior_best`) treats the dataset as the population:
each arm's mean over all N datapoints is its observed sum plus the unseen
datapoints, drawn by a Pólya urn from what it saw (the finite-population
Bayesian bootstrap, Lo 1988), with one pseudo-observation at each end of the
value range. Draws share their datapoint weights across arms, so the
comparison stays paired (a hard datapoint is hard for every arm), and arms that
saw the same datapoints share their urn draws.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from agentopt.selectors.base import Strategy
    from agentopt.selectors.state import SelectionState

__all__ = ["Certainty", "assess", "assess_selection", "posterior_best"]

Kind = Literal["certified", "exact", "estimate", "unsupported"]

#: ε of the "within ε" estimate when the selection itself had none (one point)
DEFAULT_EPSILON = 0.01


@dataclass(frozen=True)
class Certainty:
    """What the evidence supports about the pick (see the module docstring)."""

    kind: Kind
    confidence: float | None = None  #: the certified level (certified only)
    epsilon: float = 0.0  #: ε of a certificate, or of ``p_within``
    p_best: float | None = None  #: posterior estimate, P(the pick is the best)
    p_within: float | None = None  #: posterior estimate, P(within ``epsilon`` of the best)
    note: str = ""  #: why (unsupported), or what ended the run

    @property
    def supported(self) -> bool:
        return self.kind != "unsupported"

    def describe(self) -> str:
        """One line for summaries."""
        if self.kind == "unsupported":
            return f"no supported pick: {self.note}"
        if self.kind == "exact":
            return "exact: every combination saw every datapoint"
        if self.kind == "certified":
            what = "best" if self.epsilon == 0 else f"within ε={self.epsilon:g} of the best"
            return f"certified {what} at confidence {self.confidence:g}"
        pb = _pct(self.p_best)
        pw = _pct(self.p_within)
        end = f" ({self.note})" if self.note else ""
        return (
            f"not certified{end}; estimated P(best) ≈ {pb}, "
            f"P(within {self.epsilon:g}) ≈ {pw} (posterior estimate, not a guarantee)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}


def _pct(p: float | None) -> str:
    return "—" if p is None or math.isnan(p) else f"{100 * p:.0f}%"


def posterior_best(
    values: np.ndarray,
    pick: int,
    epsilon: float,
    *,
    lo: float = 0.0,
    hi: float = 1.0,
    draws: int = 1000,
    seed: int = 0,
    prior: float = 1.0,
) -> tuple[float, float]:
    """(P(pick is the best), P(pick is within ``epsilon`` of the best)) over the
    whole dataset, given ``values[arm, datapoint]`` (NaN: not seen).

    ``lo``/``hi``: the value range (the pseudo-observations' values); ``prior``
    their weight. Ties count as best.
    """
    k, n = values.shape
    seen = ~np.isnan(values)
    vz = np.where(seen, values, 0.0)
    sums = vz.sum(axis=1)
    counts = seen.sum(axis=1)
    unseen = n - counts
    rng = np.random.default_rng(seed)
    # group arms by the set of datapoints they saw: one urn draw per group
    groups: dict[bytes, list[int]] = {}
    for a in range(k):
        groups.setdefault(np.packbits(seen[a]).tobytes(), []).append(a)
    means = np.empty((draws, k))
    g = rng.gamma(1.0, size=(draws, n))  # datapoint weights, shared by all arms
    # each arm's own pseudo-observations (lo and hi): what it has not shown yet may
    # differ from every other arm's, so arms identical so far are not identical
    ends = rng.gamma(prior, size=(draws, k, 2))
    for arms_list in groups.values():
        arms = np.asarray(arms_list)
        a0 = arms_list[0]
        m = int(unseen[a0])
        cols = np.flatnonzero(seen[a0])
        if m == 0:
            means[:, arms] = (sums[arms] / n)[None, :]
            continue
        e = ends[:, arms, :]
        esum = e.sum(axis=2)
        pseudo = lo + (hi - lo) * e[:, :, 1] / esum
        if cols.size == 0:  # never evaluated: the pseudo-observations alone
            means[:, arms] = pseudo
            continue
        gw = g[:, cols]
        gsum = gw.sum(axis=1)
        # Pólya urn for the m unseen datapoints: multinomial counts on Dirichlet weights;
        # the draws from the seen datapoints are shared by the group (paired) ...
        c = np.stack([rng.multinomial(m, gw[d] / gsum[d]) for d in range(draws)])
        seen_part = c @ vz[np.ix_(arms, cols)].T / m  # (draws, arms)
        # ... and each arm draws its share from its own pseudo-observations
        share = rng.binomial(m, esum / (esum + gsum[:, None])) / m
        imputed = (1.0 - share) * seen_part + share * pseudo
        means[:, arms] = (sums[arms][None, :] + m * imputed) / n
    others = np.delete(means, pick, axis=1)
    top = others.max(axis=1) if others.shape[1] else np.full(draws, -np.inf)
    p_best = float(np.mean(means[:, pick] >= top - 1e-12))
    p_within = float(np.mean(means[:, pick] >= top - epsilon - 1e-12))
    return p_best, p_within


def assess(
    *,
    values: np.ndarray,
    asked: np.ndarray,
    pick: int,
    alive: list[int],
    n_datapoints: int,
    certifies: bool,
    finished: bool,
    budget_eliminated: set[int] | frozenset[int],
    confidence: float,
    epsilon: float,
    stop_reason: str | None,
    value_range: tuple[float, float] = (0.0, 1.0),
    draws: int = 1000,
    seed: int = 0,
) -> Certainty:
    """The statement for one selection's end state (see the module docstring).

    ``values``: objective values ``[arm, datapoint]`` (NaN: not seen); ``asked``:
    how many datapoints each arm was asked on; ``certifies``: the method's stopping
    rule carries a guarantee; ``finished``: that rule ended the run.
    """
    n_seen = (~np.isnan(values)).sum(axis=1)
    if int(n_seen.sum()) == 0:
        return Certainty("unsupported", note="no evaluation was made")
    if n_seen[pick] == 0:
        return Certainty("unsupported", note="the pick was never evaluated")
    blind = [a for a in alive if n_seen[a] == 0]
    if blind:
        return Certainty(
            "unsupported",
            note=f"{len(blind)} combination(s) still in the running were never evaluated",
        )
    if bool((np.asarray(asked) >= n_datapoints).all()):
        return Certainty("exact", confidence=1.0)
    settled = finished or all(asked[a] >= n_datapoints for a in alive)
    if certifies and settled and not budget_eliminated:
        return Certainty("certified", confidence=confidence, epsilon=epsilon)
    eps = epsilon if epsilon > 0 else DEFAULT_EPSILON
    p_best, p_within = posterior_best(
        values, pick, eps, lo=value_range[0], hi=value_range[1], draws=draws, seed=seed
    )
    return Certainty(
        "estimate", epsilon=eps, p_best=p_best, p_within=p_within, note=stop_reason or ""
    )


def assess_selection(
    strategy: Strategy,
    state: SelectionState,
    *,
    confidence: float,
    epsilon: float,
    value_range: tuple[float, float] = (0.0, 1.0),
    draws: int = 1000,
    seed: int = 0,
) -> Certainty:
    """:func:`assess` for a selection that ran: ``strategy`` and the loop's end
    ``state`` (its pick, the arms still alive, what each was asked, why it stopped)."""
    return assess(
        values=strategy.stats.values,
        asked=state.asked,
        pick=int(state.best if state.best is not None else 0),
        alive=list(state.alive),
        n_datapoints=state.problem.n_datapoints,
        certifies=strategy.certifies,
        finished=state.strategy_finished,
        budget_eliminated=getattr(strategy, "budget_eliminated", set()),
        confidence=confidence,
        epsilon=epsilon,
        stop_reason=state.stop_reason,
        value_range=value_range,
        draws=draws,
        seed=seed,
    )
