"""An independent count of each call's tokens, kept beside the provider's usage.

A provider bills the usage it reports; to check an invoice, each record can
carry a second figure: :func:`estimate` counts the request's messages and the
answer's text with litellm's tokenizer-based ``token_counter`` (tiktoken for
OpenAI models, the model's own tokenizer where litellm has one, an
approximation otherwise). A chat template adds a few tokens per message, so a
reported figure a little above the estimate is normal; far from it is worth a look.

:class:`TokenEstimator` does this off the call's path: the recorder hands it
the record and the bodies *before* redaction (so ``redact: true`` stores no
content and still keeps the count) and returns at once; a background thread
has them counted — by a child process at a lower priority
(:mod:`agentopt.tracking.analytics.token_worker`), so the counting never holds
the GIL of the process serving calls; ``in_process=True`` counts in the thread —
sets ``estimated_input_tokens`` / ``estimated_output_tokens`` on the
record, and, for a SQL store that already wrote the record, updates its row
(``set_estimates``). litellm is imported by that thread, never by ``import
agentopt``. A call that is not comparable (failed, cache hit, usage unknown, a
body the tokenizer cannot read) keeps None. When calls arrive faster than it
counts, at most ``max_pending`` wait; the rest are left uncounted (None), and
:attr:`TokenEstimator.skipped` says how many.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from agentopt.records import CallRecord
from agentopt.tracking.analytics.token_worker import TokenWorker, WorkerFailed, shared_worker
from agentopt.tracking.redact import REDACTED

__all__ = ["TokenEstimator", "answer_text", "estimate", "request_messages"]

log = logging.getLogger("agentopt.tracking")

_setattr = object.__setattr__


def request_messages(body: Any) -> list[dict[str, Any]] | None:
    """The request as chat messages (OpenAI chat, Anthropic messages, Responses input)."""
    if not isinstance(body, Mapping) or _redacted(body):
        return None
    out: list[dict[str, Any]] = []
    system = body.get("system") or body.get("instructions")
    if isinstance(system, str):
        out.append({"role": "system", "content": system})
    elif isinstance(system, list):
        text = " ".join(str(b.get("text", "")) for b in system if isinstance(b, Mapping))
        out.append({"role": "system", "content": text})
    msgs = body.get("messages")
    if msgs is None:
        inp = body.get("input")
        if isinstance(inp, str):
            msgs = [{"role": "user", "content": inp}]
        elif isinstance(inp, list):
            msgs = inp
    if not isinstance(msgs, list):
        return None
    for m in msgs:
        if not isinstance(m, Mapping):
            return None
        content = m.get("content")
        if isinstance(content, list):  # content blocks: count their text
            content = " ".join(
                str(b.get("text") or b.get("input_text") or "")
                for b in content
                if isinstance(b, Mapping)
            )
        out.append({"role": str(m.get("role") or "user"), "content": content or ""})
    return out


def answer_text(body: Any) -> str | None:
    """The text (and tool-call arguments) of a response of any supported wire format."""
    if not isinstance(body, Mapping) or _redacted(body):
        return None
    parts: list[str] = []
    for choice in body.get("choices") or []:
        if isinstance(choice, Mapping):
            msg = choice.get("message") or {}
            if isinstance(msg, Mapping):
                if isinstance(msg.get("content"), str):
                    parts.append(msg["content"])
                for call in msg.get("tool_calls") or []:
                    fn = call.get("function") if isinstance(call, Mapping) else None
                    if isinstance(fn, Mapping):
                        parts.append(str(fn.get("arguments") or ""))
    content = body.get("content")
    if isinstance(content, list):  # Anthropic
        for b in content:
            if isinstance(b, Mapping):
                if b.get("type") == "text":
                    parts.append(str(b.get("text") or ""))
                elif b.get("type") == "tool_use":
                    parts.append(json.dumps(b.get("input") or {}))
    for item in body.get("output") or []:  # OpenAI Responses
        if isinstance(item, Mapping):
            for c in item.get("content") or []:
                if isinstance(c, Mapping) and isinstance(c.get("text"), str):
                    parts.append(c["text"])
            if item.get("type") == "function_call":
                parts.append(str(item.get("arguments") or ""))
    return "".join(parts) if parts or "choices" in body or "content" in body else None


def _redacted(obj: Any) -> bool:
    return obj == REDACTED or (isinstance(obj, Mapping) and REDACTED in obj.values())


def comparable(record: CallRecord) -> bool:
    """Whether a call's reported usage can be checked: it succeeded, reached the
    provider (not a cache hit) and reported its usage."""
    return record.ok and not record.cached and record.usage_known


def estimate(model: str | None, request_body: Any, response_body: Any) -> tuple[int, int] | None:
    """(input, output) tokens of a call by litellm's counter; None when the
    bodies cannot be read (redacted, not a chat request, no answer text)."""
    messages = request_messages(request_body)
    text = answer_text(response_body)
    if messages is None or text is None:
        return None
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    name = model or "gpt-4o"
    try:
        est_in = int(litellm.token_counter(model=name, messages=messages))
        est_out = int(litellm.token_counter(model=name, text=text, count_response_tokens=True))
    except Exception:  # a body or model the counter cannot handle: not counted
        return None
    return est_in, est_out


class TokenEstimator:
    """Counts records' tokens in a background thread; see the module docstring.

    ``store`` (optional) gets ``set_estimates([(call_id, input, output), …])``
    for the records it may already have written. ``in_process=False`` (the
    default) counts in a child process (``worker``, or the one this process
    shares: :func:`~agentopt.tracking.analytics.token_worker.shared_worker`); a
    batch the child fails to count is counted in this process instead, so a
    dead child loses no estimate.
    """

    def __init__(
        self,
        store: Any = None,
        *,
        max_pending: int = 50_000,
        in_process: bool = False,
        worker: TokenWorker | None = None,
    ) -> None:
        self.store = store
        self.worker: TokenWorker | None = None
        if not in_process:  # the process's shared child unless one is given
            self.worker = worker if worker is not None else shared_worker()
        self.linger_s = 0.05
        self._worker_failures = 0
        self.max_pending = max_pending
        self.skipped = 0
        self.counted = 0
        self._queue: deque[tuple[CallRecord, Any, Any]] = deque()
        self._cond = threading.Condition()
        self._busy = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread now (it imports litellm first), rather than at the first call."""
        with self._cond:
            self._ensure_thread()
        if self.worker is not None:
            try:
                self.worker.start()
            except WorkerFailed as e:
                log.warning("agentopt: %s; tokens are counted in this process", e)
                self.worker = None

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="agentopt-token-estimator", daemon=True
            )
            self._thread.start()

    def submit(self, record: CallRecord, request_body: Any, response_body: Any) -> None:
        """Queue ``record`` (with its unredacted bodies) to be counted; never blocks."""
        if not comparable(record) or self._closed:
            return
        with self._cond:
            if len(self._queue) >= self.max_pending:
                self.skipped += 1
                return
            self._queue.append((record, request_body, response_body))
            self._ensure_thread()
            self._cond.notify()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued record is counted (True) or ``timeout`` passes."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self) -> None:
        """Count what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        if self.worker is None and not self._import_litellm():
            return
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
            if not self._closed:  # let calls gather: one batch wakes this thread once, not per call
                time.sleep(self.linger_s)
            with self._cond:
                if not self._queue and self._closed:
                    self._cond.notify_all()
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._busy = len(batch)
            try:
                self._count(batch)
            except Exception:
                log.exception("agentopt: token estimates of %d call(s) failed", len(batch))
            finally:
                with self._cond:
                    self._busy = 0
                    self._cond.notify_all()

    def _import_litellm(self) -> bool:
        """Import litellm in this thread (once, off every call's path); False if it cannot."""
        try:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm  # noqa: F401
        except Exception:
            log.exception("agentopt: litellm cannot be imported; tokens are not estimated")
            with self._cond:
                self.skipped += len(self._queue)
                self._queue.clear()
                self._closed = True
                self._cond.notify_all()
            return False
        return True

    def _count(self, batch: list[tuple[CallRecord, Any, Any]]) -> None:
        items = [(r.model or r.requested_model, req, resp) for r, req, resp in batch]
        answers: list[tuple[int, int] | None] | None = None
        if self.worker is not None:
            try:
                answers = self.worker.count(items)
                self._worker_failures = 0
            except WorkerFailed as e:
                log.warning("agentopt: %s; counting %d call(s) in this process", e, len(items))
                self._worker_failures += 1
                if self._worker_failures >= 3:  # it cannot run here: stop starting it
                    log.warning("agentopt: tokens are counted in this process from now on")
                    self.worker = None
        done: list[tuple[str, int, int]] = []
        for i, (record, _, _) in enumerate(batch):
            if answers is not None:
                counts = answers[i]
            else:
                counts = estimate(*items[i])
                time.sleep(0)  # hand the GIL to the callers' threads between counts
            if counts is None:
                continue
            _setattr(record, "estimated_input_tokens", counts[0])
            _setattr(record, "estimated_output_tokens", counts[1])
            done.append((record.call_id, counts[0], counts[1]))
        self.counted += len(done)
        setter = getattr(self.store, "set_estimates", None)
        if done and setter is not None:
            setter(done)
