"""What a call will cost, known before it is made: price map × token estimate.

A router that trades quality for money needs each arm's cost *for this
prompt* before choosing. Learning it from feedback is slow and noisy; the
price list is public. :class:`KnownCosts` prices each arm as

``(input price × prompt tokens + output price × output_tokens) × κ_arm``

where prices come from ``prices=`` or the PriceBook (litellm's map), the prompt
tokens from the request, and ``κ_arm`` is a calibration learned from the costs
feedback reports (prior 1, worth ``calibration_weight`` observations): it
absorbs what the list cannot know (a model that answers at length, an agent
that makes several calls per datapoint). An arm with no price costs its mean
observed cost, else the mean of the others'.

``prices`` values: ``(input, output)`` in $ per million tokens, or one number,
a flat $ per call (per datapoint for a combination). A combination costs the
sum of its models' prices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.routers.arms import Arms

__all__ = ["KnownCosts", "PriceSpec"]

#: model → (input $/M tokens, output $/M tokens), or a flat $ per call
PriceSpec = Mapping[str, float | tuple[float, float] | list[float]]


def _check(model: str, spec: Any) -> tuple[float, float, float]:
    """(input $/token, output $/token, flat $/call)."""
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        vals = (0.0, 0.0, float(spec))
    elif isinstance(spec, tuple | list) and len(spec) == 2:
        vals = (float(spec[0]) / 1e6, float(spec[1]) / 1e6, 0.0)
    else:
        raise ConfigError(
            f"prices[{model!r}]: expected (input, output) $ per million tokens or a flat "
            f"$ per call, got {spec!r}"
        )
    if not all(np.isfinite(v) and v >= 0 for v in vals):
        raise ConfigError(f"prices[{model!r}]: prices must be finite and >= 0, got {spec!r}")
    return vals


class KnownCosts:
    """Per-arm expected cost of one call (or one datapoint, for combinations)."""

    def __init__(
        self,
        arms: Arms,
        prices: PriceSpec | None = None,
        *,
        output_tokens: int = 256,
        calibration_weight: float = 2.0,
        price_book: bool = True,
    ) -> None:
        if output_tokens < 0:
            raise ConfigError(f"output_tokens must be >= 0, got {output_tokens!r}")
        if not calibration_weight > 0:
            raise ConfigError(f"calibration_weight must be > 0, got {calibration_weight!r}")
        self.arms = arms
        self.output_tokens = int(output_tokens)
        self.calibration_weight = float(calibration_weight)
        given = dict(prices or {})
        unknown = [m for m in given if m not in arms.models and m not in arms.index]
        if unknown:
            raise ConfigError(f"prices: not a candidate: {unknown}")
        per_model: dict[str, tuple[float, float, float] | None] = {}
        book = None
        for m in arms.models:
            if m in given:
                per_model[m] = _check(m, given[m])
                continue
            if book is None and price_book:
                from agentopt.pricing import default_price_book

                book = default_price_book()
            listed = book.price(m) if book is not None else None
            per_model[m] = None if listed is None else (listed.input, listed.output, 0.0)
        k = len(arms)
        self.input = np.zeros(k)
        self.output = np.zeros(k)
        self.flat = np.zeros(k)
        self.priced = np.ones(k, dtype=bool)
        for i, label in enumerate(arms.labels):
            if label in given and label not in arms.models:  # a price for a whole combination
                self.input[i], self.output[i], self.flat[i] = _check(label, given[label])
                continue
            for m in arms.arm_models[i]:
                rates = per_model[m]
                if rates is None:
                    self.priced[i] = False
                else:
                    self.input[i] += rates[0]
                    self.output[i] += rates[1]
                    self.flat[i] += rates[2]
        # calibration: Σ observed / Σ listed, per arm; and observed means for unpriced arms
        self._ratio_sum = np.zeros(k)
        self._n = np.zeros(k)
        self._obs_sum = np.zeros(k)
        # what does not change between decisions, kept rather than recomputed per call
        self._out = self.output * self.output_tokens
        self._all_priced = bool(self.priced.all())
        self._kappa = np.ones(k)

    def listed(self, prompt_tokens: int) -> np.ndarray:
        """Per-arm cost from the price list alone."""
        out: np.ndarray = self.input * max(prompt_tokens, 1)
        out += self._out
        out += self.flat
        return out

    def expected(self, prompt_tokens: int) -> np.ndarray:
        """Per-arm expected cost in USD for a prompt of ``prompt_tokens`` tokens."""
        cost = self.listed(prompt_tokens)
        cost *= self._kappa
        if not self._all_priced:
            seen = self._n > 0
            mean_obs = np.where(seen, self._obs_sum / np.maximum(self._n, 1.0), np.nan)
            fill_from = np.concatenate((cost[self.priced], mean_obs[~self.priced & seen]))
            fill = float(fill_from.mean()) if fill_from.size else 0.0
            cost = np.where(self.priced, cost, np.where(seen, mean_obs, fill))
        return cost

    def observe(self, i: int, cost_usd: float, prompt_tokens: int) -> None:
        """Learn from the cost one credited call (or datapoint) reported."""
        listed = float(self.listed(prompt_tokens)[i])
        self._n[i] += 1
        self._obs_sum[i] += cost_usd
        if self.priced[i] and listed > 0:
            self._ratio_sum[i] += cost_usd / listed
        elif self.priced[i]:
            self._ratio_sum[i] += 1.0
        self._calibrate()

    def _calibrate(self) -> None:
        w = self.calibration_weight
        self._kappa = (w + self._ratio_sum) / (w + self._n)

    def state_dict(self) -> dict[str, Any]:
        return {
            "ratio_sum": self._ratio_sum.tolist(),
            "n": self._n.tolist(),
            "obs_sum": self._obs_sum.tolist(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        k = len(self.arms)
        arrays = {key: np.asarray(state[key], dtype=float) for key in ("ratio_sum", "n", "obs_sum")}
        if any(a.shape != (k,) for a in arrays.values()):
            raise ConfigError(f"router state: cost calibration is not for {k} arms")
        self._ratio_sum, self._n, self._obs_sum = (
            arrays["ratio_sum"],
            arrays["n"],
            arrays["obs_sum"],
        )
        self._calibrate()
