"""Routers by name: ``get_router("thompson", candidates=[...])``.

The registry maps names to :class:`Router` subclasses; :func:`get_router`
also accepts a class or a ready instance, so every API that takes a router
takes any of the three. Users add their own with :func:`register_router`.

A *policy string* names a router class for the wire: a registered name, or
``"module:Class"`` (:func:`resolve_policy`); :meth:`Router.config` gives
``{"policy": ..., "kwargs": {...}}`` and :func:`router_from_config` rebuilds it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from agentopt.exceptions import ConfigError
from agentopt.routers.base import Router

__all__ = [
    "available_routers",
    "get_router",
    "policy_name",
    "register_router",
    "resolve_policy",
    "router_class",
    "router_from_config",
]

_REGISTRY: dict[str, type[Router]] = {}
_BUILTIN_MODULES = (
    "agentopt.routers.bandits",
    "agentopt.routers.cost_aware",
    "agentopt.routers.contextual",
    "agentopt.routers.factored",
    "agentopt.routers.prompt",
    "agentopt.routers.mabwiser_router",
)
_loaded = False
T = TypeVar("T", bound=type[Router])


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)


@overload
def register_router(name: str, cls: T) -> T: ...
@overload
def register_router(name: str, cls: None = None) -> Callable[[T], T]: ...
def register_router(name: str, cls: T | None = None) -> T | Callable[[T], T]:
    """Register a Router subclass under ``name`` (also usable as a decorator).
    Re-registering a name replaces it."""

    def deco(c: T) -> T:
        if not (isinstance(c, type) and issubclass(c, Router)):
            raise ConfigError(f"register_router({name!r}): {c!r} is not a Router subclass")
        key = _norm(name)
        if not key:
            raise ConfigError("register_router: the name is empty")
        c.name = key
        _REGISTRY[key] = c
        return c

    return deco if cls is None else deco(cls)


def router_class(name: str) -> type[Router]:
    """The class registered under ``name``; :class:`ConfigError` lists the names."""
    _load_builtins()
    cls = _REGISTRY.get(_norm(name))
    if cls is None:
        raise ConfigError(f"unknown router {name!r}; available: {', '.join(available_routers())}")
    return cls


def available_routers() -> list[str]:
    """Every registered name, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_router(router: str | Router | type[Router], /, **kwargs: Any) -> Router:
    """A router from a name, a class (both built with ``kwargs``) or an instance
    (returned as is; passing ``kwargs`` with an instance is an error)."""
    if isinstance(router, Router):
        if kwargs:
            raise ConfigError(
                f"get_router: got a {type(router).__name__} instance and arguments "
                f"{sorted(kwargs)}; configure the instance instead"
            )
        return router
    if isinstance(router, type) and issubclass(router, Router):
        return router(**kwargs)
    if isinstance(router, str):
        return router_class(router)(**kwargs)
    raise ConfigError(f"get_router: expected a name, a Router class or instance, got {router!r}")


def policy_name(cls: type[Router]) -> str:
    """The policy string of a router class: its registered name, else
    ``"module:Class"``."""
    _load_builtins()
    key = _norm(getattr(cls, "name", "") or "")
    if key and _REGISTRY.get(key) is cls:
        return key
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_policy(policy: str) -> type[Router]:
    """The router class a policy string names: a registered name (``"random"``),
    or ``"module:Class"``, imported with :mod:`importlib` (a module ``agentopt
    serve --policy-module`` loaded, or any module on the path)."""
    if not isinstance(policy, str) or not policy.strip():
        raise ConfigError(f"policy must be a router name or 'module:Class', got {policy!r}")
    module_name, sep, qualname = policy.strip().partition(":")
    if not sep:
        return router_class(policy)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"policy {policy!r}: cannot import module {module_name!r} ({exc}); load its file "
            "with 'agentopt serve --policy-module FILE' or put it on the PYTHONPATH"
        ) from exc
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"policy {policy!r}: module {module_name!r} has no {qualname!r}")
    if not (isinstance(obj, type) and issubclass(obj, Router)):
        raise ConfigError(f"policy {policy!r}: {obj!r} is not a Router subclass")
    return obj


def router_from_config(config: Mapping[str, Any]) -> Router:
    """A router rebuilt from :meth:`Router.config` output,
    ``{"policy": name or "module:Class", "kwargs": {...}}``, by the class's
    ``from_config(**kwargs)``."""
    if not isinstance(config, Mapping) or not isinstance(config.get("policy"), str):
        raise ConfigError(
            f"a router config is {{'policy': name or 'module:Class', 'kwargs': {{...}}}}, "
            f"got {config!r}"
        )
    unknown = sorted(set(config) - {"policy", "kwargs"})
    if unknown:
        raise ConfigError(f"router config: unknown keys {unknown} (expected policy, kwargs)")
    kwargs = config.get("kwargs")
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ConfigError(f"router config: 'kwargs' must be an object, got {kwargs!r}")
    policy = config["policy"]
    cls = resolve_policy(policy)
    try:
        return cls.from_config(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"policy {policy!r}: cannot build it from kwargs {dict(kwargs)}: {exc}"
        ) from exc
