"""The published package's result surface, on top of :class:`SelectionResults`.

:class:`CompatResults` is a base class of ``SelectionResults``: iterating
yields :class:`ModelResult` objects (best first), and ``get_best(attribute=None)``,
``get_by_attribute``, ``results``, ``selection_wall_time_seconds`` and a
LiteLLM-style ``export_config(path, api_key_env_vars=None)`` behave as documented
there. A ``ModelResult`` also answers every :class:`ArmResult` attribute of ours
(``label``, ``score``, ``lower``, ``cost_per_item``, …), so code written for
either keeps working.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from agentopt.compat.objective import combined_objectives

if TYPE_CHECKING:
    from agentopt.records import Observation
    from agentopt.selectors.objective import Objective
    from agentopt.selectors.results import ArmResult

__all__ = ["CompatResults", "DatapointResult", "ModelResult", "litellm_model_list"]

#: the metric track every result of ours is scored under (one track per selection)
ATTRIBUTE = "score"

# provider → the environment variable holding its key (LiteLLM's names)
_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "vertex_ai": "VERTEXAI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "azure": "AZURE_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
}


@dataclass(frozen=True, slots=True)
class DatapointResult:
    """One combination on one datapoint."""

    datapoint_index: int
    score: float
    latency_seconds: float
    input_tokens: dict[str, int]
    output_tokens: dict[str, int]
    cost_usd: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class ModelResult:
    """One combination's result, in the published package's terms.

    ``price`` is $ per sample (None when a call was unpriced), ``latency_seconds``
    the mean per datapoint, token dicts are totals by model over its datapoints.
    Any other attribute is the :class:`ArmResult`'s (``label``, ``score``, …).
    """

    model_name: str
    accuracy: float
    combined_objective: float | None
    latency_seconds: float
    input_tokens: dict[str, int]
    output_tokens: dict[str, int]
    attribute: str
    is_best: bool
    datapoint_results: list[DatapointResult]
    price: float | None
    summary: ArmResult = field(repr=False)

    @property
    def total_input_tokens(self) -> int:
        return sum(self.input_tokens.values())

    @property
    def total_output_tokens(self) -> int:
        return sum(self.output_tokens.values())

    @property
    def num_samples(self) -> int:
        """Datapoints evaluated (1 for a combination never evaluated, as documented)."""
        return len(self.datapoint_results) or 1

    def __getattr__(self, name: str) -> Any:
        if name == "summary":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.summary, name)

    def __str__(self) -> str:
        tokens = {
            m: self.input_tokens.get(m, 0) + self.output_tokens.get(m, 0) for m in self.input_tokens
        }
        price = "unpriced" if self.price is None else f"${self.price:.6f}"
        return (
            f"{self.model_name} (accuracy: {self.accuracy:.1%}, latency: "
            f"{self.latency_seconds:.2f}s, tokens: {tokens}, price: {price})"
        )


def _datapoint(d: int, o: Observation) -> DatapointResult:
    by_model = o.tokens_by_model or {}
    return DatapointResult(
        datapoint_index=d,
        score=o.score,
        latency_seconds=o.latency_seconds or 0.0,
        input_tokens={m: int(t[0]) for m, t in by_model.items()},
        output_tokens={m: int(t[1]) for m, t in by_model.items()},
        cost_usd=o.cost_usd,
        error=o.error,
    )


def _summed(points: list[DatapointResult], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in points:
        for m, n in getattr(p, key).items():
            out[m] = out.get(m, 0) + n
    return out


@cache
def _providers() -> dict[str, str]:
    from agentopt.pricing import litellm_price_map_path

    path = litellm_price_map_path()
    if path is None:
        return {}
    data = json.loads(path.read_text())
    return {
        k: v["litellm_provider"]
        for k, v in data.items()
        if isinstance(v, dict) and v.get("litellm_provider")
    }


def _provider(model: str) -> str:
    if "/" in model:
        return model.split("/", 1)[0]
    known = _providers().get(model)
    if known:
        return "gemini" if known.startswith("vertex_ai") and "gemini" in model else known
    low = model.lower()
    if low.startswith("claude"):
        return "anthropic"
    if low.startswith("gemini"):
        return "gemini"
    return "openai"


def litellm_model_list(
    combo: Mapping[str, str], api_key_env_vars: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """LiteLLM proxy ``model_list`` entries: one per node, named after the node,
    its ``litellm_params`` naming the provider-qualified model and the key's
    environment variable (``os.environ/NAME``; ``api_key_env_vars`` maps a
    provider to another variable name)."""
    overrides = dict(api_key_env_vars or {})
    out = []
    for node, model in combo.items():
        provider = _provider(model)
        qualified = model if "/" in model else f"{provider}/{model}"
        env = overrides.get(provider) or _KEY_ENV.get(provider) or f"{provider.upper()}_API_KEY"
        out.append(
            {
                "model_name": node,
                "litellm_params": {"model": qualified, "api_key": f"os.environ/{env}"},
            }
        )
    return out


class CompatResults:
    """Mixin of :class:`~agentopt.selectors.results.SelectionResults` (see the module)."""

    # set by the selector after the results are built
    lambda_cost: float = 0.0
    lambda_latency: float = 0.0
    selection_wall_time_seconds: float | None = None

    if TYPE_CHECKING:
        arms: list[ArmResult]
        observations: list[tuple[int, int, Observation]]
        labels: list[dict[str, str]]
        objective: Objective

        def summary_dict(self) -> dict[str, Any]: ...

    @property
    def results(self) -> list[ModelResult]:
        """Every combination as a :class:`ModelResult`, best first."""
        cached: list[ModelResult] | None = self.__dict__.get("_model_results")
        if cached is None:
            cached = self._model_results()
            self.__dict__["_model_results"] = cached
        return cached

    def _model_results(self) -> list[ModelResult]:
        per_arm: dict[int, list[DatapointResult]] = {}
        for arm, d, o in self.observations:
            per_arm.setdefault(arm, []).append(_datapoint(d, o))
        combined: list[float | None] = [None] * len(self.labels)
        if self.lambda_cost or self.lambda_latency:
            combined = combined_objectives(
                ((a, o) for a, _, o in self.observations),
                len(self.labels),
                self.lambda_cost,
                self.lambda_latency,
            )
        out = []
        for a in self.arms:
            points = sorted(per_arm.get(a.arm, []), key=lambda p: p.datapoint_index)
            out.append(
                ModelResult(
                    model_name=a.label,
                    accuracy=a.score,
                    combined_objective=combined[a.arm],
                    latency_seconds=a.latency_per_item
                    if a.latency_per_item is not None
                    else math.nan,
                    input_tokens=_summed(points, "input_tokens"),
                    output_tokens=_summed(points, "output_tokens"),
                    attribute=ATTRIBUTE,
                    is_best=a.best,
                    datapoint_results=points,
                    price=a.cost_per_item,
                    summary=a,
                )
            )
        return out

    def __iter__(self) -> Any:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.arms)

    @overload
    def get_best(self) -> ModelResult: ...

    @overload
    def get_best(self, attribute: str | None) -> ModelResult | None: ...

    def get_best(self, attribute: str | None = None) -> ModelResult | None:
        """The chosen combination (never an eliminated arm); ``attribute`` scopes the
        lookup to a metric track (ours has one, ``"score"``: another gives None)."""
        if attribute is not None and attribute != ATTRIBUTE:
            return None
        return self.results[0]

    def get_by_attribute(self, attribute: str) -> list[ModelResult]:
        """Every result scored under ``attribute``."""
        return [r for r in self.results if r.attribute == attribute]

    def export_config(
        self, path: str | Path, api_key_env_vars: Mapping[str, str] | None = None
    ) -> Path:
        """Write the chosen combination as a LiteLLM proxy config (``model_list``, one
        entry per node) plus, under ``agentopt_selection``, how it was chosen."""
        import yaml

        best = self.results[0]
        # how the pick was made first: `agentopt report` recognises the file by it
        doc = {
            "agentopt_selection": self.summary_dict(),
            "model_list": litellm_model_list(best.summary.combo, api_key_env_vars),
        }
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(doc, sort_keys=False))
        return p
