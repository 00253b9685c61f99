"""Agents for the Ray executor tests: importable by a driver subprocess, pickled by value
so Ray workers (which do not have ``tests/`` on their path) get them too."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import openai
import ray.cloudpickle

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

MODELS = ["gpt-4o-mini", "gpt-4.1"]


class SimAgent:
    """One chat call to the simulator per run. Class attributes configure it (they
    travel with the class): ``url``, and optionally ``kill_on`` (an input whose first
    attempt SIGKILLs its own worker after its LLM call, marked in ``marks``) and
    ``log_dir`` (each run writes its start and end times there)."""

    url = ""
    kill_on: str | None = None
    marks = ""
    log_dir = ""

    def __init__(self, combo: dict[str, Any]) -> None:
        self.model = combo["solver"]

    def run(self, question: str) -> str:
        start = time.time()
        client = openai.OpenAI(base_url=self.url, api_key="x", max_retries=0)
        r = client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": question}]
        )
        if self.kill_on is not None and question == self.kill_on:
            mark = Path(self.marks) / f"{self.model}.killed"
            if not mark.exists():
                mark.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-evaluation
        if self.log_dir:
            name = f"{os.getpid()}-{time.monotonic_ns()}.txt"
            (Path(self.log_dir) / name).write_text(f"{start} {time.time()}")
        return r.choices[0].message.content or ""


def agent_for(url: str, **attrs: Any) -> type[SimAgent]:
    """A SimAgent subclass bound to ``url`` (and the other class attributes)."""
    return type("SimAgent", (SimAgent,), {"url": url, **attrs})


def eval_fn(expected: str, actual: str) -> float:
    return float(f"Answer: {expected}" in actual)
