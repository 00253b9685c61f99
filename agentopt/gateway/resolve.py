"""Model names → where a call goes: aliases, ``provider/model``, bare names.

- An **alias** (``smart``) stands for several ``provider/model`` targets; its
  router (any registered router, or ``fallback`` for an ordered chain) picks one.
- ``provider/model`` names a configured provider (``openai/gpt-4o-mini``,
  ``anthropic/claude-sonnet-4-6``, ``vllm/meta-llama/Llama-3.1-8B``).
- A **bare name** goes to the provider litellm's price map names for it
  (``claude-haiku-4-5`` → anthropic), else to the provider of the caller's
  wire format.

The daemon forwards only to providers in its registry: an unknown provider is
an error naming the ones it knows.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentopt.exceptions import ConfigError
from agentopt.gateway.config import AliasConfig
from agentopt.routers.base import Router
from agentopt.routers.context import RouteContext
from agentopt.tracking.providers import ProviderRegistry, ProviderSpec

__all__ = ["Alias", "FallbackRouter", "GatewayError", "Target", "provider_of"]

log = logging.getLogger("agentopt.gateway")

#: The wire format each official provider speaks, for bare names.
_WIRE_PROVIDER = {"openai": "openai", "anthropic": "anthropic"}


class GatewayError(Exception):
    """A call the daemon refuses, with the HTTP status the caller gets."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class FallbackRouter(Router):
    """An ordered chain: the first target that is not excluded or exhausted.
    The daemon tries the next one when a target fails."""

    name = "fallback"

    def _choose(self, ctx: RouteContext, allowed: list[str]) -> str:
        return allowed[0]


@dataclass(frozen=True, slots=True)
class Target:
    """One place a call can go: ``choice`` (``provider/model``) at ``spec``."""

    choice: str
    spec: ProviderSpec
    model: str


@functools.lru_cache(maxsize=1)
def _price_map_providers() -> dict[str, str]:
    from agentopt.pricing.book import litellm_price_map_path

    path = litellm_price_map_path()
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {
        k: v["litellm_provider"]
        for k, v in raw.items()
        if isinstance(v, dict) and isinstance(v.get("litellm_provider"), str)
    }


def provider_of(model: str) -> str | None:
    """The provider litellm's price map names for a bare model, or None."""
    found = _price_map_providers().get(model)
    if found is None and "-20" in model:  # a dated snapshot: claude-3-5-haiku-20241022
        found = _price_map_providers().get(model.rsplit("-20", 1)[0])
    return found


def resolve_name(name: str, wire: str, registry: ProviderRegistry) -> Target:
    """The target of a model name (not an alias) called in ``wire`` format."""
    prefix, sep, rest = name.partition("/")
    if sep and rest:
        spec = registry.by_name(prefix)
        if spec is None:
            raise GatewayError(
                400,
                f"model {name!r}: no provider {prefix!r} is configured; known providers: "
                f"{', '.join(sorted(registry.names()))} (add one under `providers:` in the config)",
            )
        if spec.wire not in ("openai", "anthropic"):
            raise GatewayError(400, f"model {name!r}: the {spec.wire} wire is not served")
        return Target(name, spec, rest)
    owner = provider_of(name)
    spec = registry.by_name(owner) if owner else None
    if spec is None or spec.wire not in ("openai", "anthropic"):
        spec = registry.by_name(_WIRE_PROVIDER[wire])
    if spec is None:  # pragma: no cover - the daemon always registers both
        raise GatewayError(400, f"model {name!r}: no provider serves the {wire} wire")
    return Target(f"{spec.name}/{name}", spec, name)


class Alias:
    """A configured alias: its targets and its router (state saved in ``state_path``)."""

    def __init__(
        self,
        name: str,
        config: AliasConfig,
        registry: ProviderRegistry,
        state_path: Path | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.targets = {t: resolve_name(t, "openai", registry) for t in config.targets}
        self.router = _make_router(name, config)
        self.router_name = config.router
        self.state_path = state_path
        self._lock = threading.Lock()
        if state_path is not None and state_path.is_file():
            self.restore()

    def choose(self, body: Any, ids: dict[str, str | None]) -> list[Target]:
        """The targets to try, in order: the router's choice first, then (for a
        fallback chain) the others in configured order."""
        ctx = RouteContext.for_call(
            self.name,
            body if isinstance(body, dict) else None,
            provider=None,
            data_id=ids.get("data_id"),
            combo_id=ids.get("combo_id"),
            agent_id=ids.get("agent_id"),
            session_id=ids.get("session_id"),
        )
        choice = self.router.route(ctx)
        if choice is None:
            raise GatewayError(
                429,
                f"alias {self.name!r}: every target is over its quota or budget",
                kind="rate_limit_error",
            )
        first = self.targets.get(choice)
        if first is None:
            raise GatewayError(500, f"alias {self.name!r}: router chose {choice!r}, not a target")
        if self.router_name != "fallback":
            return [first]
        return [first, *(t for c, t in self.targets.items() if c != choice)]

    def save(self) -> None:
        if self.state_path is None:
            return
        with self._lock:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_name(f".{self.state_path.name}.{threading.get_ident()}")
            tmp.write_text(json.dumps(self.router.state_dict()), encoding="utf-8")
            tmp.replace(self.state_path)

    def restore(self) -> None:
        assert self.state_path is not None
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            self.router.load_state_dict(state)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning(
                "agentopt gateway: alias %r: saved router state %s not restored (%s); "
                "starting fresh",
                self.name,
                self.state_path,
                exc,
            )
            self.router = _make_router(self.name, self.config)


def _make_router(name: str, config: AliasConfig) -> Router:
    from agentopt.routers.registry import get_router

    opts = {"on_exhausted": "keep", **config.options}
    try:
        if config.router == "fallback":
            return FallbackRouter(config.targets, **opts)
        return get_router(config.router, candidates=config.targets, **opts)
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"alias {name!r}: cannot build router {config.router!r}: {exc}") from exc
