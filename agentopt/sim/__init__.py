"""sim: a simulated LLM provider speaking the OpenAI and Anthropic wire formats.

>>> from agentopt.sim import SimServer
>>> with SimServer("default", time_scale=0.0, seed=0) as sim:  # doctest: +SKIP
...     openai.OpenAI(base_url=sim.openai_base_url, api_key="x")

``SimServer`` runs it on loopback in a thread, ``create_app`` returns the ASGI
app, ``load_world`` reads a world (built-in name, YAML/JSON file, or
``replay:table.csv``). Graded tasks live in :mod:`agentopt.sim.tasks`.
"""

from __future__ import annotations

from agentopt.sim.app import SimApp, create_app
from agentopt.sim.marker import Marker, find_markers, strip_markers
from agentopt.sim.server import SimServer
from agentopt.sim.world import (
    Faults,
    Latency,
    OutputLength,
    SimModel,
    World,
    builtin_worlds,
    load_world,
)

__all__ = [
    "Faults",
    "Latency",
    "Marker",
    "OutputLength",
    "SimApp",
    "SimModel",
    "SimServer",
    "World",
    "builtin_worlds",
    "create_app",
    "find_markers",
    "load_world",
    "strip_markers",
]
