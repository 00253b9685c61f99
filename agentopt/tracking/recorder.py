"""The Recorder: one exchange (request, answer, timing) → one CallRecord.

Every front-end (httpx transport, litellm logger, gateway) ends here, so a
record means the same thing whoever caught the call: usage parsed from the
body or the stream, cost from the PriceBook (None when unpriced, 0 on a cache
hit), headers never kept, message content dropped when ``redact=True``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentopt.pricing import PriceBook, default_price_book
from agentopt.records import PARSE_FAILED, CallRecord, Usage
from agentopt.tracking.redact import scrub_body, scrub_url
from agentopt.tracking.session import SessionInfo
from agentopt.tracking.store import RecordStore

__all__ = ["Exchange", "Recorder"]

log = logging.getLogger("agentopt.tracking")


@dataclass(slots=True)
class Exchange:
    """What the pipeline knows about one call before the answer arrives."""

    provider: str | None
    wire: str
    url: str
    request_body: Any
    requested_model: str | None
    model: str | None
    stream: bool
    session: SessionInfo | None
    call_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Builds records and appends them to the store; tells the router."""

    def __init__(
        self,
        store: RecordStore,
        *,
        redact: bool = False,
        price_book: PriceBook | None = None,
    ) -> None:
        self.store = store
        self.redact = redact
        self.price_book = price_book or default_price_book()
        self._listeners: list[Callable[[CallRecord], None]] = []
        self._lock = threading.Lock()

    def add_listener(self, fn: Callable[[CallRecord], None]) -> None:
        """Call ``fn(record)`` after each append (errors are logged, not raised)."""
        with self._lock:
            self._listeners = [*self._listeners, fn]

    def price(self, model: str | None, fallback: str | None, usage: Usage) -> float | None:
        """The cost of ``usage``: priced by the answering model, else by the
        model that was asked for; None when neither has a price."""
        for name in (model, fallback):
            if not name or name == PARSE_FAILED:
                continue
            cost = self.price_book.cost(
                name,
                usage.prompt_tokens,
                usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            )
            if cost.known:
                return cost.usd
        return None

    def record(
        self,
        ex: Exchange,
        *,
        status_code: int | None,
        model: str | None,
        usage: Usage,
        response_body: Any,
        latency_seconds: float,
        ttft_seconds: float | None = None,
        cached: bool = False,
        error: str | None = None,
        cost_usd: float | None = None,
        priced: bool = False,
    ) -> CallRecord:
        """Make the record of ``ex``, append it, and tell listeners and the router.

        ``priced=True`` takes ``cost_usd`` as given (litellm's own price)."""
        answered = model if model else ex.model
        if cached:
            cost: float | None = 0.0
        elif priced:
            cost = cost_usd
        else:
            cost = self.price(answered, ex.model, usage)
        session = ex.session
        kw: dict[str, Any] = {}
        if ex.call_id:
            kw["call_id"] = ex.call_id
        rec = CallRecord(
            session_id=session.session_id if session else None,
            data_id=session.data_id if session else None,
            combo_id=session.combo_id if session else None,
            agent_id=session.agent_id if session else None,
            provider=ex.provider,
            requested_model=ex.requested_model,
            model=answered,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            latency_seconds=latency_seconds,
            ttft_seconds=ttft_seconds,
            cost_usd=cost,
            request_url=scrub_url(ex.url),
            request_body=scrub_body(ex.request_body, redact=self.redact),
            response_body=scrub_body(response_body, redact=self.redact),
            status_code=status_code,
            cached=cached,
            error=error,
            stream=ex.stream,
            **kw,
        )
        self.store.append(rec)
        for fn in self._listeners:
            try:
                fn(rec)
            except Exception:  # a listener must never break the caller's call
                log.exception("agentopt: record listener failed")
        router = session.router if session else None
        observe = getattr(router, "observe", None)
        if observe is not None:
            try:
                observe(rec)
            except Exception:
                log.exception("agentopt: router.observe failed")
        return rec
