"""Hot-path costs of the tracker's building blocks (no network).

Run: ``.venv/bin/python experiments/bench_tracking_parts.py``. Prints the median
cost of provider matching, parsing a body, parsing a 100-chunk stream, a cache
key, and cache get/put (memory and SQLite). Noisy on a shared machine.
"""

from __future__ import annotations

import functools
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator

from agentopt.tracking.providers import default_registry
from agentopt.tracking.storage.cache import CachedResponse, ResponseCache, namespace_for
from agentopt.tracking.wire.parsing import StreamParser, parse_body


def _median_us(fn: Callable[[], object], n: int = 2000) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> None:
    reg = default_registry()
    url = "http://127.0.0.1:8000/v1/chat/completions"
    body = {
        "id": "x",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello " * 50}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50},
    }
    raw = json.dumps(body).encode()
    chunk = {
        "id": "x",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}],
    }
    stream = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for _ in range(100))
    stream += b'data: {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 100}}\n\ndata: [DONE]\n\n'
    pieces = [stream[i : i + 512] for i in range(0, len(stream), 512)]

    def parse_stream() -> None:
        p = StreamParser("openai")
        for piece in pieces:
            p.feed(piece)
        p.finish()

    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi " * 100}]}
    ns = namespace_for({"authorization": "Bearer sk-x"})
    resp = CachedResponse(200, [("content-type", "application/json")], raw, False, 0.5)
    print(f"registry.match (memoised):       {_median_us(lambda: reg.match('POST', url)):8.2f} µs")
    print(
        f"parse_body (chat, 0.4 kB):       {_median_us(lambda: parse_body('openai', 200, raw)):8.2f} µs"
    )
    print(f"StreamParser (100 chunks):       {_median_us(parse_stream, 500):8.2f} µs")
    print(
        f"ResponseCache.key:               {_median_us(lambda: ResponseCache.key(url, request, ns)):8.2f} µs"
    )
    for where in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            cache = ResponseCache(None if where is None else tmp)
            keys = iter(range(10**9))

            def put_one(c: ResponseCache = cache, ks: Iterator[int] = keys) -> None:
                c.put(f"k{next(ks)}", resp)

            put = _median_us(put_one)
            cache.flush()
            get = _median_us(functools.partial(cache.get, "k5"))
            miss = _median_us(functools.partial(cache.get, "nope"))
            cache.close()
        label = "memory" if where is None else "sqlite"
        print(f"cache {label:6s} put / hit / miss:   {put:8.2f} / {get:.2f} / {miss:.2f} µs")


if __name__ == "__main__":
    main()
