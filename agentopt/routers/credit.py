"""Credit assignment: which arms a datapoint's reward goes to.

A datapoint's reward credits every call the router routed in it (every arm
pulled); with per-node candidates it credits the combination chosen for it,
once. The router's own record of what it routed is exact; the tracker's
feedback (``models`` / ``combo``, which name models as they answered) fills in
what the router did not route, e.g. after a restart or for a node whose call
kept the caller's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentopt.routers.arms import Arms
from agentopt.routers.context import Feedback

__all__ = ["Credit", "Pending", "assign"]


@dataclass(slots=True)
class Pending:
    """What the router did for one datapoint, until its feedback arrives."""

    arms: list[int] = field(default_factory=list)  # flat: every arm pulled
    arm: int | None = None  # multi-node: the combination chosen
    used: dict[str, str] = field(default_factory=dict)  # node → model routed
    features: Any = None  # the policy's context (default: PromptFeatures)


@dataclass(slots=True)
class Credit:
    arms: list[int]  # arm indices to credit (one entry per credit)
    cost_share: float | None  # cost attributed to each credit
    spent_by: list[str]  # the models the datapoint's cost is split over
    uncredited: int  # calls or combinations that matched no arm


def assign(arms: Arms, pend: Pending | None, fb: Feedback, cost: float | None) -> Credit:
    """The credits of one feedback (``cost`` is its validated ``cost_usd``)."""
    credits: list[int] = []
    uncredited = 0
    reported = [arms.match_model(m) or m for m in fb.models]
    if arms.combos is None:
        if pend is not None and pend.arms:
            credits = list(pend.arms)
            spent_by = reported or [arms.labels[i] for i in credits]
        else:
            for m in fb.models:
                hit = arms.match_model(m)
                if hit is None:
                    uncredited += 1
                else:
                    credits.append(arms.index[hit])
            spent_by = reported
        # each call's share of the datapoint's cost
        n_calls = max(len(spent_by), len(credits))
        share = None if cost is None or not credits else cost / n_calls
        return Credit(credits, share, spent_by, uncredited)
    if (
        pend is not None
        and pend.arm is not None
        and all(n in pend.used or n not in arms.by_node_model for n in fb.combo or ())
    ):
        # the common case, without building the label: the router chose the
        # combination, its routed nodes always agree with it, and the
        # feedback names no node it did not route
        spent_by = reported or list(arms.arm_models[pend.arm])
        return Credit([pend.arm], cost, spent_by, 0)
    combo: dict[str, str] = {}
    if pend is not None and pend.arm is not None:
        combo.update(arms.combos[pend.arm])
        combo.update(pend.used)
    routed = pend.used if pend is not None else {}
    for node, m in (fb.combo or {}).items():
        # nodes this router routed keep what it routed; others as reported
        if node in arms.by_node_model and node not in routed:
            combo[node] = arms.match_model(m) or m
    label = arms.label_of(combo)
    if label is None:
        uncredited += 1
    else:
        credits.append(arms.index[label])
    spent_by = reported or list(dict.fromkeys(combo.values()))
    return Credit(credits, cost, spent_by, uncredited)
