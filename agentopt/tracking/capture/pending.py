"""One litellm call between its start and its record (see :mod:`litellm_capture`).

The litellm front-end records every call itself, on the caller's side, before
the caller gets its answer: a whole response when ``completion`` returns, a
stream when the caller reaches its end (or leaves it), a failure when the
call raises. Nothing waits for litellm's logging thread, so a reader that
looks at the records right after a call returns finds it there.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from agentopt.tracking.pipeline import Pipeline
from agentopt.tracking.recorder import Exchange, usage_or_unknown
from agentopt.tracking.wire.sse import StreamParser
from agentopt.tracking.wire.wire_formats import is_content_event

__all__ = ["PendingCall"]

log = logging.getLogger("agentopt.tracking")

ABANDONED = "stream ended early: the caller stopped reading before the end"
TRUNCATED = "stream truncated: upstream closed before the terminal event"


@dataclass(slots=True)
class PendingCall:
    """A litellm call routed and tagged, not recorded yet."""

    pipeline: Pipeline
    exchange: Exchange
    started: float = field(default_factory=time.perf_counter)
    cache_key: str | None = None
    strip_usage: bool = False  # the caller did not ask for the usage chunk we asked for
    first_content: float | None = None  # perf_counter of the first content chunk
    first_chunk: float | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)
    # litellm said, at some chunk, that the provider sent a finish reason. Sampled
    # as the stream is read: litellm overwrites its own field on later chunks
    # (Gemini's trailing chunks, for one), so the value at the end can be None.
    provider_finished: bool = False
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _claim(self) -> bool:
        with self.lock:
            if self.done:
                return False
            self.done = True
            return True

    def overhead(self, hidden: Any) -> float:
        """Seconds litellm itself spent before and after the provider's answer
        (first-call set-up included), as litellm reports it; 0 when it does not."""
        ms = hidden.get("litellm_overhead_time_ms") if isinstance(hidden, dict) else None
        return float(ms) / 1000.0 if isinstance(ms, int | float) and ms > 0 else 0.0

    # -- outcomes ----------------------------------------------------------------

    def returned(self, result: Any) -> None:
        """A whole response came back: record it, and cache it when it can be replayed."""
        if not self._claim():
            return
        elapsed = time.perf_counter() - self.started
        try:
            from agentopt.tracking.capture.litellm_streams import body_of, usage_of

            usage, model, reported = usage_of(result)
            body = body_of(result)
            hidden = getattr(result, "_hidden_params", None)
            hidden = hidden if isinstance(hidden, dict) else {}
            ex = self.exchange
            ex.provider = hidden.get("custom_llm_provider") or ex.provider
            ex.url = str(hidden.get("api_base") or ex.url)
            rec = self.pipeline.recorder.record(
                ex,
                status_code=200,
                model=model or ex.model,
                usage=usage_or_unknown(usage, reported, 200),
                response_body=body,
                latency_seconds=max(0.0, elapsed - self.overhead(hidden)),
            )
            if rec.usage_known and body is not None:
                self._store(json.dumps(body).encode(), streamed=False, model=rec.model, rec=rec)
        except Exception:
            log.exception("agentopt: could not record a litellm call")

    def failed(self, exc: BaseException) -> None:
        """The call raised: record the failure at once (litellm may not report it)."""
        if not self._claim():
            return
        try:
            status = getattr(exc, "status_code", None)
            self.pipeline.recorder.record(
                self.exchange,
                status_code=status if isinstance(status, int) else None,
                model=self.exchange.model,
                usage=None if self.first_chunk is not None else _zero(),
                response_body=self._assembled()[1] if self.chunks else None,
                latency_seconds=max(0.0, time.perf_counter() - self.started),
                ttft_seconds=self._ttft(),
                first_byte_seconds=self._first_byte(),
                error=f"{type(exc).__name__}: {exc}",
            )
        except Exception:
            log.exception("agentopt: could not record a failed litellm call")

    def chunk(self, chunk: Any, stream: Any = None) -> None:
        """One chunk of ``stream`` (litellm's wrapper) went to the caller."""
        now = time.perf_counter()
        if not self.provider_finished and _provider_finished(stream):
            self.provider_finished = True
        if self.first_chunk is None:
            self.first_chunk = now
        dump = getattr(chunk, "model_dump", None)
        obj = dump(mode="json", exclude_none=True) if dump is not None else chunk
        if not isinstance(obj, dict):
            return
        self.chunks.append(obj)
        if self.first_content is None and is_content_event("openai", obj):
            self.first_content = now

    def stream_over(self, stream: Any, *, complete: bool) -> None:
        """The caller reached the end of the stream (``complete``) or left it."""
        if not self._claim():
            return
        try:
            hidden = getattr(stream, "_hidden_params", None)
            hidden = hidden if isinstance(hidden, dict) else {}
            ex = self.exchange
            ex.provider = getattr(stream, "custom_llm_provider", None) or ex.provider
            ex.url = str(hidden.get("api_base") or ex.url)
            parsed, body = self._assembled(complete)
            error = parsed.error
            # litellm ends a cut stream quietly, with a finish reason and usage of
            # its own making: it is truncated if the provider sent no finish reason
            # at any point (and litellm is a wrapper that tracks finish reasons).
            cut = complete and not self.provider_finished and _provider_finished(stream) is False
            if cut:
                error = TRUNCATED
            elif not complete and error is None:
                error = ABANDONED
            known = parsed.usage_found and not cut and complete
            setup = self.overhead(hidden)  # litellm's own time before the stream came back
            rec = self.pipeline.recorder.record(
                ex,
                status_code=200,
                model=parsed.model or ex.model,
                usage=parsed.usage if known else None,
                response_body=body,
                latency_seconds=max(0.0, time.perf_counter() - self.started - setup),
                ttft_seconds=self._ttft(setup),
                first_byte_seconds=self._first_byte(setup),
                error=error,
            )
            if complete and error is None and rec.usage_known:
                sse = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in self.chunks)
                self._store(sse + b"data: [DONE]\n\n", streamed=True, model=rec.model, rec=rec)
        except Exception:
            log.exception("agentopt: could not record a litellm stream")

    # -- helpers -------------------------------------------------------------------

    def _assembled(self, complete: bool = False) -> tuple[Any, Any]:
        parser = StreamParser("openai")
        for obj in self.chunks:
            parser.feed_event(None, obj)
        parsed = parser.finish(complete=complete)
        return parsed, parsed.body

    def _ttft(self, setup: float = 0.0) -> float | None:
        if self.first_content is None:
            return None
        return max(0.0, self.first_content - self.started - setup)

    def _first_byte(self, setup: float = 0.0) -> float | None:
        if self.first_chunk is None:
            return None
        return max(0.0, self.first_chunk - self.started - setup)

    def _store(self, body: bytes, *, streamed: bool, model: str | None, rec: Any) -> None:
        cache = self.pipeline.cache
        if cache is None or self.cache_key is None:
            return
        from agentopt.tracking.storage.cache import CachedResponse

        try:
            cache.put(
                self.cache_key,
                CachedResponse(
                    status_code=200,
                    headers=[
                        ("content-type", "text/event-stream" if streamed else "application/json")
                    ],
                    body=body,
                    streamed=streamed,
                    latency_seconds=rec.latency_seconds,
                    ttft_seconds=rec.ttft_seconds,
                    model=model,
                    created_at=time.time(),
                ),
            )
        except Exception:
            log.exception("agentopt: could not write the response cache")


def _provider_finished(stream: Any) -> bool | None:
    """Whether the provider itself sent a finish reason (None: cannot tell)."""
    if not hasattr(stream, "received_finish_reason"):
        return None
    return bool(
        getattr(stream, "received_finish_reason", None)
        or getattr(stream, "intermittent_finish_reason", None)
    )


def _zero() -> Any:
    from agentopt.records import Usage

    return Usage()
