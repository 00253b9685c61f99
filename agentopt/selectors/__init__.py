"""Model selection: find the best model combination for an agent, paying for few runs.

The facade is :class:`ModelSelector` (and one ``*Selector`` class per method);
underneath, strategies (``ask``/``tell``, no I/O), evaluators (live or replay),
composable stopping rules and :class:`SelectionResults`. Names load lazily, so
importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentopt._lazy import lazy_exports

_LAZY: dict[str, str] = {
    # the facade
    "ModelSelector": "agentopt.selectors.selector",
    "AutoSelector": "agentopt.selectors.selector",
    "BruteForceSelector": "agentopt.selectors.selector",
    "SuccessiveEliminationSelector": "agentopt.selectors.selector",
    "LUCBSelector": "agentopt.selectors.selector",
    "TopTwoThompsonSelector": "agentopt.selectors.selector",
    "SuccessiveHalvingSelector": "agentopt.selectors.selector",
    "RandomSearchSelector": "agentopt.selectors.selector",
    "AgentOptArmEliminationSelector": "agentopt.selectors.selector",
    "SelectionResults": "agentopt.selectors.results",
    "ArmResult": "agentopt.selectors.results",
    "LiveEvaluator": "agentopt.selectors.run.evaluator",
    "Executor": "agentopt.selectors.run.executor",
    "LocalExecutor": "agentopt.selectors.run.executor",
    "RayExecutor": "agentopt.selectors.run.ray_executor",
    "get_store": "agentopt.selectors.run.store",
    # the core
    "Objective": "agentopt.selectors.objective",
    "Problem": "agentopt.selectors.base",
    "Strategy": "agentopt.selectors.base",
    "Evaluator": "agentopt.selectors.base",
    "SelectionState": "agentopt.selectors.state",
    "run_selection": "agentopt.selectors.run.loop",
    "get_strategy": "agentopt.selectors.registry",
    "register": "agentopt.selectors.registry",
    "available": "agentopt.selectors.registry",
    "StoppingRule": "agentopt.selectors.stopping",
    "AnyOf": "agentopt.selectors.stopping",
    "BudgetUSD": "agentopt.selectors.stopping",
    "ConfidenceReached": "agentopt.selectors.stopping",
    "DataExhausted": "agentopt.selectors.stopping",
    "EpsilonReached": "agentopt.selectors.stopping",
    "MaxEvaluations": "agentopt.selectors.stopping",
    "ReplayEvaluator": "agentopt.selectors.replay",
    "run_replay": "agentopt.selectors.replay",
}

__all__ = [
    "AgentOptArmEliminationSelector",
    "AnyOf",
    "ArmResult",
    "AutoSelector",
    "BruteForceSelector",
    "BudgetUSD",
    "ConfidenceReached",
    "DataExhausted",
    "EpsilonReached",
    "Evaluator",
    "Executor",
    "LUCBSelector",
    "LiveEvaluator",
    "LocalExecutor",
    "MaxEvaluations",
    "ModelSelector",
    "Objective",
    "Problem",
    "RandomSearchSelector",
    "RayExecutor",
    "ReplayEvaluator",
    "SelectionResults",
    "SelectionState",
    "StoppingRule",
    "Strategy",
    "SuccessiveEliminationSelector",
    "SuccessiveHalvingSelector",
    "TopTwoThompsonSelector",
    "available",
    "get_store",
    "get_strategy",
    "register",
    "run_replay",
    "run_selection",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


if TYPE_CHECKING:  # pragma: no cover
    from agentopt.selectors.base import Evaluator, Problem, Strategy
    from agentopt.selectors.objective import Objective
    from agentopt.selectors.registry import available, get_strategy, register
    from agentopt.selectors.replay import ReplayEvaluator, run_replay
    from agentopt.selectors.results import ArmResult, SelectionResults
    from agentopt.selectors.run.evaluator import LiveEvaluator
    from agentopt.selectors.run.executor import Executor, LocalExecutor
    from agentopt.selectors.run.loop import run_selection
    from agentopt.selectors.run.ray_executor import RayExecutor
    from agentopt.selectors.run.store import get_store
    from agentopt.selectors.selector import (
        AgentOptArmEliminationSelector,
        AutoSelector,
        BruteForceSelector,
        LUCBSelector,
        ModelSelector,
        RandomSearchSelector,
        SuccessiveEliminationSelector,
        SuccessiveHalvingSelector,
        TopTwoThompsonSelector,
    )
    from agentopt.selectors.state import SelectionState
    from agentopt.selectors.stopping import (
        AnyOf,
        BudgetUSD,
        ConfidenceReached,
        DataExhausted,
        EpsilonReached,
        MaxEvaluations,
        StoppingRule,
    )
