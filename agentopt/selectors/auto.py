"""``auto``: the default selection method.

What it is: **paired, finite-population-aware successive elimination** with a
union-bound confidence guarantee, an ε-aware stop and cost-ordered batches.

1. *Paired.* Every alive arm is evaluated on the same prefix of the
   seed-shuffled datapoints. At each checkpoint (10 % of the data, at least 10
   datapoints, then ×1.5 until all of it) every pair of alive arms is compared
   through their per-datapoint differences, whose variance is far below the sum
   of the two arms' variances because datapoints are hard or easy for everyone.
2. *Finite population.* The dataset is the population: the bound on a mean
   difference shrinks by ``(N − n)/(N − 1)`` and is exact once both arms saw
   every datapoint, so near-ties are settled by the data itself, not by luck.
3. *Confidence across arms and rounds.* Arm j is dropped when some alive arm is
   better with a one-sided bound at ``δ / ((K − 1)(R − 1))`` (``δ = 1 −
   confidence``, ``K`` arms, ``R`` checkpoints, the last one exact). The best arm
   can only be lost if one of its ``K − 1`` comparisons errs at one of the
   ``R − 1`` inexact checkpoints, so the pick is the best with probability
   ≥ 1 − δ (up to the normal approximation of the paired mean; the variance is
   shrunk towards the range's maximum by one pseudo-observation, so a small
   sample with no disagreement is not read as certainty).
4. *ε-aware.* With ``epsilon > 0`` it stops as soon as no alive arm can beat
   the pick by more than ε (the same paired bounds).
5. *Cost.* Ties go to the cheaper, then the faster arm; each batch lists the
   cheaper arms first, so a dollar budget cut mid-batch buys the most evidence.

Nothing in it depends on a particular benchmark: the schedule and the bound are
fixed by N, K and the confidence the user asked for.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from agentopt.selectors.base import Pair
from agentopt.selectors.strategies.paired_elimination import PairedEliminationStrategy

__all__ = ["AutoStrategy"]


class AutoStrategy(PairedEliminationStrategy):
    """Paired, finite-population-aware elimination (see the module docstring).

    Accepts the options of :class:`PairedEliminationStrategy`
    (``initial_fraction``, ``min_initial``, ``growth``, ``bound``, ``correction``,
    ``prior``, ``against``).
    """

    name: ClassVar[str] = "auto"

    def ask(self) -> list[Pair]:
        pairs = super().ask()
        if len(pairs) > 1:
            cost = self.stats.mean_cost()
            hint = self.problem.arm_costs_hint
            if hint is not None:
                cost = np.where(np.isnan(cost), hint, cost)
            key = np.nan_to_num(cost, nan=math.inf)
            pairs.sort(key=lambda p: (key[p[0]], p[0]))
        return pairs
