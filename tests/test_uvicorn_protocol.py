"""A sized response's head and body leave in one write; a stream's head leaves at once."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from agentopt._serving import ThreadedServer
from agentopt._uvicorn_protocol import STREAM_HEAD_HOLD_S, HeadHoldingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


def test_a_sized_head_waits_for_its_body_and_leaves_with_it() -> None:
    fake = FakeTransport()
    t = HeadHoldingTransport(fake)  # type: ignore[arg-type]
    t.write(HEAD)
    assert fake.writes == []
    t.write(b"{}")
    t.response_complete()
    assert fake.writes == [HEAD + b"{}"]
    t.write(HEAD)  # the next response on the same connection too
    t.write(b"[]")
    t.response_complete()
    assert fake.writes == [HEAD + b"{}", HEAD + b"[]"]
    assert t.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the transport's


def test_a_streamed_head_waits_for_its_first_chunk_only_briefly() -> None:
    async def scenario() -> None:
        fake = FakeTransport()
        t = HeadHoldingTransport(fake)  # type: ignore[arg-type]
        t.write(CHUNKED)  # an upstream that answers at once: head and chunk in one write
        assert fake.writes == [] and t._timer is not None
        t.write(b"9\r\ndata: 1\n\n\r\n")
        assert fake.writes == [CHUNKED + b"9\r\ndata: 1\n\n\r\n"] and t._timer is None
        t.write(HEAD)  # a chunk that happens to look like a head is a chunk
        assert fake.writes[-1] == HEAD
        t.response_complete()
        t.write(CHUNKED)  # a slow first token: the head leaves when its hold ends
        timer = t._timer
        assert timer is not None
        assert timer.when() - asyncio.get_running_loop().time() <= STREAM_HEAD_HOLD_S
        t._flush_later()  # what the timer does
        assert fake.writes[-1] == CHUNKED
        t.write(b"0\r\n\r\n")
        assert fake.writes[-1] == b"0\r\n\r\n"
        t.response_complete()
        empty = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
        t.write(empty)  # nothing to wait for
        assert fake.writes[-1] == empty

    asyncio.run(scenario())


def test_a_held_head_is_sent_when_no_body_follows_or_the_connection_closes() -> None:
    fake = FakeTransport()
    t = HeadHoldingTransport(fake)  # type: ignore[arg-type]
    t.write(HEAD)  # a HEAD request: no body write
    t.response_complete()
    assert fake.writes == [HEAD]
    t.write(HEAD)  # the app failed after the head: uvicorn closes the connection
    t.close()
    assert fake.writes == [HEAD, HEAD] and fake.closed
    t.response_complete()
    t.write(HEAD)  # the caller went away first: nothing is written to a closing transport
    t.close()
    assert fake.writes == [HEAD, HEAD]


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        await asyncio.to_thread(RELEASE.wait, 30)  # the test reads the head first
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": False})
        return
    body = b'{"path": "%s"}' % scope["path"].encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


RELEASE = threading.Event()


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_keep_alive_responses_and_a_stream_through_a_real_server() -> None:
    with ThreadedServer(_app) as server, socket.create_connection(("127.0.0.1", server.port)) as s:
        s.settimeout(30)
        for path in ("/a", "/bb", "/ccc"):  # one connection, three sized answers
            s.sendall(b"GET %s HTTP/1.1\r\nhost: x\r\n\r\n" % path.encode())
            answer = _read_response(s)
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'"%s"}' % path.encode())
        s.sendall(b"HEAD /a HTTP/1.1\r\nhost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\n")
        s.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:  # the head arrives while the app still waits
            data += s.recv(65536)
        assert b"transfer-encoding: chunked" in data and b"data: 1" not in data
        RELEASE.set()
        while b"0\r\n\r\n" not in data:
            data += s.recv(65536)
        assert b"data: 1" in data
