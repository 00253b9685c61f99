"""How fast the dashboard answers over a large record store.

Fills a SQLite record store with N realistic records (chat bodies of a few
hundred tokens, 6 models, 3 providers, routed aliases, 5 % errors, 20 % cache
hits, spread over 7 days), then times every JSON API view the page asks for
on load (median of 5) and, when chromium and playwright are installed, the
page itself: navigation until the calls view has drawn, and each tab.

    python experiments/bench_dashboard.py --records 100000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agentopt.records import CallRecord
from agentopt.tracking.storage.store import SQLiteRecordStore

MODELS = [
    ("openai", "gpt-4o-mini", 0.15e-6, 0.6e-6),
    ("openai", "gpt-4o", 2.5e-6, 10e-6),
    ("openai", "gpt-4.1-nano", 0.1e-6, 0.4e-6),
    ("anthropic", "claude-haiku-4-5", 1e-6, 5e-6),
    ("anthropic", "claude-sonnet-4-6", 3e-6, 15e-6),
    ("local", "llama-3-8b", None, None),
]
WORDS = [
    "the",
    "model",
    "answers",
    "each",
    "question",
    "about",
    "planning",
    "solving",
    "tools",
    "routes",
    "costs",
]


def fill(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    store = SQLiteRecordStore(path, batch_size=5000)
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    for i in range(n):
        provider, model, pin, pout = rng.choice(MODELS)
        alias = rng.choice(["smart", "cheap", None])
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 300)))
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 200)))
        tin, tout = len(prompt.split()) * 4 // 3, len(answer.split()) * 4 // 3
        failed = rng.random() < 0.05
        cached = not failed and rng.random() < 0.2
        cost = (
            None
            if pin is None or pout is None or failed
            else (0.0 if cached else tin * pin + tout * pout)
        )
        stream = rng.random() < 0.5
        lat = rng.lognormvariate(-0.5, 0.6)
        store.append(
            CallRecord(
                call_id=f"call-{i}",
                data_id=f"d{rng.randrange(2000)}",
                combo_id=f"combo-{rng.randrange(20)}",
                agent_id=rng.choice(["planner", "solver", "critic"]),
                provider=provider,
                requested_model=alias or model,
                model=model,
                prompt_tokens=0 if failed else tin,
                completion_tokens=0 if failed else tout,
                latency_seconds=lat,
                ttft_seconds=lat * 0.2 if stream else None,
                cost_usd=cost,
                request_url=f"https://api.{provider}.example/v1/chat/completions",
                request_body={"model": model, "messages": [{"role": "user", "content": prompt}]},
                response_body=None
                if failed
                else {"choices": [{"message": {"role": "assistant", "content": answer}}]},
                status_code=500 if failed else 200,
                error="HTTP 500: upstream error" if failed else None,
                cached=cached,
                stream=stream,
                timestamp=(t0 + timedelta(seconds=i * 7 * 86400 / n)).isoformat(),
            )
        )
    store.close()


def time_api(path: Path, repeats: int = 5) -> dict[str, float]:
    from starlette.testclient import TestClient

    from agentopt.gateway.dashboard import create_dashboard_app

    client = TestClient(create_dashboard_app(path))
    views = {
        "summary": "/dashboard/api/summary",
        "options": "/dashboard/api/options",
        "calls": "/dashboard/api/calls?limit=100",
        "calls (filtered by model)": "/dashboard/api/calls?limit=100&model=gpt-4o",
        "timeseries": "/dashboard/api/timeseries",
        "latency": "/dashboard/api/latency",
        "errors": "/dashboard/api/errors",
        "routing": "/dashboard/api/routing",
        "summary (one model, one day)": "/dashboard/api/summary?model=gpt-4o"
        "&start=2026-12-02T00:00:00%2B00:00&end=2026-12-03T00:00:00%2B00:00",
    }
    out = {}
    for name, url in views.items():
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            r = client.get(url)
            times.append(time.perf_counter() - t)
            r.raise_for_status()
        out[name] = statistics.median(times)
    return out


def time_page(path: Path) -> dict[str, float] | None:
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    from agentopt.gateway.dashboard.cli import DashboardServer

    out: dict[str, float] = {}
    with DashboardServer(path) as server, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        t = time.perf_counter()
        page.goto(server.dashboard_url)
        page.wait_for_selector("body[data-loaded=calls]")
        out["page load (calls view drawn)"] = time.perf_counter() - t
        for tab in ("charts", "routing"):
            t = time.perf_counter()
            page.click(f"#tabs [data-tab={tab}]")
            page.wait_for_selector(f"body[data-loaded={tab}]")
            out[f"{tab} tab drawn"] = time.perf_counter() - t
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.sqlite"
        t = time.perf_counter()
        fill(path, args.records)
        print(
            f"filled {args.records:,} records in {time.perf_counter() - t:.1f} s"
            f" ({path.stat().st_size / 1e6:.0f} MB)"
        )
        api = time_api(path)
        page = time_page(path)
    print(f"{'view':<34} {'seconds':>8}")
    for name, sec in api.items():
        print(f"{name:<34} {sec:>8.3f}")
    for name, sec in (page or {}).items():
        print(f"{name:<34} {sec:>8.3f}")
    if page is None:
        print("(page timings need chromium and playwright)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"api": api, "page": page}, indent=2))


if __name__ == "__main__":
    main()
