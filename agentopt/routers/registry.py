"""Routers by name: ``get_router("thompson", candidates=[...])``.

The registry maps names to :class:`Router` subclasses; :func:`get_router`
also accepts a class or a ready instance, so every API that takes a router
takes any of the three. Users add their own with :func:`register_router`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar, overload

from agentopt.exceptions import ConfigError
from agentopt.routers.base import Router

__all__ = ["available_routers", "get_router", "register_router", "router_class"]

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
