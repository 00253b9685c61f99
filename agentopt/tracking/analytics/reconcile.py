"""Check a provider's bill: the tokens it reported against an independent count.

:func:`reconcile_usage` re-counts the stored request and response of each
recorded call with litellm's tokenizer-based ``token_counter`` (tiktoken for
OpenAI models, the model's own tokenizer where litellm has one, an
approximation otherwise) and sets it beside the usage the provider reported,
per model (or any :func:`~agentopt.tracking.analytics.usage.usage_stats` grouping key):

- ``reported_input_tokens`` / ``reported_output_tokens``: what the provider said;
- ``estimated_input_tokens`` / ``estimated_output_tokens``: the independent count;
- ``input_difference`` / ``output_difference``: reported − estimated, and
  ``*_ratio``: reported / estimated (a provider's chat template adds a few tokens
  per message, so a ratio a little above 1 is normal; far from 1 is worth a look);
- ``compared``: calls counted both ways; ``not_comparable``: calls with no stored
  body (redacted), no reported usage, a failure, or a body the tokenizer cannot
  read: counted apart, never guessed.

Each call's count is the one kept with its record (``estimated_input_tokens`` /
``estimated_output_tokens``, counted off the call's path by
:class:`~agentopt.tracking.analytics.token_estimate.TokenEstimator`, before redaction);
a record from before counts were kept is counted from its stored bodies here.
Filters are :func:`usage_stats`' filters; ``usage_stats`` shows the same sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from agentopt.records import CallRecord
from agentopt.tracking.analytics.token_estimate import comparable, estimate

__all__ = ["ReconcileGroup", "reconcile_usage"]


@dataclass
class ReconcileGroup:
    key: dict[str, Any]
    compared: int = 0
    not_comparable: int = 0
    reported_input_tokens: int = 0
    reported_output_tokens: int = 0
    estimated_input_tokens: int = 0
    estimated_output_tokens: int = 0

    @property
    def input_difference(self) -> int:
        return self.reported_input_tokens - self.estimated_input_tokens

    @property
    def output_difference(self) -> int:
        return self.reported_output_tokens - self.estimated_output_tokens

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_difference"] = self.input_difference
        d["output_difference"] = self.output_difference
        d["input_ratio"] = (
            self.reported_input_tokens / self.estimated_input_tokens
            if self.estimated_input_tokens
            else None
        )
        d["output_ratio"] = (
            self.reported_output_tokens / self.estimated_output_tokens
            if self.estimated_output_tokens
            else None
        )
        return d


def reconcile_usage(
    source: Any, *, group_by: str = "model", **filters: Any
) -> list[ReconcileGroup]:
    """Reported against re-counted tokens of the calls in ``source`` (a tracker, a
    record store or CallRecords) matching ``filters``; see the module docstring."""
    from agentopt.tracking.analytics.usage import _key_value, _matches, normalize

    conds, keys = normalize(filters, group_by)
    store = getattr(source, "store", source)
    if hasattr(store, "iter_records"):
        records: Iterable[CallRecord] = store.iter_records()
    elif hasattr(store, "all"):
        records = store.all()
    else:
        records = source
    groups: dict[tuple[Any, ...], ReconcileGroup] = {}
    for r in records:
        if not _matches(r, conds):
            continue
        kv = tuple(_key_value(r, k) for k in keys)
        g = groups.setdefault(kv, ReconcileGroup(key=dict(zip(keys, kv, strict=True))))
        if not comparable(r):
            g.not_comparable += 1
            continue
        if r.estimated_input_tokens is not None and r.estimated_output_tokens is not None:
            est_in, est_out = r.estimated_input_tokens, r.estimated_output_tokens  # kept per call
        else:  # a record from before counts were kept: count its stored bodies now
            counts = estimate(r.model or r.requested_model, r.request_body, r.response_body)
            if counts is None:
                g.not_comparable += 1
                continue
            est_in, est_out = counts
        g.compared += 1
        g.reported_input_tokens += r.prompt_tokens
        g.reported_output_tokens += r.completion_tokens
        g.estimated_input_tokens += est_in
        g.estimated_output_tokens += est_out
    return list(groups.values())
