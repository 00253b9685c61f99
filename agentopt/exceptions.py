"""The one exception hierarchy of agentopt.

Every error agentopt raises on purpose is an :class:`AgentOptError`. Lower-level
errors (httpx, sqlite, litellm, YAML) are translated at the boundary, keeping the
original as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "AgentOptError",
    "BudgetExhaustedError",
    "CacheError",
    "ConfigError",
    "DataError",
    "EvaluationError",
    "EvaluationsFailedError",
    "NotBuiltError",
    "PricingError",
    "ProviderError",
    "RoutingError",
    "RoutingWarning",
    "SelectionError",
    "SimulatorError",
    "StoreError",
    "TrackingError",
]


class AgentOptError(Exception):
    """Base class of every error agentopt raises on purpose."""


class ConfigError(AgentOptError, ValueError):
    """A configuration, argument or file the user gave is invalid."""


class DataError(AgentOptError, ValueError):
    """A dataset or a recorded table is malformed (says which file, row, column)."""


class PricingError(AgentOptError):
    """A price file or price entry is malformed."""


class TrackingError(AgentOptError):
    """The tracker could not be started, or was used in a wrong state."""


class StoreError(TrackingError):
    """The record store failed to read or write."""


class CacheError(TrackingError):
    """The response cache failed to read or write."""


class ProviderError(AgentOptError):
    """An upstream provider answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RoutingError(AgentOptError):
    """A router could not choose a model."""


class RoutingWarning(UserWarning):
    """Router feedback that was ignored or matched nothing (the router says why)."""


class BudgetExhaustedError(RoutingError):
    """Every candidate is over its quota or budget and the router was told to raise."""


class SelectionError(AgentOptError):
    """A model selection could not run or could not produce a result."""


class EvaluationError(SelectionError):
    """Running the agent or the ``eval_fn`` on one datapoint failed."""


class EvaluationsFailedError(EvaluationError):
    """Every evaluation of a selection failed: its agent or ``eval_fn`` is broken.

    Raised after the first few evaluations (not after the whole run was paid for);
    ``first_error`` is the first failure's message, ``observations`` how many
    failed observations were kept (they are in the store, never dropped).
    """

    def __init__(self, message: str, *, first_error: str, observations: int) -> None:
        super().__init__(message)
        self.first_error = first_error
        self.observations = observations


class SimulatorError(AgentOptError):
    """The simulated provider was misconfigured (bad world file, bad port)."""


class NotBuiltError(AgentOptError):
    """A feature that is announced but not built yet was asked for."""
