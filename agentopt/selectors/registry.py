"""Strategies by name: ``get_strategy("auto")``, or pass your own class or instance.

Example::

    from agentopt.selectors.registry import available, get_strategy, register

    get_strategy("lucb", confidence=0.9)     # a new LUCBStrategy
    get_strategy(MyStrategy)                 # a new MyStrategy()
    get_strategy(MyStrategy(seed=1))         # that instance, as is
    register("mine", MyStrategy)             # now get_strategy("mine") works
"""

from __future__ import annotations

import importlib
from typing import Any

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Strategy

__all__ = ["available", "get_strategy", "register"]

# name → "module:Class", imported on first use
_BUILTIN: dict[str, str] = {
    "auto": "agentopt.selectors.auto:AutoStrategy",
    "brute_force": "agentopt.selectors.strategies.brute_force:BruteForceStrategy",
    "successive_elimination": (
        "agentopt.selectors.strategies.successive_elimination:SuccessiveEliminationStrategy"
    ),
    "lucb": "agentopt.selectors.strategies.lucb:LUCBStrategy",
    "top_two_thompson": "agentopt.selectors.strategies.top_two_thompson:TopTwoThompsonStrategy",
    "successive_halving": (
        "agentopt.selectors.strategies.successive_halving:SuccessiveHalvingStrategy"
    ),
    "random_search": "agentopt.selectors.strategies.random_search:RandomSearchStrategy",
    "agentopt_arm_elimination": (
        "agentopt.selectors.strategies.agentopt_arm_elimination:AgentOptArmEliminationStrategy"
    ),
    "matrix_ucb": "agentopt.selectors.strategies.matrix_ucb:MatrixUCBStrategy",
    "matrix_ucb_lrf": "agentopt.selectors.strategies.matrix_ucb_lrf:MatrixUCBLRFStrategy",
    "bayesian": "agentopt.selectors.strategies.bayesian:BayesianOptimizationStrategy",
}
# other names a method is known by: the published AgentOpt package calls its
# (unsound) successive elimination "arm_elimination"; ours is the sound one, `auto`
_ALIASES: dict[str, str] = {"arm_elimination": "auto"}
_REGISTERED: dict[str, type[Strategy]] = {}


def register(name: str, cls: type[Strategy]) -> None:
    """Make ``cls`` available as ``name`` (replacing a previous registration)."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"register({name!r}, ...): {cls!r} is not a Strategy subclass")
    _REGISTERED[name] = cls


def available() -> list[str]:
    """Every registered strategy name, built-in first."""
    return list(dict.fromkeys([*_BUILTIN, *_REGISTERED]))


def _lookup(name: str) -> type[Strategy]:
    name = _ALIASES.get(name, name) if name not in _REGISTERED else name
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = _BUILTIN.get(name)
    if target is None:
        raise ConfigError(f"unknown selection method {name!r}; available: {', '.join(available())}")
    module, attr = target.split(":")
    cls = getattr(importlib.import_module(module), attr)
    _REGISTERED.setdefault(name, cls)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"{target} is not a Strategy subclass")
    return cls


def get_strategy(method: str | Strategy | type[Strategy], **kwargs: Any) -> Strategy:
    """A strategy from a name, a Strategy subclass (instantiated with ``kwargs``) or
    an instance (returned as is; ``kwargs`` whose value is not None are an error)."""
    if isinstance(method, Strategy):
        extra = sorted(k for k, v in kwargs.items() if v is not None)
        if extra:
            raise ConfigError(
                f"options {', '.join(extra)} apply to a method name or class, "
                f"not to an instance of {type(method).__name__}"
            )
        return method
    if isinstance(method, type) and issubclass(method, Strategy):
        return method(**kwargs)
    if isinstance(method, str):
        return _lookup(method)(**kwargs)
    raise ConfigError(
        f"method must be a name, a Strategy subclass or instance, not {type(method).__name__}"
    )
