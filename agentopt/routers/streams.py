"""Streams to replay routers on: simulated task tables with prompts, and mixes.

- :func:`sim_table` records every model of a simulated world on one task
  family (the simulator's models have different skills per family): a
  :class:`ReplayTable` with the prompt of every datapoint, 0/1 scores drawn by
  the simulator and costs from the world's prices and token counts.
- :func:`mix_tables` interleaves several tables into one: the arms they share,
  every datapoint (named ``table:datapoint``) with its own prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.replay import ReplayTable

__all__ = ["mix_tables", "sim_table"]


def sim_table(family: str, *, n: int | None = None, world: str = "default") -> ReplayTable:
    """Every model of ``world`` answering the first ``n`` items of ``family``
    (``"mcq"`` or ``"arithmetic"``), as the simulated provider would answer
    them (deterministic: the same table every time)."""
    from agentopt.sim.engine import SimRequest, answer
    from agentopt.sim.tasks import load_task
    from agentopt.sim.world import load_world

    w = load_world(world)
    items = load_task(family)[:n]
    prices = w.prices()
    k, d = len(w.models), len(items)
    score = np.zeros((k, d))
    cost = np.full((k, d), np.nan)
    tin = np.zeros((k, d))
    tout = np.zeros((k, d))
    lat = np.zeros((k, d))
    for i, model in enumerate(w.models):
        pin, pout = prices[model.name]
        for j, item in enumerate(items):
            reply = answer(w, model, SimRequest(model.name, f"user: {item.prompt}", 1))
            score[i, j] = float(bool(reply.correct))
            tin[i, j], tout[i, j] = reply.prompt_tokens, reply.completion_tokens
            lat[i, j] = reply.duration_s
            if pin is not None and pout is not None:
                cost[i, j] = (pin * reply.prompt_tokens + pout * reply.completion_tokens) / 1e6
    names = [m.name for m in w.models]
    return ReplayTable(
        name=f"sim-{family}",
        nodes=["agent"],
        combos=[{"agent": m} for m in names],
        labels=[f"agent={m}" for m in names],
        datapoints=list(range(d)),
        score=score,
        cost_usd=cost,
        latency_s=lat,
        input_tokens=tin,
        output_tokens=tout,
        prompts={j: item.prompt for j, item in enumerate(items)},
    )


def mix_tables(tables: Sequence[ReplayTable], *, name: str | None = None) -> ReplayTable:
    """One table with every datapoint of ``tables`` (``"<table>:<datapoint>"``),
    over the arms they all have. Tables must have the same nodes; arms only some
    tables have are dropped (an error if none is shared)."""
    if not tables:
        raise ConfigError("mix_tables: no table given")
    nodes = tables[0].nodes
    for t in tables[1:]:
        if t.nodes != nodes:
            raise ConfigError(
                f"cannot mix {tables[0].name} (nodes {nodes}) with {t.name} (nodes {t.nodes}): "
                "a mixed stream needs the same nodes in every table"
            )
    shared = [lab for lab in tables[0].labels if all(lab in t._arm_index for t in tables[1:])]
    if not shared:
        raise ConfigError("cannot mix " + ", ".join(t.name for t in tables) + ": they share no arm")
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        names = [f"{n}#{i}" for i, n in enumerate(names)]

    def stack(attr: str) -> np.ndarray:
        return np.concatenate(
            [getattr(t, attr)[[t._arm_index[lab] for lab in shared]] for t in tables], axis=1
        )

    datapoints: list[int | str] = []
    prompts: dict[int | str, str] = {}
    for tname, t in zip(names, tables, strict=True):
        for dp in t.datapoints:
            key = f"{tname}:{dp}"
            datapoints.append(key)
            if t.prompts and dp in t.prompts:
                prompts[key] = t.prompts[dp]
    first = tables[0]
    return ReplayTable(
        name=name or "+".join(names),
        nodes=list(nodes),
        combos=[first.combos[first._arm_index[lab]] for lab in shared],
        labels=shared,
        datapoints=datapoints,
        score=stack("score"),
        cost_usd=stack("cost_usd"),
        latency_s=stack("latency_s"),
        input_tokens=stack("input_tokens"),
        output_tokens=stack("output_tokens"),
        prompts=prompts or None,
    )
