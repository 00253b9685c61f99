"""The published package's selector classes: our :class:`ModelSelector`, one method each.

Each takes ModelSelector's constructor (``agent``, ``models``, ``eval_fn``,
``dataset``, ``model_prices``, ``lambda_cost``, ``lambda_latency``, ``tracker``, …)
and always runs its method.
"""

from __future__ import annotations

from agentopt.selectors.selector import ModelSelector

__all__ = [
    "ArmEliminationModelSelector",
    "BayesianOptimizationModelSelector",
    "BruteForceModelSelector",
    "MatrixUCBLRFModelSelector",
    "MatrixUCBModelSelector",
]


class BruteForceModelSelector(ModelSelector):
    """Every combination on every datapoint (``method="brute_force"``)."""

    default_method = "brute_force"


class ArmEliminationModelSelector(ModelSelector):
    """Arm elimination (``method="arm_elimination"``): our sound one, ``auto``."""

    default_method = "arm_elimination"


class MatrixUCBModelSelector(ModelSelector):
    """UCB on an additive combination × datapoint surrogate (``method="matrix_ucb"``)."""

    default_method = "matrix_ucb"


class MatrixUCBLRFModelSelector(ModelSelector):
    """Matrix UCB with a low-rank interaction (``method="matrix_ucb_lrf"``)."""

    default_method = "matrix_ucb_lrf"


class BayesianOptimizationModelSelector(ModelSelector):
    """GP surrogate over combinations, Thompson acquisition (``method="bayesian"``)."""

    default_method = "bayesian"
