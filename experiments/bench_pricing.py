"""PriceBook cost computation time after the first load.

Target (issue 2): ≤ 5 µs per cost computation.

    .venv/bin/python experiments/bench_pricing.py
"""

from __future__ import annotations

import functools
import statistics
import time
import timeit

from agentopt.pricing import PriceBook


def main() -> None:
    t0 = time.perf_counter()
    book = PriceBook()
    book.cost("gpt-4o-mini", 1, 1)
    first = time.perf_counter() - t0
    models = [
        "gpt-4o-mini",
        "openai/gpt-4o-mini",
        "anthropic/claude-haiku-4-5",
        "bedrock/anthropic.claude-opus-4-6-v1",
        "unknown-model",
    ]
    print(f"first load (parse litellm's map, {len(book)} priced models): {first * 1000:.1f} ms")
    n = 200_000
    for m in models:
        runs = timeit.repeat(
            functools.partial(book.cost, m, 1200, 300, cached_tokens=200), number=n, repeat=5
        )
        per = statistics.median(runs) / n * 1e6
        print(f"cost({m!r}): {per:.2f} µs per computation (target ≤ 5 µs)")


if __name__ == "__main__":
    main()
