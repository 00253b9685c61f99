"""requests, captured in process: ``HTTPAdapter.send`` hands LLM calls to the pipeline.

The patch is at class level, so every ``requests.Session`` (and the module-level
``requests.post``) is covered, including sessions made before the tracker
started. An LLM call becomes an ``httpx.Request`` for the pipeline; *forward*
is the adapter's own original ``send`` (its pool, proxies, TLS and timeouts);
the pipeline's response comes back as a ``requests.Response`` built by the
adapter itself, whose body streams chunk by chunk as the pipeline yields it.
See :mod:`agentopt.tracking.capture.client_capture`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import httpx
import urllib3
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict

from agentopt.tracking.capture.client_capture import (
    ChunkReader,
    IteratorStream,
    client_chunks,
    client_headers,
    llm_call,
)

__all__ = ["patch"]


class _PipelineResponse(urllib3.HTTPResponse):
    """The pipeline's response as a urllib3 response: already decoded, and
    ``stream()`` yields each chunk as soon as it arrives (as a chunked response
    from a socket would), so ``iter_lines`` / ``iter_content`` stream."""

    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Generator[bytes, None, None]:
        reader: ChunkReader = self._fp  # type: ignore[assignment]
        while True:
            data = reader.read1(amt if amt else -1)
            if not data:
                reader.close()  # the body ended: release the pipeline's response
                return
            yield data


def _body(request: PreparedRequest) -> tuple[bool, bytes | None]:
    """(readable, the request body as bytes or None); not readable when it is a
    stream or a file, which we cannot read without consuming it."""
    body = request.body
    if body is None or isinstance(body, bytes):
        return True, body
    if isinstance(body, str):
        try:
            return True, body.encode("iso-8859-1")  # what http.client sends for a str body
        except UnicodeEncodeError:
            return False, None  # http.client refuses it too: let it say so
    return False, None


def patch() -> Callable[[], None]:
    """Patch ``HTTPAdapter.send``; returns the function that restores it."""
    original = HTTPAdapter.send

    def send(
        self: HTTPAdapter,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> Response:
        kwargs = {"timeout": timeout, "verify": verify, "cert": cert, "proxies": proxies}
        found = llm_call(request.method or "GET", request.url or "")
        readable, body = _body(request) if found is not None else (False, None)
        if found is None or not readable:
            return original(self, request, stream=stream, **kwargs)
        pipeline, session = found
        headers = [(k, v if isinstance(v, str) else v.decode()) for k, v in request.headers.items()]
        hreq = httpx.Request(
            request.method or "GET", request.url or "", headers=headers, content=body
        )

        def forward(h: httpx.Request) -> httpx.Response:
            out = request.copy()
            out.url = str(h.url)
            out.headers = CaseInsensitiveDict(
                [(k, v) for k, v in h.headers.multi_items() if k.lower() != "host"]
            )
            out.body = h.content
            resp = original(self, out, stream=True, **kwargs)
            raw = resp.raw
            return httpx.Response(
                resp.status_code,
                headers=list(raw.headers.items()),
                stream=IteratorStream(raw.stream(2**16, decode_content=False), resp.close),
                request=h,
                extensions={"reason_phrase": (resp.reason or "").encode("latin-1", "replace")},
            )

        answer = pipeline.handle(hreq, session, forward)
        chunks, _ = client_chunks(answer, decoded=True)
        raw = _PipelineResponse(
            body=ChunkReader(chunks, answer.close),
            headers=urllib3.HTTPHeaderDict(client_headers(answer, decoded=True)),
            status=answer.status_code,
            reason=answer.reason_phrase,
            preload_content=False,
            decode_content=False,
            request_method=request.method,
            request_url=request.url,
        )
        return self.build_response(request, raw)

    HTTPAdapter.send = send  # type: ignore[method-assign]

    def restore() -> None:
        HTTPAdapter.send = original  # type: ignore[method-assign]

    return restore
