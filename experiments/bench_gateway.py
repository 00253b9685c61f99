"""The gateway daemon against the simulator at time scale 0: what it adds, what it serves.

    .venv/bin/python experiments/bench_gateway.py                 # latency, TTFB, throughput
    .venv/bin/python experiments/bench_gateway.py --rss 100000    # + RSS after that many calls
    .venv/bin/python experiments/bench_gateway.py --litellm       # + LiteLLM's proxy, same load

The simulator, the daemon (``agentopt serve``) and LiteLLM's proxy each run in
their own process; this script is the client. Added latency and time to first
byte are medians of paired calls (direct, then through the daemon, interleaved)
on one keep-alive connection. Throughput is completed requests per second with
64 concurrent connections from this process (so it is a lower bound when the
client itself saturates a core). LiteLLM's proxy (``litellm[proxy]`` at our
pinned version) is installed into its own venv under ``.bench/`` on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LITELLM_VERSION = "1.106.2"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is 2+2?"}]}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}


def _read_url(proc: subprocess.Popen[str], marker: str) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if marker in line:
            return "http://" + line.split("http://", 1)[1].split()[0].rstrip("/.,")
    raise SystemExit(f"process did not start: {proc.args}")


@contextmanager
def process(
    args: list[str], marker: str | None, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})},
    )
    try:
        yield (_read_url(proc, marker) if marker else ""), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def paired(direct: str, daemon: str, n: int) -> tuple[float, float]:
    """Median added latency (non-streamed) and added time to first byte (streamed), ms."""
    added: list[float] = []
    added_ttfb: list[float] = []
    with httpx.Client(timeout=30) as a, httpx.Client(timeout=30) as b:
        for _ in range(50):  # warm up both paths
            a.post(direct + "/v1/chat/completions", json=BODY)
            b.post(daemon + "/v1/chat/completions", json=BODY)
        for _ in range(n):
            times = []
            for client, base in ((a, direct), (b, daemon)):
                t0 = time.perf_counter()
                client.post(base + "/v1/chat/completions", json=BODY).raise_for_status()
                times.append(time.perf_counter() - t0)
            added.append(times[1] - times[0])
            firsts = []
            for client, base in ((a, direct), (b, daemon)):
                t0 = time.perf_counter()
                with client.stream("POST", base + "/v1/chat/completions", json=STREAM_BODY) as r:
                    first = None
                    for _chunk in r.iter_raw():
                        if first is None:
                            first = time.perf_counter() - t0
                    firsts.append(first or 0.0)
            added_ttfb.append(firsts[1] - firsts[0])
    return statistics.median(added) * 1000, statistics.median(added_ttfb) * 1000


async def _load(base: str, total: int, conns: int, headers: dict[str, str]) -> float:
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(timeout=60, limits=limits, headers=headers) as client:
        left = total
        errors = 0

        async def worker() -> None:
            nonlocal left, errors
            while left > 0:
                left -= 1
                r = await client.post(base + "/v1/chat/completions", json=BODY)
                if r.status_code != 200:
                    errors += 1

        for _ in range(conns):  # warm up the connections
            await client.post(base + "/v1/chat/completions", json=BODY)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        elapsed = time.perf_counter() - t0
    if errors:
        print(f"  ({errors} of {total} requests failed)")
    return total / elapsed


def throughput(
    base: str, total: int, conns: int = 64, headers: dict[str, str] | None = None
) -> float:
    return asyncio.run(_load(base, total, conns, headers or {}))


def litellm_python() -> Path:
    venv = ROOT / ".bench" / "litellm-proxy"
    py = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"],
            check=True,
        )
        (venv / ".installed").touch()
    return py


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--requests", type=int, default=5000, help="per throughput run")
    ap.add_argument("--rss", type=int, default=0, help="calls before reading the daemon's RSS")
    ap.add_argument("--litellm", action="store_true", help="also run LiteLLM's proxy")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the simulator and daemon processes are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    py = sys.executable
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        process(
            [py, "-m", "agentopt.cli", "sim", "--time-scale", "0", "--port", "0"],
            "ANTHROPIC_BASE_URL",
        ) as (sim, _),
    ):
        store = str(Path(tmp) / "records.sqlite")
        with process(
            [py, "-m", "agentopt.cli", "serve", "--port", "0", "--store", store,
             "--openai-base-url", sim + "/v1", "--anthropic-base-url", sim],
            "listening on",
            env={"OPENAI_API_KEY": "sk-bench"},
        ) as (daemon, pid):  # fmt: skip
            added, added_ttfb = paired(sim, daemon, args.pairs)
            print(f"added latency, non-streamed, median of {args.pairs} pairs: {added:+.3f} ms")
            print(f"added time to first byte, streamed, median:            {added_ttfb:+.3f} ms")
            direct = throughput(sim, args.requests)
            ours = throughput(daemon, args.requests)
            print(f"throughput at 64 connections: simulator direct {direct:,.0f} req/s, "
                  f"through the daemon {ours:,.0f} req/s")  # fmt: skip
            if args.rss:
                before = rss_mb(pid)
                throughput(daemon, args.rss)
                print(
                    f"daemon RSS: {before:.0f} MB after warm-up, "
                    f"{rss_mb(pid):.0f} MB after {args.rss:,} more requests"
                )
        if args.litellm:
            lpy = litellm_python()
            cfg = Path(tmp) / "litellm.yaml"
            cfg.write_text(
                json.dumps(
                    {
                        "model_list": [
                            {
                                "model_name": "gpt-4o-mini",
                                "litellm_params": {
                                    "model": "openai/gpt-4o-mini",
                                    "api_base": sim + "/v1",
                                    "api_key": "sk-bench",
                                },
                            }
                        ]
                    }
                )
            )
            port = _free_port()
            with process(
                [str(lpy.parent / "litellm"), "--config", str(cfg), "--port", str(port),
                 "--host", "127.0.0.1", "--num_workers", "1"],
                None,
                env={"LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
                     "LITELLM_LOG": "ERROR"},
            ):  # fmt: skip
                base = f"http://127.0.0.1:{port}"
                _wait_ready(base)
                theirs = throughput(base, max(500, args.requests // 10))
            print(f"throughput at 64 connections: LiteLLM proxy {theirs:,.0f} req/s; "
                  f"daemon / LiteLLM = {ours / theirs:.1f}x")  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.post(base + "/v1/chat/completions", json=BODY, timeout=30).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("LiteLLM's proxy did not answer")


if __name__ == "__main__":
    main()
