"""Wire capture and replay: capture what a server answered, send it again, serve it back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from agentopt._serving import ThreadedServer
from agentopt.cli import main
from agentopt.exceptions import ConfigError, DataError
from agentopt.gateway.capture import CaptureMiddleware, CaptureWriter, read_capture
from agentopt.gateway.replay import CaptureWorld, CaptureWorldServer, replay_capture, summarise
from agentopt.sim.app import create_app

KEY = "sk-planted-secret-0123456789"


def _EPOCH() -> float:  # a fixed clock
    return 1_767_225_600.0


class _Captured:
    def __init__(self, tmp: Path, *, redact: bool = False, max_bytes: int = 64 << 20) -> None:
        self.dir = tmp / "capture"
        self.writer = CaptureWriter(self.dir, max_bytes=max_bytes)
        # streams in chunks; a fixed clock, so a fresh simulator answers byte for byte
        self.sim_app = create_app("default", seed=7, time_scale=0.01, clock=_EPOCH)
        self.server = ThreadedServer(CaptureMiddleware(self.sim_app, self.writer, redact=redact))

    def __enter__(self) -> _Captured:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.writer.close()


def _traffic(base: str) -> dict[str, bytes]:
    """A mix of calls; returns the raw bytes each client received, by a label."""
    got: dict[str, bytes] = {}
    with httpx.Client(base_url=base, timeout=30) as c:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is 3+4?"}]}
        got["chat"] = c.post(
            "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
        ).content
        stream = {**body, "stream": True, "stream_options": {"include_usage": True}}
        with c.stream(
            "POST", "/v1/chat/completions", json=stream, headers={"authorization": f"Bearer {KEY}"}
        ) as r:
            got["chat-stream"] = b"".join(r.iter_raw())
        msg = {
            "model": "claude-haiku-4-5",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Name a prime."}],
        }
        got["messages"] = c.post("/v1/messages", json=msg, headers={"x-api-key": KEY}).content
        got["missing-model"] = c.post(
            "/v1/chat/completions", json={**body, "model": "no-such-model"}
        ).content
    return got


@pytest.fixture()
def captured(tmp_path: Path) -> Iterator[tuple[Path, dict[str, bytes]]]:
    with _Captured(tmp_path) as cap:
        got = _traffic(cap.server.url)
    yield cap.dir, got


def test_capture_holds_exactly_the_bytes_the_client_received(
    captured: tuple[Path, dict[str, bytes]],
) -> None:
    directory, got = captured
    exchanges = list(read_capture(directory))
    assert [e.path for e in exchanges] == [
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/chat/completions",
    ]
    assert [e.response_body for e in exchanges] == list(got.values())
    stream = exchanges[1]
    assert len(stream.chunks) > 2, "a stream keeps its chunks, each with its time"
    assert all(t2 >= t1 for (t1, _), (t2, _) in zip(stream.chunks, stream.chunks[1:], strict=False))
    assert stream.ttfb is not None and stream.duration is not None
    assert exchanges[3].status == 404
    assert json.loads(exchanges[0].request_body)["messages"][0]["content"] == "What is 3+4?"


def test_capture_never_holds_a_credential(captured: tuple[Path, dict[str, bytes]]) -> None:
    directory, _ = captured
    text = "".join(f.read_text() for f in directory.glob("capture-*.jsonl"))
    assert KEY not in text
    first = next(read_capture(directory))
    assert first.header("authorization", "request") == "<redacted>"


def test_redacted_capture_keeps_usage_not_content(tmp_path: Path) -> None:
    with _Captured(tmp_path, redact=True) as cap:
        _traffic(cap.server.url)
    text = "".join(f.read_text() for f in cap.dir.glob("capture-*.jsonl"))
    assert "What is 3+4?" not in text and "Name a prime." not in text
    exchanges = list(read_capture(cap.dir))
    assert all(e.redacted for e in exchanges)
    assert json.loads(exchanges[0].response_body)["usage"]["prompt_tokens"] > 0


def test_replay_against_the_simulator_reports_no_difference(
    captured: tuple[Path, dict[str, bytes]],
) -> None:
    directory, _ = captured
    exchanges = list(read_capture(directory))
    fresh = ThreadedServer(create_app("default", seed=7, time_scale=0.0, clock=_EPOCH))
    with fresh:
        results = asyncio.run(replay_capture(exchanges, fresh.url, speed=None))
    for r in results:
        assert r.error is None
        assert r.identical, f"{r.target}: not byte for byte"
        assert r.captured.status == r.replayed.status
        assert r.captured.model == r.replayed.model
        assert (r.captured.prompt_tokens, r.captured.completion_tokens) == (
            r.replayed.prompt_tokens,
            r.replayed.completion_tokens,
        )
        assert r.captured.cost_usd == r.replayed.cost_usd
        assert r.same_body, f"{r.target}: the simulator answered differently"
    assert results[0].captured.cost_usd is not None and results[0].captured.cost_usd > 0
    assert summarise(results)["with_differences"] == 0


def test_replay_notices_a_different_answer(captured: tuple[Path, dict[str, bytes]]) -> None:
    directory, _ = captured
    exchanges = list(read_capture(directory))[:1]
    other = ThreadedServer(create_app("default", seed=99, time_scale=0.0))
    with other:
        (result,) = asyncio.run(replay_capture(exchanges, other.url, speed=None))
    assert "body" in result.differences


def test_capture_world_answers_byte_for_byte(captured: tuple[Path, dict[str, bytes]]) -> None:
    directory, got = captured
    with CaptureWorldServer(directory, time_scale=0.0) as world:
        results = asyncio.run(replay_capture(read_capture(directory), world.url, speed=None))
        assert all(r.identical for r in results), [r.differences for r in results]
        # official SDKs parse the recorded answers
        client = openai.OpenAI(base_url=world.url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is 3+4?"}]
        )
        assert (
            reply.choices[0].message.content
            == json.loads(got["chat"])["choices"][0]["message"]["content"]
        )
        claude = anthropic.Anthropic(base_url=world.url, api_key="x", max_retries=0)
        m = claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "Name a prime."}],
        )
        assert m.usage.input_tokens == json.loads(got["messages"])["usage"]["input_tokens"]
        unknown = httpx.post(world.url + "/v1/chat/completions", json={"model": "x"})
        assert unknown.status_code == 404 and "no captured exchange" in unknown.text


def test_capture_world_keeps_stream_timing(tmp_path: Path) -> None:
    """Chunks arrive at their captured times × time_scale (a lower bound: never early)."""
    from agentopt.gateway.capture import Exchange

    ex = Exchange(
        id="x",
        time="2026-12-01T00:00:00+00:00",
        method="POST",
        path="/v1/chat/completions",
        query="",
        request_headers=[],
        request_body=b"{}",
        status=200,
        response_headers=[["content-type", "text/event-stream"]],
        chunks=[(0.05, b"data: {}\n\n"), (0.25, b"data: [DONE]\n\n")],
    )
    world = CaptureWorld([ex], time_scale=1.0)

    async def run() -> list[float]:
        transport = httpx.ASGITransport(app=world)
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as c:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            times = []
            async with c.stream("POST", "/v1/chat/completions", content=b"{}") as r:
                async for _ in r.aiter_raw():
                    times.append(loop.time() - t0)
            return times

    times = asyncio.run(run())
    assert times[-1] >= 0.25


def test_rotation_and_pruning(tmp_path: Path) -> None:
    with _Captured(tmp_path, max_bytes=2048) as cap:
        _traffic(cap.server.url)
    files = sorted(cap.dir.glob("capture-*.jsonl"))
    assert len(files) >= 3
    assert len(list(read_capture(cap.dir))) == 4
    writer = CaptureWriter(tmp_path / "pruned", max_bytes=1024, max_files=2)
    for ex in read_capture(cap.dir):
        writer.write(ex)
    writer.close()
    assert len(list((tmp_path / "pruned").glob("capture-*.jsonl"))) == 2


def test_torn_last_line_is_skipped_and_bad_lines_named(
    captured: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    directory, _ = captured
    (f,) = list(directory.glob("capture-*.jsonl"))
    data = f.read_bytes()
    torn = tmp_path / "capture-torn.jsonl"
    torn.write_bytes(data + data[:100])
    with pytest.warns(RuntimeWarning, match="torn last line"):
        assert len(list(read_capture(torn))) == 4
    bad = tmp_path / "capture-bad.jsonl"
    bad.write_bytes(b"{not json}\n" + data)
    with pytest.raises(DataError, match=r"capture-bad.jsonl:1"):
        list(read_capture(bad))
    with pytest.raises(ConfigError, match="no such file"):
        list(read_capture(tmp_path / "nope"))


def test_a_failing_disk_loses_captures_not_calls(tmp_path: Path) -> None:
    """A write that fails (disk full) warns, counts what it lost, and serving goes on."""

    class FullDisk(CaptureWriter):
        def _open(self) -> Any:
            raise OSError(28, "No space left on device")

    writer = FullDisk(tmp_path / "full")
    server = ThreadedServer(CaptureMiddleware(create_app("default", time_scale=0.0), writer))
    with server, pytest.warns(RuntimeWarning, match="No space left"):
        r = httpx.post(
            server.url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        r2 = httpx.post(
            server.url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ho"}]},
        )
    assert r.status_code == 200 and r2.status_code == 200
    assert writer.dropped == 2 and writer.written == 0


def test_cli_replay_writes_the_comparison(
    captured: tuple[Path, dict[str, bytes]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, _ = captured
    out = tmp_path / "diff.json"
    with CaptureWorldServer(directory, time_scale=0.0) as world:
        code = main(
            [
                "replay",
                str(directory),
                "--against",
                world.url,
                "--speed",
                "max",
                "--json",
                str(out),
                "--fail-on-diff",
            ]
        )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["summary"]["identical"] == 4
    assert "4 requests: 4 byte-identical" in capsys.readouterr().out
    assert main(["replay", str(directory)]) == 1  # neither --against nor --world
    assert main(["replay", str(directory), "--against", "http://x", "--speed", "fast"]) == 1


def test_speed_one_keeps_the_captured_spacing(captured: tuple[Path, dict[str, bytes]]) -> None:
    """At speed 1 the k-th request starts no earlier than its captured offset."""
    directory, _ = captured
    exchanges = list(read_capture(directory))[:2]
    exchanges[1].time = "2999-01-01T00:00:00.300000+00:00"
    exchanges[0].time = "2999-01-01T00:00:00+00:00"
    with CaptureWorldServer(directory, time_scale=0.0) as world:
        loop_t0 = asyncio.run(_timed(exchanges, world.url))
    assert loop_t0 >= 0.3


async def _timed(exchanges: list[Any], url: str) -> float:
    t0 = asyncio.get_running_loop().time()
    await replay_capture(exchanges, url, speed=1.0)
    return asyncio.get_running_loop().time() - t0
