"""Ctrl-C and errors in a script: one clear line, a plain exception, nothing finished lost.

Each test runs a real script in a subprocess and sends it a real SIGINT. The
timing is made deterministic by the agent: on its 4th run it writes a marker
file and waits for a "go" file; the test sends SIGINT after the marker appears
and only then writes "go". The signal is pending before the 4th run can
finish, so the selection stops exactly after it: 4 observations are kept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, contextlib, sys, time
    from pathlib import Path

    from agentopt import ModelSelector

    # held in a dict: run-time state, not part of the agent's fingerprint (a str
    # constant the agent reads would be), so the "resume" run reuses the cells
    cfg = {"tmp": Path(sys.argv[1]), "mode": sys.argv[2]}
    runs = {"n": 0}

    class Tracker:
        @contextlib.contextmanager
        def track(self, data_id=None, combo_id=None):
            yield

        def get_records(self, data_id=None, combo_id=None):
            return []

    class Agent:
        def __init__(self, combo):
            self.combo = combo

        def run(self, x):
            runs["n"] += 1
            tmp, mode = cfg["tmp"], cfg["mode"]
            if runs["n"] == 4 and mode != "resume":
                (tmp / "marker").write_text("running")
                deadline = time.monotonic() + 60
                while not (tmp / "go").exists() and time.monotonic() < deadline:
                    time.sleep(0.005)
            return x % 3 == 0

    def eval_fn(expected, actual):
        if cfg["mode"] == "bad-eval":
            return None
        return float(actual)

    selector = ModelSelector(
        agent=Agent, models={"m": ["a", "b"]}, eval_fn=eval_fn,
        dataset=[(i, None) for i in range(30)], method="brute_force", seed=0,
        tracker=Tracker(), store=cfg["tmp"] / "obs.sqlite",
    )

    if cfg["mode"] == "in-asyncio-run":
        async def main():
            return selector.select_best(parallel=False, progress=False)

        results = asyncio.run(main())
    else:
        results = selector.select_best(parallel=False, progress=False)
    print("done", results.evaluations, results.reused_evaluations, runs["n"])
    """
)


def _start(tmp_path: Path, mode: str) -> subprocess.Popen[str]:
    script = tmp_path / "my_selection.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the script ended before {path.name}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {path.name} after {timeout} s")
        time.sleep(0.01)


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 120.0) -> str:
    """stderr lines up to and including the one that starts with ``marker``."""
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"stderr ended before {marker!r}:\n{''.join(seen)}")
        seen.append(line)
        if line.startswith(marker):
            return "".join(seen)
    raise AssertionError(f"no {marker!r} within {timeout} s")


def _stored(tmp_path: Path) -> int:
    import sqlite3

    db = sqlite3.connect(tmp_path / "obs.sqlite")
    try:
        return int(db.execute("SELECT COUNT(*) FROM cells").fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize("mode", ["script", "in-asyncio-run"])
def test_ctrl_c_prints_one_line_keeps_what_finished_and_resumes(tmp_path: Path, mode: str) -> None:
    """Ctrl-C stops the selection (a sync select_best() inside asyncio.run too): one
    line says what was kept, KeyboardInterrupt is raised without CancelledError
    chains, and a re-run pays only for the rest."""
    proc = _start(tmp_path, mode)
    _wait_for(tmp_path / "marker", proc)
    proc.send_signal(signal.SIGINT)
    # "go" only once the handler has run (it says so at once): the stop is then
    # requested before the 4th run can finish, however loaded the machine is
    early = _read_until(proc, "agentopt: stopping after the evaluations running now")
    (tmp_path / "go").write_text("")
    out, err = proc.communicate(timeout=120)
    err = early + err
    assert proc.returncode in (-signal.SIGINT, 130), (out, err)
    assert "done" not in out  # it did not run to the end
    store = tmp_path / "obs.sqlite"
    lines = err.strip().splitlines()
    kept = _stored(tmp_path)
    # the run in flight finished and was kept; in a script the handler runs in the
    # loop's own thread, so nothing else starts (exactly 4); under asyncio.run the
    # loop is another thread, which may start a few more before the stop is seen
    assert kept == 4 if mode == "script" else 4 <= kept < 60
    assert f"agentopt: interrupted; {kept} observations kept in {store}; re-run to resume" in lines
    assert lines[-1] == "KeyboardInterrupt"
    assert "CancelledError" not in err and "During handling" not in err
    assert "no running event loop" not in err
    assert err.count("Traceback") == 1, err  # one traceback, not chains of them

    again = _start(tmp_path, "resume")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert out.split() == ["done", "60", str(kept), str(60 - kept)]  # kept reused, rest paid


def test_an_error_from_select_best_has_no_unrelated_context(tmp_path: Path) -> None:
    """No "RuntimeError: no running event loop … During handling" before the error."""
    proc = _start(tmp_path, "bad-eval")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "done" not in out
    assert "EvaluationsFailedError: the first 3 evaluations all failed" in err
    assert "eval_fn returned None" in err
    assert "no running event loop" not in err and "During handling" not in err
    assert "another exception occurred" not in err


def test_a_second_ctrl_c_drops_the_running_evaluations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The first press lets running evaluations finish; a second cancels them. The agent
    presses Ctrl-C itself, by calling the SIGINT handler select_best() installed
    (what the signal would do), so the order is exact: runs 1-3 are kept, run 4 is
    dropped, and select_best() raises KeyboardInterrupt with one line."""
    import contextlib
    from typing import Any

    from agentopt.selectors.selector import ModelSelector

    runs = {"n": 0}

    class Tracker:
        @contextlib.contextmanager
        def track(self, data_id: Any = None, combo_id: Any = None) -> Any:
            yield

        def get_records(self, data_id: Any = None, combo_id: Any = None) -> list[Any]:
            return []

    class Agent:
        def __init__(self, combo: dict[str, str]) -> None:
            self.combo = combo

        def run(self, x: int) -> bool:
            runs["n"] += 1
            if runs["n"] == 4:
                handler = signal.getsignal(signal.SIGINT)
                assert callable(handler) and handler is not signal.default_int_handler
                handler(signal.SIGINT, None)
                handler(signal.SIGINT, None)
            return x % 2 == 0

    sel = ModelSelector(
        agent=Agent, models={"m": ["a", "b"]}, eval_fn=lambda e, a: float(a),
        dataset=[(i, None) for i in range(10)], method="brute_force", tracker=Tracker(),
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        sel.select_best(parallel=False, progress=False)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    err = capsys.readouterr().err
    assert "agentopt: interrupted; 3 observations kept in memory" in err
    assert runs["n"] == 4
    res = sel.select_best(parallel=False, progress=False)  # resumes from memory
    assert res.reused_evaluations == 3 and runs["n"] == 4 + 20 - 3
