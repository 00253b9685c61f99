"""How long `import agentopt` takes, beside `import litellm`, in fresh interpreters.

Target (issue 2): `import agentopt` ≤ 0.25 s median, and litellm is not imported.

    .venv/bin/python experiments/bench_import.py [--runs 11]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def _time_import(stmt: str, runs: int) -> list[float]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", stmt], check=True, env=env)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    check = subprocess.run(
        [sys.executable, "-c", "import sys, agentopt; print('litellm' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    baseline = _time_import("pass", args.runs)
    ours = _time_import("import agentopt", args.runs)
    litellm = _time_import("import litellm", max(3, args.runs // 3))
    print(f"python -c 'pass'              median {statistics.median(baseline):.3f} s")
    print(
        f"python -c 'import agentopt'   median {statistics.median(ours):.3f} s  (target ≤ 0.25 s)"
    )
    print(f"python -c 'import litellm'    median {statistics.median(litellm):.3f} s")
    print(f"litellm imported by agentopt: {check.stdout.strip()}")


if __name__ == "__main__":
    main()
