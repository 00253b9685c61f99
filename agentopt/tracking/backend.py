"""The seam between an LLMTracker and where its calls are processed.

:class:`Backend` is what the tracker needs: a pipeline for HTTP calls, a
recorder for litellm's callbacks, the route state, the record store and the
cache. :class:`InProcessBackend` runs them all in this process. When
``AGENTOPT_GATEWAY_URL`` is set, the tracker builds a
:class:`~agentopt.tracking.remote.RemoteBackend` instead (the daemon of
``agentopt serve``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from agentopt.pricing import PriceBook
from agentopt.tracking.pipeline import Pipeline
from agentopt.tracking.providers import ProviderRegistry, ProviderSpec, Wire, default_registry
from agentopt.tracking.recorder import Recorder
from agentopt.tracking.routing import RouteState
from agentopt.tracking.storage.store import RecordStore, get_store

if TYPE_CHECKING:
    from agentopt.tracking.analytics.token_estimate import TokenEstimator
    from agentopt.tracking.storage.cache import ResponseCache

__all__ = ["Backend", "InProcessBackend"]


@runtime_checkable
class Backend(Protocol):
    """Where a tracker's calls are routed, cached, forwarded and recorded."""

    registry: ProviderRegistry
    store: RecordStore
    recorder: Recorder
    routes: RouteState

    def pipeline(self) -> Pipeline: ...

    def cache(self) -> ResponseCache | None: ...

    def register_provider(
        self, name: str, base_url: str, path_patterns: list[str] | tuple[str, ...], wire: Wire
    ) -> ProviderSpec: ...

    def flush(self) -> None: ...

    def clear_cache(self) -> None: ...

    def close(self) -> None: ...


class InProcessBackend:
    """Pipeline, store and cache in this process (the default)."""

    def __init__(
        self,
        *,
        cache: bool,
        cache_dir: str | Path | None,
        store: str | Path | RecordStore | None,
        redact: bool,
        price_book: PriceBook | None = None,
        registry: ProviderRegistry | None = None,
        estimate_tokens: bool = False,
    ) -> None:
        self.registry = registry or default_registry()
        self.store = get_store(store)
        self.estimator: TokenEstimator | None = None
        if estimate_tokens:
            from agentopt.tracking.analytics.token_estimate import TokenEstimator as Estimator

            self.estimator = Estimator(self.store)
        self.recorder = Recorder(
            self.store, redact=redact, price_book=price_book, estimator=self.estimator
        )
        self.routes = RouteState(self.store)
        self._want_cache = cache
        self._cache_dir = cache_dir
        self._cache: ResponseCache | None = None
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()

    def cache(self) -> ResponseCache | None:
        """The response cache, opened on first use (None when caching is off)."""
        if self._want_cache and self._cache is None:
            with self._lock:
                if self._cache is None:
                    from agentopt.tracking.storage.cache import ResponseCache

                    self._cache = ResponseCache(
                        None if self._cache_dir is None else Path(self._cache_dir)
                    )
        return self._cache

    def pipeline(self) -> Pipeline:
        p = self._pipeline
        if p is None:
            cache = self.cache()
            with self._lock:
                if self._pipeline is None:
                    self._pipeline = Pipeline(self.registry, self.recorder, self.routes, cache)
                p = self._pipeline
        return p

    def register_provider(
        self, name: str, base_url: str, path_patterns: list[str] | tuple[str, ...], wire: Wire
    ) -> ProviderSpec:
        return self.registry.register(name, base_url, path_patterns, wire=wire)

    def flush(self) -> None:
        self.store.flush()
        if self._cache is not None:
            self._cache.flush()

    def clear_cache(self) -> None:
        c = self.cache()
        if c is not None:
            c.clear()

    def close(self) -> None:
        if self.estimator is not None:
            self.estimator.close()  # counts what is queued first
        self.flush()
        if self._cache is not None:
            self._cache.close()
        self.store.close()
