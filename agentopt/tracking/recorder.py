"""The Recorder: one exchange (request, answer, timing) → one CallRecord.

Every front-end (httpx transport, litellm wrapper, gateway) ends here, so a
record means the same thing whoever caught the call: usage parsed from the
body or the stream, cost from the PriceBook (None when unpriced or when the
usage is unknown, 0 on a cache hit), headers never kept, message content
dropped when ``redact=True``. Usage a front-end could not learn is passed as
None: the record then says ``usage_known=False`` and costs None, never $0.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentopt.pricing import PriceBook, default_price_book
from agentopt.records import PARSE_FAILED, CallRecord, Usage, utc_now_iso
from agentopt.tracking.redact import scrub_body, scrub_url
from agentopt.tracking.session import SessionInfo
from agentopt.tracking.storage.store import RecordStore

if TYPE_CHECKING:
    from agentopt.tracking.analytics.token_estimate import TokenEstimator

__all__ = ["Exchange", "Recorder", "usage_or_unknown"]

log = logging.getLogger("agentopt.tracking")

_FIELDS = frozenset(CallRecord.model_fields)
_setattr = object.__setattr__
_STR_FIELDS = ("session_id", "provider", "requested_model", "model", "request_url", "error")


def _new_id() -> str:
    """A random version-4 UUID as 32 hex digits (what ``uuid.uuid4().hex`` gives,
    at a fraction of its cost: this runs for every record)."""
    n = int.from_bytes(os.urandom(16), "big")
    return f"{(n & _UUID_KEEP) | _UUID_V4:032x}"


_UUID_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)


_NO_USAGE = Usage()


def usage_or_unknown(usage: Usage, reported: bool, status_code: int | None) -> Usage | None:
    """The usage to record: ``usage`` when the provider reported it; when it did
    not, None (unknown) for an answer that may have been billed (a 2xx/3xx), and
    zero for no answer or an HTTP error (providers do not bill those)."""
    if reported:
        return usage
    if status_code is None or status_code >= 400:
        return usage
    return None


def _id_str(v: object) -> str | None:
    """Session ids as records store them (``CallRecord`` coerces ints to str)."""
    return v if v is None or type(v) is str else str(v)


def _trusted_record(values: dict[str, Any]) -> CallRecord:
    """A ``CallRecord`` from values the recorder built itself, with every field
    set and already of its declared type, without pydantic's per-field
    validation (the hot path of every tracked call). Values of any other type
    (a front-end handing over something odd) go through validation as before."""
    for name in _STR_FIELDS:
        v = values[name]
        if v is not None and type(v) is not str:
            return CallRecord(**values)
    code = values["status_code"]
    if code is not None and type(code) is not int:
        return CallRecord(**values)
    rec = object.__new__(CallRecord)
    _setattr(rec, "__dict__", values)
    _setattr(rec, "__pydantic_fields_set__", _FIELDS)
    _setattr(rec, "__pydantic_extra__", None)
    _setattr(rec, "__pydantic_private__", None)
    return rec


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
    alias: str | None = None  # the gateway alias the call was made under


class Recorder:
    """Builds records and appends them to the store; tells the router."""

    def __init__(
        self,
        store: RecordStore,
        *,
        redact: bool = False,
        price_book: PriceBook | None = None,
        estimator: TokenEstimator | None = None,
    ) -> None:
        self.store = store
        self.redact = redact
        #: counts each call's tokens independently, off the call's path
        self.estimator = estimator
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
        usage: Usage | None,
        response_body: Any,
        latency_seconds: float,
        ttft_seconds: float | None = None,
        first_byte_seconds: float | None = None,
        cached: bool = False,
        error: str | None = None,
        cost_usd: float | None = None,
        priced: bool = False,
    ) -> CallRecord:
        """Make the record of ``ex``, append it, and tell listeners and the router.

        ``priced=True`` takes ``cost_usd`` as given (litellm's own price).
        ``usage=None`` means the usage is unknown (see :func:`usage_or_unknown`):
        the cost is then None (0 on a cache hit: nothing was paid)."""
        answered = model if model else ex.model
        known = usage is not None
        if usage is None:
            usage = _NO_USAGE
        if cached:
            cost: float | None = 0.0
        elif not known:
            cost = None
        elif priced:
            cost = cost_usd
        else:
            cost = self.price(answered, ex.model, usage)
        session = ex.session
        redact = self.redact
        rec = _trusted_record(
            {
                "call_id": ex.call_id or _new_id(),
                "session_id": session.session_id if session else None,
                "data_id": _id_str(session.data_id) if session else None,
                "combo_id": _id_str(session.combo_id) if session else None,
                "agent_id": _id_str(session.agent_id) if session else None,
                "alias": getattr(ex, "alias", None) or getattr(session, "alias", None),
                "request_id": getattr(session, "request_id", None),
                "attempt": getattr(session, "attempt", None),
                "provider": ex.provider,
                "requested_model": ex.requested_model,
                "model": answered,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cached_tokens": usage.cached_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
                "latency_seconds": float(latency_seconds),
                "ttft_seconds": None if ttft_seconds is None else float(ttft_seconds),
                "first_byte_seconds": (
                    None if first_byte_seconds is None else float(first_byte_seconds)
                ),
                "usage_known": known,
                "cost_usd": None if cost is None else float(cost),
                "request_url": scrub_url(ex.url),
                "request_body": scrub_body(ex.request_body, redact=redact),
                "response_body": scrub_body(response_body, redact=redact),
                "status_code": status_code,
                "timestamp": utc_now_iso(),
                "cached": cached,
                "error": error,
                "stream": ex.stream,
                "estimated_input_tokens": None,
                "estimated_output_tokens": None,
            }
        )
        self.store.append(rec)
        if self.estimator is not None:  # the unredacted bodies: counted, never stored
            self.estimator.submit(rec, ex.request_body, response_body)
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
