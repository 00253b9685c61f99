"""The daemon's upstream client: ``httpx`` requests sent over aiohttp's connection pool.

The pipeline speaks ``httpx`` (requests in, unread responses out), but httpx's
own pool (httpcore 1.x) scans every pooled connection, and polls each idle
socket, every time a request enters or leaves it: with 64 calls in flight that
was most of the daemon's CPU per call. aiohttp keeps idle connections in a
per-host queue and parses responses in C, so the daemon sends through it and
hands the pipeline an ``httpx.Response`` whose stream reads the aiohttp body.

No ``httpx.AsyncClient`` sits in between: no cookie jar (a proxy must never
carry one caller's cookies to the next), no redirects, no default headers.
aiohttp's errors surface as the httpx exceptions the data plane already
handles (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``,
``RemoteProtocolError``, ``ReadError``), with the request attached.

    client = UpstreamClient(connect=10, read=120)
    response = await client.send(httpx.Request("POST", url, content=body))
    async for chunk in response.aiter_raw(): ...
    await response.aclose()
    await client.aclose()
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import aiohttp

__all__ = ["UpstreamClient"]

# set by aiohttp itself (Host, Content-Length from the body) or framing we do not forward
_SKIP = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
_NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class UpstreamClient:
    """Sends ``httpx.Request`` objects upstream; one per event loop (created lazily
    in the loop that first sends, like aiohttp's session must be)."""

    def __init__(
        self,
        *,
        connect: float | None,
        read: float | None,
        max_connections: int = 512,
        keepalive_seconds: float = 30.0,
    ) -> None:
        self.connect = connect
        self.read = read
        self.max_connections = max_connections
        self.keepalive_seconds = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import aiohttp

            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,
                keepalive_timeout=self.keepalive_seconds,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,  # the caller gets the provider's bytes
                skip_auto_headers=_NO_AUTO_HEADERS,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.connect, sock_read=self.read
                ),
                trust_env=False,
                requote_redirect_url=False,
            )
        return self._session

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` (its body already in memory); the response is unread:
        read it (``aread``, ``aiter_raw``) and close it (``aclose``)."""
        import yarl

        session = self.session()
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw
            if k.lower() not in _SKIP
        ]
        content = request.content
        with _mapped(request):
            resp = await session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=content if content else None,
                allow_redirects=False,
            )
        return httpx.Response(
            resp.status,
            headers=resp.raw_headers,
            stream=_Body(resp, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (resp.reason or "").encode()},
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as an httpx stream (raw bytes, as they arrive)."""

    def __init__(self, resp: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._resp = resp
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._resp.content
        while True:
            try:
                chunk = await content.readany()
            except Exception as exc:
                # the bytes that arrived before the connection broke still go through
                rest = _unread(content)
                if rest:
                    yield rest
                mapped = _translated(exc, self._request)
                if mapped is exc:
                    raise
                raise mapped from exc
            if not chunk:
                break
            yield chunk

    async def aclose(self) -> None:
        # back to the pool when the body was read to its end, else the connection is dropped
        self._resp.release()


@contextmanager
def _mapped(request: httpx.Request) -> Iterator[None]:
    """aiohttp's exceptions as the httpx ones the data plane handles."""
    try:
        yield
    except Exception as exc:
        mapped = _translated(exc, request)
        if mapped is exc:
            raise
        raise mapped from exc


def _translated(exc: Exception, request: httpx.Request) -> Exception:
    import aiohttp

    if isinstance(exc, aiohttp.ClientError):
        return _as_httpx(exc, request)
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(str(exc) or "timed out", request=request)
    return exc


def _unread(content: Any) -> bytes:
    """What an aiohttp body reader holds but no longer hands out: once the
    connection breaks, ``readany`` raises before returning the bytes already
    received. Read from its buffer (private, hence every guard)."""
    buffer = getattr(content, "_buffer", None)
    offset = getattr(content, "_buffer_offset", 0)
    if not buffer or not isinstance(offset, int):
        return b""
    try:
        data = b"".join(buffer)[offset:]
        buffer.clear()
    except (TypeError, AttributeError):
        return b""
    return data


def _as_httpx(exc: Any, request: httpx.Request) -> httpx.HTTPError:
    import aiohttp

    text = str(exc) or type(exc).__name__
    kind: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        kind = httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.ClientOSError):
        kind = httpx.ReadError
    else:
        kind = httpx.TransportError
    return kind(text, request=request)
