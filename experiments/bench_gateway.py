"""The gateway daemon against the simulator at time scale 0: what it adds, what it serves.

    .venv/bin/python experiments/bench_gateway.py                 # latency, TTFB, throughput
    .venv/bin/python experiments/bench_gateway.py --litellm       # + LiteLLM's proxy, same load
    .venv/bin/python experiments/bench_gateway.py --rss 100000    # + RSS after that many calls
    .venv/bin/python experiments/bench_gateway.py --soak 60       # 200 clients, 5 % faults, SIGTERM

The simulator, the daemon (``agentopt serve``) and LiteLLM's proxy each run in
their own process. Added latency and time to first byte are medians of paired
calls (direct, then through the daemon, interleaved) on one keep-alive
connection. Throughput is completed requests per second with 64 concurrent
connections, driven by ``wrk`` when it is installed (``apt-get install wrk``:
a C load generator, so the client is not what saturates), else by this
process (then a lower bound: say so). Next to each figure: the server's CPU
time per request (its process tree's user+system time over the run), which
does not depend on how the 2 cores are shared. LiteLLM's proxy
(``litellm[proxy]`` at our pinned version) is installed into its own venv
under ``.bench/`` on first use and served the same requests in the same run.

``--soak S``: 200 concurrent clients (a quarter of them streaming) for S
seconds against a simulator world with 5 % injected faults (500, 429, dropped
connections, truncated and malformed bodies), then SIGTERM to the daemon while
they still send. Checks that every request a client got an answer to has its
records (one per attempt, linked by ``x-agentopt-request-id``), that nothing
was recorded that nobody was answered, and that no record is duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LITELLM_VERSION = "1.106.2"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is 2+2?"}]}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
WRK_SCRIPT = f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{json.dumps(BODY)}'
"""


def _read_url(proc: subprocess.Popen[str], marker: str) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if marker in line:
            return "http://" + line.split("http://", 1)[1].split()[0].rstrip("/.,")
    raise SystemExit(f"process did not start: {proc.args!r}")


@contextmanager
def process(
    args: list[str], marker: str | None, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})},
    )
    try:
        yield (_read_url(proc, marker) if marker else ""), proc
    finally:
        if proc.poll() is None:
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


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (LiteLLM's CLI may serve from a child)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            todo.extend(int(c) for c in task.read_text().split())
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid``'s process tree."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


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


class Load:
    """Throughput at ``conns`` connections: wrk when installed, else this process."""

    def __init__(self, tmp: Path, conns: int, seconds: float) -> None:
        self.conns = conns
        self.seconds = seconds
        self.wrk = shutil.which("wrk")
        self.script = tmp / "post.lua"
        self.script.write_text(WRK_SCRIPT)

    @property
    def client(self) -> str:
        if self.wrk:
            return f"wrk ({self.conns} connections, 2 threads, {self.seconds:g} s per target)"
        return f"this Python process ({self.conns} connections; a lower bound: install wrk)"

    def run(self, base: str, pid: int | None = None, headers: dict[str, str] | None = None) -> str:
        """``"N req/s (… µs CPU per request)"`` for ``base``."""
        self._drive(base, min(3.0, self.seconds), headers or {})  # warm-up, not counted
        cpu0 = cpu_seconds(pid) if pid else 0.0
        done, errors, elapsed = self._drive(base, self.seconds, headers or {})
        cpu = (cpu_seconds(pid) - cpu0) if pid else 0.0
        rate = done / elapsed
        text = f"{rate:,.0f} req/s"
        if pid and done:
            text += f" ({cpu / done * 1e6:,.0f} µs server CPU per request)"
        if errors:
            text += f" [{errors} of {done} not 2xx]"
        self.last = (rate, cpu / done if done else float("nan"))
        return text

    def requests(self, base: str, total: int) -> None:
        """Send at least ``total`` requests (for the RSS check)."""
        done = 0
        while done < total:
            n, _e, _t = self._drive(base, max(5.0, self.seconds), {})
            done += n

    def _drive(self, base: str, seconds: float, headers: dict[str, str]) -> tuple[int, int, float]:
        url = base + "/v1/chat/completions"
        if self.wrk:
            args = [self.wrk, "-t2", f"-c{self.conns}", f"-d{seconds:g}s", "--timeout", "60s",
                    "-s", str(self.script)]  # fmt: skip
            for k, v in headers.items():
                args += ["-H", f"{k}: {v}"]
            out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
            m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
            if m is None:
                raise SystemExit(f"wrk said:\n{out}")
            elapsed = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
            bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            errs = re.search(
                r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
            )
            n_err = (int(bad.group(1)) if bad else 0) + (
                sum(int(x) for x in errs.groups()) if errs else 0
            )
            return int(m.group(1)), n_err, elapsed
        return asyncio.run(_python_load(url, seconds, self.conns, headers))


async def _python_load(
    url: str, seconds: float, conns: int, headers: dict[str, str]
) -> tuple[int, int, float]:
    import aiohttp

    done = errors = 0
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=conns), headers=headers
    ) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                async with session.post(url, json=BODY) as r:
                    await r.read()
                    done += 1
                    errors += r.status != 200

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        return done, errors, time.perf_counter() - t0


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


def serve_args(store: str, sim: str) -> list[str]:
    return [sys.executable, "-m", "agentopt.cli", "serve", "--port", "0", "--store", store,
            "--openai-base-url", sim + "/v1", "--anthropic-base-url", sim]  # fmt: skip


def sim_args(world: str = "default") -> list[str]:
    return [sys.executable, "-m", "agentopt.cli", "sim", "--time-scale", "0", "--port", "0",
            "--world", world]  # fmt: skip


def bench(args: argparse.Namespace, tmp: Path) -> None:
    runner = Load(tmp, args.conns, args.seconds)
    print(f"load generator: {runner.client}")
    with process(sim_args(), "ANTHROPIC_BASE_URL") as (sim, sim_proc):
        store = str(tmp / "records.sqlite")
        with process(serve_args(store, sim), "listening on", {"OPENAI_API_KEY": "sk-bench"}) as (
            daemon,
            proc,
        ):
            added, added_ttfb = paired(sim, daemon, args.pairs)
            print(f"[{load()}]")
            print(f"added latency, non-streamed, median of {args.pairs} pairs: {added:+.3f} ms")
            print(f"added time to first byte, streamed, median:            {added_ttfb:+.3f} ms")
            print(f"throughput at {args.conns} connections [{load()}]")
            print(f"  simulator direct: {runner.run(sim, sim_proc.pid)}")
            print(f"  agentopt daemon:  {runner.run(daemon, proc.pid)}")
            ours, our_cpu = runner.last
            if args.rss:
                before = rss_mb(proc.pid)
                runner.requests(daemon, args.rss)
                print(
                    f"daemon RSS: {before:.0f} MB after warm-up, "
                    f"{rss_mb(proc.pid):.0f} MB after {args.rss:,}+ more requests"
                )
        if not args.litellm:
            return
        lpy = litellm_python()
        cfg = tmp / "litellm.yaml"
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
        ) as (_, lproc):  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base)
            print(f"  LiteLLM proxy:    {runner.run(base, lproc.pid)}  [{load()}]")
            theirs, their_cpu = runner.last
        print(
            f"daemon / LiteLLM proxy: {ours / theirs:.1f}x the throughput, "
            f"{their_cpu / our_cpu:.1f}x less CPU per request"
        )


# -- the soak -----------------------------------------------------------------------


async def _soak_clients(
    base: str, clients: int, stop: asyncio.Event
) -> tuple[dict[str, int | None], int]:
    """Clients that send until ``stop`` and then until the daemon refuses them:
    request id → attempts the answer reports (None when it does not say)."""
    import aiohttp

    answered: dict[str, int | None] = {}
    failed = 0
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=clients),
        timeout=aiohttp.ClientTimeout(total=120),
    ) as session:

        async def client(i: int) -> None:
            nonlocal failed
            n = 0
            while True:
                body = STREAM_BODY if (i + n) % 4 == 0 else BODY
                n += 1
                try:
                    async with session.post(base + "/v1/chat/completions", json=body) as r:
                        rid = r.headers.get("x-agentopt-request-id")
                        attempts = None
                        try:
                            content = await r.read()
                            if r.status == 200 and not body.get("stream"):
                                attempts = json.loads(content)["_routing"]["attempts"]
                        except (aiohttp.ClientError, ValueError, KeyError):
                            pass  # a stream cut short upstream is still an answer
                        if rid:
                            answered[rid] = attempts
                except (TimeoutError, aiohttp.ClientError, OSError):
                    failed += 1
                    if stop.is_set():
                        return  # the daemon is gone
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(client(i) for i in range(clients)))
    return answered, failed


def soak(args: argparse.Namespace, tmp: Path) -> bool:
    store = str(tmp / "soak.sqlite")
    print(f"soak: {args.clients} clients for {args.soak:g} s, 5 % faults, then SIGTERM [{load()}]")
    with process(sim_args("soak"), "ANTHROPIC_BASE_URL") as (sim, _):  # 5 % faults  # noqa: SIM117
        with process(serve_args(store, sim), "listening on", {"OPENAI_API_KEY": "sk-soak"}) as (
            daemon,
            proc,
        ):

            async def run() -> tuple[dict[str, int | None], int]:
                stop = asyncio.Event()
                task = asyncio.ensure_future(_soak_clients(daemon, args.clients, stop))
                await asyncio.sleep(args.soak)
                stop.set()
                proc.send_signal(signal.SIGTERM)  # while the clients still send
                return await task

            answered, failed = asyncio.run(run())
            assert proc.stdout is not None
            tail = proc.stdout.read()
            code = proc.wait(120)
    ok = check_records(store, answered)
    print(f"  daemon exit code {code}; it said: {tail.strip().splitlines()[-1:]}")
    print(f"  client requests without an answer (refused after SIGTERM): {failed}")
    return ok and code == 0


def check_records(store: str, answered: dict[str, int | None]) -> bool:
    """Records against answers: the soak's invariant (printed; True when it holds)."""
    from agentopt.tracking.storage.store import get_store

    s = get_store(store)
    try:
        records = s.query()
    finally:
        s.close()
    by_request: dict[str, list[int]] = {}
    for r in records:
        by_request.setdefault(r.request_id or r.call_id, []).append(r.attempt or 1)
    calls = Counter(r.call_id for r in records)
    duplicated = sum(n - 1 for n in calls.values() if n > 1)
    gaps = [k for k, a in by_request.items() if sorted(a) != list(range(1, len(a) + 1))]
    missing = set(answered) - set(by_request)
    extra = set(by_request) - set(answered)
    wrong = [k for k, n in answered.items() if n is not None and len(by_request.get(k, ())) != n]
    print(f"  requests answered: {len(answered):,}; requests recorded: {len(by_request):,} "
          f"({len(records):,} records, one per attempt)")  # fmt: skip
    print(f"  answered but not recorded: {len(missing)}; recorded but not answered: {len(extra)}; "
          f"duplicated records: {duplicated}; attempts miscounted: {len(wrong) + len(gaps)}")  # fmt: skip
    return not (missing or extra or duplicated or wrong or gaps)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0, help="per throughput run")
    ap.add_argument("--rss", type=int, default=0, help="calls before reading the daemon's RSS")
    ap.add_argument("--litellm", action="store_true", help="also run LiteLLM's proxy")
    ap.add_argument("--soak", type=float, default=0.0, help="seconds of the soak (only)")
    ap.add_argument("--clients", type=int, default=200, help="soak clients")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the simulator and daemon processes are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"machine: {os.cpu_count()} cores, {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.soak:
            sys.exit(0 if soak(args, Path(tmp)) else 1)
        bench(args, Path(tmp))


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
