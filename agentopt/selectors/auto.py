"""``auto``: the default selection method.

What it is: **paired successive elimination with one anytime-valid,
finite-population test per arm, by betting** (no union bound over arms or looks).

1. *Paired.* Every alive arm is evaluated on the same prefix of the
   seed-shuffled datapoints (checkpoints at 5 % of the data, at least 10
   datapoints, then ×1.1 until all of it); arms are compared through
   per-datapoint differences, whose spread is far below the arms' own because a
   datapoint is hard or easy for everyone.
2. *One test per arm.* Arm b's test bets, datapoint by datapoint, that the
   leader on the earlier datapoints (the runner-up when b leads) beats it; the
   bets use the without-replacement centring of Waudby-Smith & Ramdas (2020),
   which makes the dataset the population (evidence grows as it runs out), see
   :mod:`agentopt.selectors.sequential`. b is eliminated once its wealth reaches
   ``1/δ`` (``δ = 1 − confidence``), at whichever datapoint that happens. Arms
   that saw every datapoint are compared on their exact means.
3. **Guarantee** (``epsilon = 0``; score objective, or
   ``Objective.cheapest_within``): *for any table, any number of arms and any
   schedule, P(every best arm is eliminated) ≤ δ*, so once the data are
   exhausted or one arm is left the pick is a best arm with probability
   ≥ 1 − δ. The bound is exact: no normal approximation, no asymptotics.

   Proof sketch. Fix a best arm b. Given the datapoints seen so far, the next
   one is uniform over the unseen ones, so for any arm j the next difference
   ``X = v_j − v_b`` has conditional mean ``(N·μ_jb − S)/(N − s + 1) ≤ m_s =
   −S/(N − s + 1)`` because ``μ_jb = μ_j − μ_b ≤ 0`` (``S``: the sum of the pair's
   differences so far). b's wealth multiplies by ``1 + λ_s (X_s − m_s)`` with
   ``λ_s ≥ 0`` and the competitor j_s both fixed from the earlier datapoints and
   ``1 + λ_s (X_s − m_s) > 0``; so, *whichever* competitor is named at each step,
   the wealth is a non-negative supermartingale started at 1, and Ville's
   inequality gives ``P(∃ s: wealth_s ≥ 1/δ) ≤ δ``. The exact comparison at the
   end never removes a best arm, and the other arms' tests may err freely: only
   b's test can remove b. Far arms, many close competitors and the number of
   looks therefore cost nothing. (With ``missing="skip"`` a missing cell enters a
   pair's differences as 0, so there the statement is about the paired means.)
4. *ε-aware.* With ``epsilon > 0`` the eliminations are exactly those of
   ``epsilon = 0`` (the same bets, all of δ), and the run also stops once the pick
   p is certified within ε of the best, for every other alive arm a by either of
   two statements, neither of which spends δ:

   - *worst case*: no values of the unseen cells let a beat p by more than ε (the
     paired sum so far plus the largest difference on every unseen datapoint);
   - *a's own bets, re-read*: a's test, with its stakes unchanged, would have
     reached ``1/δ`` had every step that named p as the competitor carried the
     shift ``N·ε/(N − s + 1)``.

   Why the second holds at the confidence asked for, on the *same* event as the
   eliminations. For the best arm b and a competitor j with paired gap
   ``g_j = μ_b − μ_j ≥ 0``, the step's conditional mean of ``X = v_j − v_b`` is
   exactly ``m_s − N·g_j/(N − s + 1)``, so ``Y'_s = Y_s + N·g_j/(N − s + 1)``
   (``Y_s = X_s − m_s``, what b's test bets on) has conditional mean 0 whatever
   competitor is named: ``W' = Π (1 + λ_s Y'_s)`` with b's own stakes is a
   non-negative martingale, and ``P(∃ s: W'_s ≥ 1/δ) ≤ δ`` (Ville). Let E be the
   event that it never gets there. Since ``g_j ≥ 0``, ``W' ≥ W`` (b's wealth)
   step by step, so on E b is never eliminated: E is inside the event the
   ε = 0 guarantee rests on, not an extra one. On E, if some alive a were the best
   arm with ``μ_a − μ_p > ε``, a's re-read wealth (the shift ``N·ε/(N − s + 1)``
   on the steps naming p, nothing on the others: a lower bound on ``W'`` as
   ``g_p > ε`` and ``g_j ≥ 0``) would stay below ``1/δ`` at every step; so every
   alive arm whose re-read wealth reached ``1/δ`` is, on E, either not the best or
   within ε of p. The best arm is alive on E, hence ``μ_best − μ_p ≤ ε`` with
   probability ≥ 1 − δ (about paired means under ``missing="skip"``, as above).
   Nothing else changes, so on the same seed ε > 0 never evaluates more than
   ε = 0.

   Not done, and why: dropping an arm because some alive arm is surely within ε
   of it (shifted bounds) is unsound on its own, since such drops chain (a within
   ε of b, c within ε of a: 2ε); a variant that fixes the first arm it drops
   for ("the guarantor") and never eliminates it is sound, but then costs more
   than ε = 0 on some seeds (measured: 6 of 50 on gpqa, 10 on hotpotqa) for
   little more saving (mathqa 28.3 % against 26.4 %). How much ε can save is limited by the data: telling "within 1 point"
   apart for arms whose paired differences have a spread of about 10 points needs
   far more than the ~200 datapoints of these tables, so at ε = 1 point the gain is
   small (README).
5. *Budget.* When ``budget_usd`` or ``max_evaluations`` cannot pay for every
   alive arm to see every datapoint, the budget is spent by paired sequential
   halving over the alive arms (:mod:`agentopt.selectors.allocation`), the
   eliminations above still running at every step; the confidence rule stops
   first whenever it can. When nothing prices the arms yet (no cost observed, no
   ``arm_costs_hint``), a probe of two datapoints per arm does, and the halvings
   plan from there. Arms dropped by a halving are not certified worse:
   ``budget_eliminated`` lists them, and the pick is then an estimate.
6. *Cost.* Ties go to the cheaper, then the faster arm; each batch lists the
   cheaper arms first, so a dollar budget cut mid-batch buys the most evidence.

Objectives that weight cost or latency have no known range, which the bets need
to stay positive; there ``auto`` uses the union-bound paired normal test
(``test="union"``: one-sided bounds at ``δ / ((K − 1)(R − 1))``, up to the normal
approximation). Nothing depends on a particular benchmark: the schedule and the
tests are fixed by N and the confidence the user asked for.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.selectors.allocation import affordable, budget_target, halving_keep, leaders
from agentopt.selectors.base import Pair
from agentopt.selectors.sequential import bet_steps
from agentopt.selectors.strategies.paired_elimination import PairedEliminationStrategy

__all__ = ["AutoStrategy"]

_TIE = 1e-12
# datapoints per arm that price the arms when a dollar budget is set and nothing
# else does: 2 rather than 1 (one cell's cost is a noisy price), no more, so the
# halvings plan the rest (measured on 160 random tables, 4–81 arms, 50–400
# datapoints: 1, 2 and 3 equally good, the confidence schedule's first checkpoint
# far worse on small data; README "The same money")
_PROBE = 2


class AutoStrategy(PairedEliminationStrategy):
    """Paired elimination by anytime-valid betting (see the module docstring).

    Options: ``test`` (``betting``, the default, or ``union``: the paired normal
    bound at ``δ / ((K − 1)(R − 1))``, the previous default), ``cap`` (the largest
    share of its wealth a test stakes on one datapoint), ``bet_prior`` (weight of
    the worst-case pseudo-observation in the bets' plug-in estimates), plus those
    of :class:`PairedEliminationStrategy` (``initial_fraction``, ``min_initial``,
    ``growth``, ``bound``, ``correction``, ``prior``, ``against``; the last four
    serve the ``union`` test and the ε certificate).
    """

    name: ClassVar[str] = "auto"
    certifies: ClassVar[bool] = True

    def __init__(
        self,
        *,
        test: str = "betting",
        cap: float = 0.6,
        bet_prior: float = 1.0,
        initial_fraction: float = 0.05,
        growth: float = 1.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(initial_fraction=initial_fraction, growth=growth, **kwargs)
        if test not in ("betting", "union"):
            raise ConfigError(f"{self.name}: test must be 'betting' or 'union'")
        if not (0.0 < cap < 1.0):
            raise ConfigError(f"{self.name}: cap must be in (0, 1)")
        if not bet_prior > 0:
            raise ConfigError(f"{self.name}: bet_prior must be > 0")
        self.test = test
        self.cap = cap
        self.bet_prior = bet_prior

    def _on_start(self) -> None:
        super()._on_start()
        delta = 1.0 - self.confidence_
        # the betting test needs bounded differences: the score objective (or within)
        self._betting = self.test == "betting" and self.problem.objective.is_score_only
        # the eliminations use all of δ whatever ε is: ε only adds a stop (exact, below)
        self._threshold = math.log(1.0 / delta)
        self._wealth = np.zeros(self.problem.n_arms)  # log-wealth of each arm's test
        # every bet each arm's test made, step by step (for the ε certificate)
        k, n = self.problem.n_arms, self.problem.n_datapoints
        self._comp = np.full((k, n), -1, dtype=np.int64)  # the competitor named (-1: none)
        self._lam = np.zeros((k, n))  # the stake
        self._y = np.zeros((k, n))  # the centred difference X − m
        self._remaining = float(n) - np.arange(n, dtype=float)  # N − s + 1 at step s
        self._steps = 0  # datapoints of the order already fed to the tests
        self._halving = 0  # arms alive when the pending halving round was planned (0: none)
        self.budget_eliminated: set[int] = set()  # dropped by a halving, not by a test

    def update(self) -> None:
        if self._pending:
            self._pending = False
            self._check()
            if self._halving and not self._finished:
                self._halve()
        self._halving = 0

    def _halve(self) -> None:
        """Keep the more promising half of the arms the round was planned for (:func:`leaders`
        over the shared prefix), when the budget still binds after the round. Arms
        the tests eliminated during the round count towards the half. An arm with
        no observation on the shared prefix (every cell of it missing in a replay)
        is never cut: nothing speaks against it, and it has cost nothing."""
        alive = self.alive()
        keep_n = halving_keep(self._halving)
        if len(alive) <= keep_n:
            return
        if budget_target(self.problem, self.stats, self.pos, alive) is None or keep_n == 1:
            return  # the last two spend what is left; the pick is the better mean
        common = int(self.pos[alive].min())
        ranked, index = leaders(self.stats, self.problem, np.asarray(alive), common)
        keep_n = max(keep_n, affordable(self.problem, self.stats, self.pos, ranked))
        if len(alive) <= keep_n:
            return
        # every arm tied with the last one kept stays
        cut = index[keep_n - 1]
        rest = [
            int(a) for a, x in zip(ranked, index, strict=True) if x < cut - 1e-12 and np.isfinite(x)
        ]
        for j in rest:
            self._eliminate(j)
            self.budget_eliminated.add(j)
        if len(self.alive()) <= 1:
            self._finished = True

    def ask(self) -> list[Pair]:
        self._require_started()
        pairs = self._ask_alive() or self._revive()
        if len(pairs) > 1:
            cost = self.stats.mean_cost()
            hint = self.problem.arm_costs_hint
            if hint is not None:
                cost = np.where(np.isnan(cost), hint, cost)
            key = np.nan_to_num(cost, nan=math.inf)
            pairs.sort(key=lambda p: (key[p[0]], p[0]))
        return pairs

    def _revive(self) -> list[Pair]:
        """With the alive arms done and money left, bring back the most promising
        arm a halving dropped (one that could still beat the pick: paired mean
        difference plus one standard error ≥ 0) if the budget left takes it to
        the end of the data; its evaluations then settle the comparison exactly."""
        if not self.budget_eliminated or len(self.alive()) == 0:
            return []
        pick = self.best()
        order = self.problem.order
        cands: list[tuple[float, int]] = []
        for c in self.budget_eliminated:
            cols = order[: int(min(self.pos[c], self.pos[pick]))]
            x = self.stats.values[c, cols] - self.stats.values[pick, cols]
            x = x[~np.isnan(x)]
            if x.size == 0:
                continue
            se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 1.0
            if float(x.mean()) + se >= 0:
                cands.append((float(x.mean()), c))
        for _, c in sorted(cands, reverse=True):
            if affordable(self.problem, self.stats, self.pos, [c]) >= 1:
                self._alive[c] = True
                self._eliminated.pop(c, None)
                self.budget_eliminated.discard(c)
                self._finished = False
                pairs = self._next_prefix_pairs([c], self.problem.n_datapoints)
                if pairs:
                    self.round += 1
                    self._pending = True
                    return pairs
        return []

    def _ask_alive(self) -> list[Pair]:
        if self._finished:
            return []
        self.update()
        if self._finished:
            return []
        alive = self.alive()
        upto = budget_target(self.problem, self.stats, self.pos, alive)
        pairs: list[Pair] = []
        if upto is None and self._probe_first(alive):
            # a dollar budget and no price known yet: a probe of _PROBE datapoints per
            # arm prices them, so the first round is planned like the rest (the
            # confidence schedule's first checkpoint alone could spend a small budget)
            pairs = self._next_prefix_pairs(alive, _PROBE)
            if pairs:
                self.round += 1
                self._pending = True
                return pairs
        if upto is not None:
            pairs = self._next_prefix_pairs(alive, upto)
            if pairs:
                self.round += 1
                self._pending = True
                self._halving = len(alive)
        if not pairs:
            pairs = super().ask()
        return pairs

    def _probe_first(self, alive: list[int]) -> bool:
        """True before any evaluation when a dollar budget is set and nothing
        prices the arms (no observed cost, no ``arm_costs_hint``)."""
        return (
            self.problem.budget_usd is not None
            and self.problem.arm_costs_hint is None
            and bool(alive)
            and int(self.pos[alive].max()) == 0
        )

    def _check(self) -> None:
        if not self._betting:
            super()._check()
            return
        obj = self.problem.objective
        if obj.has_constraints:
            ok = obj.feasible(self.stats.mean_cost(), self.stats.mean_latency())
            for i in self.alive():
                if not ok[i] and self.stats.n[i] > 0 and len(self.alive()) > 1:
                    self._eliminate(i)
        margin = obj.within or 0.0
        n_dp = self.problem.n_datapoints
        alive = np.asarray(self.alive(), dtype=np.int64)
        common = int(self.pos[alive].min()) if alive.size else 0  # the shared prefix
        if alive.size > 1 and common > self._steps:
            v = self.stats.values[np.ix_(alive, self.problem.order[:common])]
            mask = ~np.isnan(v)
            bets = bet_steps(
                np.where(mask, v, 0.0),
                mask,
                self._steps,
                common,
                n_dp,
                width=obj.value_range(),
                margin=margin,
                cap=self.cap,
                prior=self.bet_prior,
            )
            span = slice(self._steps, common)
            named = bets.comp >= 0
            self._comp[alive, span] = np.where(named, alive[np.maximum(bets.comp, 0)], -1)
            self._lam[alive, span] = bets.lam
            self._y[alive, span] = bets.y
            path = self._wealth[alive][:, None] + bets.log_wealth
            self._wealth[alive] = path[:, -1]
            self._steps = common
            crossed = (path >= self._threshold).any(axis=1)  # Ville: any step counts
            if crossed.all():  # never empty the field: keep the pick among them
                crossed[alive == self.best()] = False
            for j in alive[crossed]:
                self._eliminate(int(j))
        # arms that saw every datapoint are known exactly: compare their own means
        alive = np.asarray(self.alive(), dtype=np.int64)
        done = alive[self.pos[alive] >= n_dp]
        if done.size > 1:
            mean = self.stats.mean()
            top = float(np.nanmax(mean[done]))
            for j in done:
                if mean[j] < top - margin - _TIE:
                    self._eliminate(int(j))
        self._gap = self.gap_bound()
        if len(self.alive()) <= 1 or (self.epsilon_ > 0 and self._epsilon_certified()):
            self._finished = True

    def _epsilon_certified(self) -> bool:
        """True when the pick p is within ε of the best on the event that already
        protects the best arm (no δ of its own; see the module docstring, 4).

        For every other alive arm a: either no value of the unseen cells lets a beat
        p by more than ε (:meth:`gap_bound`'s worst case for a), or a's own test,
        its bets unchanged, would have reached ``1/δ`` had each step that named p
        as the competitor carried the shift ``N·ε/(N − s + 1)``: the wealth a's
        test would have if a were the best arm and beat p by more than ε.
        """
        alive = self.alive()
        if len(alive) <= 1:
            return True
        if self._gap <= self.epsilon_:
            return True
        if not self._betting or self.problem.objective.within is not None:
            return False
        p = self.best()
        n = self.problem.n_datapoints
        upto = self._steps
        shift = n * self.epsilon_ / self._remaining[:upto]
        for a in alive:
            if a == p or self._arm_gap(a, p) <= self.epsilon_:
                continue
            bonus = np.where(self._comp[a, :upto] == p, shift, 0.0)
            inc = np.log1p(self._lam[a, :upto] * (self._y[a, :upto] + bonus))
            if upto == 0 or float(np.cumsum(inc).max()) < self._threshold:
                return False
        return True

    def gap_bound(self) -> float:
        """With the betting test: a bound on (best alive mean − the pick's mean) that
        holds for *any* values of the unseen cells (no δ spent); else the paired
        normal bound of :class:`PairedEliminationStrategy`."""
        if not self._betting or self.problem.objective.within is not None:
            return super().gap_bound()
        alive = self.alive()
        if len(alive) <= 1:
            return 0.0
        p = self.best()
        return max(self._arm_gap(j, p) for j in alive if j != p)

    def _arm_gap(self, j: int, p: int) -> float:
        """The largest (mean of j − mean of p) any values of the unseen cells allow."""
        n = self.problem.n_datapoints
        w = self.problem.objective.value_range()
        order = self.problem.order
        vals = self.stats.values
        c = int(min(self.pos[j], self.pos[p]))
        x = vals[j, order[:c]] - vals[p, order[:c]]
        if np.isnan(x).any():  # a missing cell: each arm's mean over its own cells
            return _upper(vals[j], n - int(self.pos[j]), w) - _lower(vals[p], n - int(self.pos[p]))
        # every unseen datapoint at the largest gap
        return (float(x.sum()) + (n - c) * w) / n


def _upper(row: np.ndarray, unasked: int, hi: float) -> float:
    """The largest mean an arm can end with: every unasked cell at ``hi`` (or missing)."""
    seen = row[~np.isnan(row)]
    if seen.size == 0:
        return math.inf
    return max(float(seen.mean()), float((seen.sum() + unasked * hi) / (seen.size + unasked)))


def _lower(row: np.ndarray, unasked: int) -> float:
    """The smallest mean an arm can end with: every unasked cell at 0 (or missing)."""
    seen = row[~np.isnan(row)]
    if seen.size == 0:
        return -math.inf
    return min(float(seen.mean()), float(seen.sum() / (seen.size + unasked)))
