"""Routing policies of ``agentopt serve``: policy files and the daemon-wide default.

``--policy-module FILE`` imports a plain Python file of :class:`Router`
subclasses at startup, as the module named after the file's stem, so that the
policy string ``"<stem>:Class"`` (what :meth:`Router.config` gives for a class
defined there) resolves when a client opens a session with that router.
``--routing-policy NAME --candidate-models A,B [--seed N]`` builds the router
that routes every call no alias, session router or client router decided.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agentopt.exceptions import ConfigError

if TYPE_CHECKING:
    from types import ModuleType

    from agentopt.routers.base import Router

__all__ = ["default_policy", "load_policy_module"]


def load_policy_module(path: str | Path) -> ModuleType:
    """Import ``path`` as module ``<file stem>`` (once; a second load of the same
    file returns the module). A file that is missing, shadows the standard
    library or another imported module, or raises while importing, is a
    :class:`ConfigError` that names it: the daemon does not start."""
    p = Path(path)
    where = f"--policy-module {path}"
    if not p.is_file():
        raise ConfigError(f"{where}: no such file")
    stem = p.stem
    if not stem.isidentifier():
        raise ConfigError(f"{where}: {stem!r} is not a valid module name; rename the file")
    if stem in sys.stdlib_module_names:
        raise ConfigError(
            f"{where}: {stem!r} would shadow the standard library module of that name; "
            "rename the file"
        )
    existing = sys.modules.get(stem)
    if existing is not None:
        origin = getattr(existing, "__file__", None)
        if origin is not None and Path(origin).resolve() == p.resolve():
            return existing
        raise ConfigError(
            f"{where}: a module named {stem!r} is already imported ({origin or 'built in'}); "
            "rename the file"
        )
    spec = importlib.util.spec_from_file_location(stem, p)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{where}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[stem] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(stem, None)
        raise ConfigError(f"{where}: importing it failed: {type(exc).__name__}: {exc}") from exc
    return module


def default_policy(
    policy: str | None, candidate_models: str | None, seed: int | None
) -> Router | None:
    """The daemon-wide default router of ``--routing-policy`` (a router name or
    ``module:Class``), built with ``candidates`` from ``--candidate-models`` and
    ``seed``; None without ``--routing-policy``."""
    candidates = [m.strip() for m in (candidate_models or "").split(",") if m.strip()]
    if policy is None:
        if candidate_models is not None:
            raise ConfigError(
                "--candidate-models needs --routing-policy (e.g. --routing-policy random)"
            )
        if seed is not None:
            raise ConfigError("--seed needs --routing-policy (it seeds that policy)")
        return None
    from agentopt.routers.base import Router
    from agentopt.routers.registry import resolve_policy, router_from_config

    cls = resolve_policy(policy)
    kwargs: dict[str, object] = {}
    if candidates:
        kwargs["candidates"] = candidates
    elif issubclass(cls, Router) and "candidates" in _init_parameters(cls):
        raise ConfigError(
            f"--routing-policy {policy}: give the models it picks from with "
            "--candidate-models M1,M2"
        )
    if seed is not None:
        kwargs["seed"] = seed
    return router_from_config({"policy": policy, "kwargs": kwargs})


def _init_parameters(cls: type) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return set()
