"""urllib.request, captured in process: ``AbstractHTTPHandler.do_open`` hands LLM
calls to the pipeline.

``do_open`` is where both ``HTTPHandler`` and ``HTTPSHandler`` of every opener
(``urlopen``, ``build_opener``, ``install_opener``) open their connection, after
the request was prepared and before error processing. An LLM call becomes an
``httpx.Request`` for the pipeline; *forward* is the original ``do_open`` (the
handler's TLS context and the request's timeout); the pipeline's response comes
back as the ``addinfourl`` urllib returns, its body read as the pipeline
yields it, so ``HTTPError`` for a 4xx/5xx status still comes from urllib's own
error processor. A request the ``ProxyHandler`` sent through a proxy is
forwarded through the same proxy.
See :mod:`agentopt.tracking.capture.client_capture`.
"""

from __future__ import annotations

import http.client
import io
import urllib.request
import urllib.response
from collections.abc import Callable
from typing import Any

import httpx

from agentopt.tracking.capture.client_capture import (
    ChunkReader,
    IteratorStream,
    client_chunks,
    client_headers,
    llm_call,
)

__all__ = ["patch"]

_Handler = urllib.request.AbstractHTTPHandler


def patch() -> Callable[[], None]:
    """Patch ``AbstractHTTPHandler.do_open``; returns the function that restores it."""
    original = _Handler.do_open

    def do_open(self: Any, http_class: Any, req: urllib.request.Request, **conn_args: Any) -> Any:
        found = llm_call(req.get_method(), req.full_url)
        data = req.data
        if found is None or not (data is None or isinstance(data, bytes)):
            return original(self, http_class, req, **conn_args)
        pipeline, session = found
        headers = dict(req.unredirected_hdrs)
        headers.update((k, v) for k, v in req.header_items() if k not in headers)
        headers.pop("Host", None)
        hreq = httpx.Request(req.get_method(), req.full_url, headers=headers, content=data)
        origin = (hreq.url.scheme, hreq.url.netloc)

        def forward(h: httpx.Request) -> httpx.Response:
            out = urllib.request.Request(
                str(h.url),
                data=h.content,
                headers={k: v for k, v in h.headers.items() if k.lower() != "host"},
                method=h.method,
            )
            out.timeout = req.timeout
            cls, kw = http_class, conn_args
            if (h.url.scheme, h.url.netloc) != origin:  # sent elsewhere (e.g. to a daemon)
                https = h.url.scheme == "https"
                cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
                kw = {}
            elif req.has_proxy():  # through the proxy the ProxyHandler chose, as urllib would
                out.set_proxy(req.host, req.type)
            resp = original(self, cls, out, **kw)
            return httpx.Response(
                resp.status,
                headers=[(k, v) for k, v in resp.getheaders() if k.lower() != "transfer-encoding"],
                stream=IteratorStream(iter(lambda: resp.read1(2**16), b""), resp.close),
                request=h,
                extensions={"reason_phrase": (resp.reason or "").encode("latin-1", "replace")},
            )

        answer = pipeline.handle(hreq, session, forward)
        chunks, decoded = client_chunks(answer, decoded=False)
        msg = http.client.HTTPMessage()
        for k, v in client_headers(answer, decoded=decoded):
            msg[k] = v
        fp = io.BufferedReader(ChunkReader(chunks, answer.close))
        result = urllib.response.addinfourl(fp, msg, req.full_url, answer.status_code)
        result.msg = result.reason = answer.reason_phrase  # type: ignore[attr-defined]
        return result

    _Handler.do_open = do_open  # type: ignore[method-assign]

    def restore() -> None:
        _Handler.do_open = original  # type: ignore[method-assign]

    return restore
