"""Selection strategies, one module per method (each also found by name in the registry).

Issue 5 names each method as a ``…Selector`` class with ModelSelector's constructor
(built in :mod:`agentopt.selectors`); the strategies here are their cores:

- ``auto`` → :class:`AutoStrategy` (``AutoSelector``)
- ``brute_force`` → :class:`BruteForceStrategy` (``BruteForceSelector``)
- ``successive_elimination`` → :class:`SuccessiveEliminationStrategy`
- ``lucb`` → :class:`LUCBStrategy` (``LUCBSelector``)
- ``top_two_thompson`` → :class:`TopTwoThompsonStrategy`
- ``successive_halving`` → :class:`SuccessiveHalvingStrategy`
- ``random_search`` → :class:`RandomSearchStrategy`
- ``agentopt_arm_elimination`` → :class:`AgentOptArmEliminationStrategy`
- ``matrix_ucb`` → :class:`MatrixUCBStrategy`, ``matrix_ucb_lrf`` →
  :class:`MatrixUCBLRFStrategy`, ``bayesian`` → :class:`BayesianOptimizationStrategy`:
  surrogate models of the combination × datapoint matrix (:mod:`.surrogate`)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentopt.selectors.strategies.agentopt_arm_elimination import AgentOptArmEliminationStrategy
from agentopt.selectors.strategies.bayesian import BayesianOptimizationStrategy
from agentopt.selectors.strategies.brute_force import BruteForceStrategy
from agentopt.selectors.strategies.lucb import LUCBStrategy
from agentopt.selectors.strategies.matrix_ucb import MatrixUCBStrategy
from agentopt.selectors.strategies.matrix_ucb_lrf import MatrixUCBLRFStrategy
from agentopt.selectors.strategies.paired_elimination import PairedEliminationStrategy
from agentopt.selectors.strategies.random_search import RandomSearchStrategy
from agentopt.selectors.strategies.successive_elimination import SuccessiveEliminationStrategy
from agentopt.selectors.strategies.successive_halving import SuccessiveHalvingStrategy
from agentopt.selectors.strategies.top_two_thompson import TopTwoThompsonStrategy

__all__ = [
    "AgentOptArmEliminationStrategy",
    "AutoStrategy",
    "BayesianOptimizationStrategy",
    "BruteForceStrategy",
    "LUCBStrategy",
    "MatrixUCBLRFStrategy",
    "MatrixUCBStrategy",
    "PairedEliminationStrategy",
    "RandomSearchStrategy",
    "SuccessiveEliminationStrategy",
    "SuccessiveHalvingStrategy",
    "TopTwoThompsonStrategy",
]


if TYPE_CHECKING:
    from agentopt.selectors.auto import AutoStrategy


def __getattr__(name: str) -> Any:
    # AutoStrategy lives in agentopt.selectors.auto, which imports this package:
    # resolve it lazily to avoid the import cycle.
    if name == "AutoStrategy":
        from agentopt.selectors.auto import AutoStrategy

        return AutoStrategy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
