"""``experiments/bench_replicas.py``, the README's replica figures, runs end to end
(small sizes): it starts its own PostgreSQL, as the README says, and checks what it
measures (every record stored once, every history row folded once)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_replica_benchmark_runs_on_a_postgresql_it_starts_itself() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "experiments/bench_replicas.py",
            "--records",
            "100",
            "--calls",
            "20",
            "--latency-calls",
            "5",
            "--history",
            "500",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "records into one PostgreSQL from 2 processes" in out.stdout
    assert "every record stored once" in out.stdout
    assert "a replica that starts on 500 feedback rows and as many usage rows" in out.stdout
