"""``agentopt sim`` prints its URL, serves, and stops on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx


def test_cli_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentopt.cli", "sim", "--time-scale", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = ""
        for _ in range(10):
            line = proc.stdout.readline().strip()
            if line.startswith("http://"):
                url = line
                break
        assert url.startswith("http://127.0.0.1:")
        r = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
    assert code == 0


def test_cli_bad_world_exits_1() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "agentopt.cli", "sim", "--world", "nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1 and "no world 'nowhere'" in r.stderr
