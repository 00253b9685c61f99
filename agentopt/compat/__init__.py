"""A zero-edit switch from the published AgentOpt package (``agentopt-py``).

Its documented names, on our implementations: the selector classes
(``BruteForceModelSelector``, ``ArmEliminationModelSelector``,
``MatrixUCBModelSelector``, ``MatrixUCBLRFModelSelector``,
``BayesianOptimizationModelSelector``), its result types (``ModelResult``,
``DatapointResult``), its ``lambda_cost``/``lambda_latency`` normalisation, and
the ``agentopt.proxy`` / ``agentopt.routing`` import paths. The README's
"Coming from AgentOpt" section lists the deliberate differences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentopt._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "BruteForceModelSelector": "agentopt.compat.selectors",
    "ArmEliminationModelSelector": "agentopt.compat.selectors",
    "MatrixUCBModelSelector": "agentopt.compat.selectors",
    "MatrixUCBLRFModelSelector": "agentopt.compat.selectors",
    "BayesianOptimizationModelSelector": "agentopt.compat.selectors",
    "ModelResult": "agentopt.compat.results",
    "DatapointResult": "agentopt.compat.results",
    "NormalisedObjectiveStrategy": "agentopt.compat.objective",
    "combined_objectives": "agentopt.compat.objective",
}

__all__ = [
    "ArmEliminationModelSelector",
    "BayesianOptimizationModelSelector",
    "BruteForceModelSelector",
    "DatapointResult",
    "MatrixUCBLRFModelSelector",
    "MatrixUCBModelSelector",
    "ModelResult",
    "NormalisedObjectiveStrategy",
    "combined_objectives",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from agentopt.compat.objective import NormalisedObjectiveStrategy, combined_objectives
    from agentopt.compat.results import DatapointResult, ModelResult
    from agentopt.compat.selectors import (
        ArmEliminationModelSelector,
        BayesianOptimizationModelSelector,
        BruteForceModelSelector,
        MatrixUCBLRFModelSelector,
        MatrixUCBModelSelector,
    )
