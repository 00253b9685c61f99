"""The daemon's upstream client: httpx requests over aiohttp, httpx errors out."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from agentopt._serving import ThreadedServer
from agentopt.gateway.upstream_http import UpstreamClient


class Echo:
    """Answers with the request's headers; sets a cookie; ``/cut`` drops the
    connection after half a body, ``/hang`` sends headers and then nothing."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        path = scope["path"]
        if path == "/cut":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            await send({"type": "http.response.body", "body": b"data: half\n\n", "more_body": True})
            send.__self__.transport.close()
            return
        if path == "/hang":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await asyncio.sleep(30)
            return
        seen = b"\n".join(k + b": " + v for k, v in scope["headers"])
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"text/plain"), (b"set-cookie", b"sid=secret")],
            }
        )
        await send({"type": "http.response.body", "body": seen + b"\n\n" + body})


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def echo() -> Any:
    with ThreadedServer(Echo(), name="echo") as s:
        yield s


def test_sends_the_request_as_given_and_returns_an_unread_httpx_response(echo: Any) -> None:
    async def go() -> tuple[int, bytes, bytes, str]:
        client = UpstreamClient(connect=5, read=5)
        try:
            req = httpx.Request(
                "POST", echo.url + "/x", headers={"x-one": "1"}, content=b'{"a": 1}'
            )
            first = await client.send(req)
            assert isinstance(first, httpx.Response) and first.request is req
            await first.aread()
            await first.aclose()
            second = await client.send(httpx.Request("POST", echo.url + "/x", content=b"{}"))
            body = await second.aread()
            await second.aclose()
            return first.status_code, first.content, body, first.headers["set-cookie"]
        finally:
            await client.aclose()

    status, first, second, cookie = _run(go())
    assert status == 201 and cookie == "sid=secret"
    assert b"x-one: 1" in first and first.endswith(b'{"a": 1}')
    assert b"content-length: 8" in first.lower()
    # no cookie jar (a proxy never carries one caller's cookies to the next) and
    # no default headers of its own
    assert b"cookie" not in second.lower()
    assert b"user-agent" not in first.lower() and b"content-type" not in first.lower()


def test_connection_refused_is_an_httpx_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there

    async def go() -> None:
        client = UpstreamClient(connect=5, read=5)
        try:
            await client.send(httpx.Request("POST", f"http://127.0.0.1:{port}/v1", content=b"{}"))
        finally:
            await client.aclose()

    with pytest.raises(httpx.ConnectError) as info:
        _run(go())
    assert info.value.request.url.port == port


def test_a_broken_body_keeps_the_bytes_that_arrived_then_raises(echo: Any) -> None:
    got: list[bytes] = []

    async def go() -> None:
        client = UpstreamClient(connect=5, read=5)
        try:
            r = await client.send(httpx.Request("POST", echo.url + "/cut", content=b"{}"))
            try:
                async for chunk in r.aiter_raw():
                    got.append(chunk)
            finally:
                await r.aclose()
        finally:
            await client.aclose()

    with pytest.raises(httpx.RemoteProtocolError):
        _run(go())
    assert b"".join(got) == b"data: half\n\n"


def test_silence_longer_than_the_read_limit_is_a_read_timeout(echo: Any) -> None:
    async def go() -> None:
        client = UpstreamClient(connect=5, read=0.2)
        try:
            r = await client.send(httpx.Request("POST", echo.url + "/hang", content=b"{}"))
            try:
                await r.aread()
            finally:
                await r.aclose()
        finally:
            await client.aclose()

    with pytest.raises(httpx.ReadTimeout):
        _run(go())
