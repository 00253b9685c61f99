"""PriceBook: litellm's bundled price map plus user prices, without importing litellm.

litellm ships its price map as JSON inside the package. We read that file
directly (``importlib.util.find_spec`` locates the package without running it),
so pricing costs ~25 ms once instead of litellm's ~2 s import.

Example::

    book = PriceBook({"my-model": {"input": 0.5, "output": 1.5}})  # $ per million
    book.cost("openai/gpt-4o-mini", prompt_tokens=1000, completion_tokens=200)
    # Cost(usd=0.00027, known=True, ...)
    book.cost("who-knows", 10, 10).known   # False: unpriced, never $0
"""

from __future__ import annotations

import importlib.util
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentopt.exceptions import PricingError
from agentopt.records import Cost

__all__ = ["ModelPrice", "PriceBook", "default_price_book", "litellm_price_map_path"]

Unit = Literal["per_million", "per_token"]

_MAP_FILE = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Prices in $ per token. None where the source has no rate."""

    input: float
    output: float
    cached_input: float | None = None
    reasoning: float | None = None
    cache_write: float | None = None
    source: str = "user"

    def per_million(self) -> tuple[float, float]:
        return self.input * 1e6, self.output * 1e6


def litellm_price_map_path() -> Path | None:
    """Where litellm's bundled price map lives, found without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / _MAP_FILE
        if p.is_file():
            return p
    return None


def _strip_candidates(name: str) -> list[str]:
    """``a/b/c`` → [``a/b/c``, ``b/c``, ``c``]: provider and region prefixes dropped
    one at a time, most specific first."""
    out = [name]
    rest = name
    while "/" in rest:
        rest = rest.split("/", 1)[1]
        out.append(rest)
    return out


def _check_rate(model: str, key: str, value: float | None) -> None:
    """A rate must be a finite, non-negative number: NaN or infinity (``1e400``
    in JSON) would price every call as ``nan``/``inf`` and pass for known."""
    if value is None:
        return
    if not math.isfinite(value):
        raise PricingError(f"price of {model!r}: {key}={value!r} is not a finite number")
    if value < 0:
        raise PricingError(f"price of {model!r}: {key}={value} is negative")


def _parse_user_entry(model: str, entry: Any, unit: Unit) -> ModelPrice:
    scale = 1e-6 if unit == "per_million" else 1.0
    if isinstance(entry, ModelPrice):
        for name in ("input", "output", "cached_input", "reasoning", "cache_write"):
            _check_rate(model, name, getattr(entry, name))
        return entry
    if isinstance(entry, (tuple, list)) and len(entry) == 2:
        try:
            pair = float(entry[0]), float(entry[1])
        except (TypeError, ValueError) as exc:
            raise PricingError(f"price of {model!r}: {entry!r} is not two numbers") from exc
        _check_rate(model, "input", pair[0])
        _check_rate(model, "output", pair[1])
        return ModelPrice(pair[0] * scale, pair[1] * scale)
    if not isinstance(entry, Mapping):
        raise PricingError(
            f"price of {model!r} must be a mapping or an (input, output) pair, not {entry!r}"
        )
    e = dict(entry)
    entry_unit = e.pop("unit", None)
    if entry_unit is not None:
        if entry_unit not in ("per_million", "per_token"):
            raise PricingError(
                f"price of {model!r}: unit must be 'per_million' or 'per_token', not {entry_unit!r}"
            )
        scale = 1e-6 if entry_unit == "per_million" else 1.0

    def num(*keys: str, per_token: bool = False) -> float | None:
        for k in keys:
            if k in e and e[k] is not None:
                try:
                    v = float(e[k])
                except (TypeError, ValueError) as exc:
                    raise PricingError(f"price of {model!r}: {k}={e[k]!r} is not a number") from exc
                _check_rate(model, k, v)
                return v if per_token else v * scale
        return None

    # Explicit litellm-style per-token keys, explicit per-million keys, or bare keys in `unit`.
    inp = num("input_cost_per_token", per_token=True)
    if inp is None:
        inp = (
            v * 1e-6
            if (v := num("input_per_million", "input_per_1m", per_token=True)) is not None
            else num("input", "prompt", "input_price")
        )
    out = num("output_cost_per_token", per_token=True)
    if out is None:
        out = (
            v * 1e-6
            if (v := num("output_per_million", "output_per_1m", per_token=True)) is not None
            else num("output", "completion", "output_price")
        )
    if inp is None or out is None:
        raise PricingError(
            f"price of {model!r} needs an input and an output rate "
            f"(keys 'input'/'output' in {unit}, or 'input_cost_per_token'/'output_cost_per_token')"
        )
    cached = num("cache_read_input_token_cost", per_token=True)
    if cached is None:
        cached = num("cached_input", "cache_read")
    reasoning = num("output_cost_per_reasoning_token", per_token=True)
    if reasoning is None:
        reasoning = num("reasoning")
    return ModelPrice(inp, out, cached_input=cached, reasoning=reasoning, source="user")


def _load_user_file(path: Path) -> tuple[dict[str, Any], Unit]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PricingError(f"{path}: cannot read price file: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise PricingError(
            f"{path}: price file is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise PricingError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    if not isinstance(data, dict):
        raise PricingError(f"{path}: expected a mapping of model → price at the top level")
    unit = data.pop("unit", "per_million")
    if unit not in ("per_million", "per_token"):
        raise PricingError(f"{path}: unit must be 'per_million' or 'per_token', not {unit!r}")
    models = data.pop("models", None)
    if models is not None:
        if not isinstance(models, dict):
            raise PricingError(f"{path}: 'models' must be a mapping")
        data = {**data, **models}
    return data, unit


class PriceBook:
    """Resolves a model name to a price and computes the cost of a call.

    User prices win over litellm's map. Names are matched exactly, then with
    provider and region prefixes stripped (``openai/gpt-4o-mini`` → ``gpt-4o-mini``,
    ``bedrock/us-east-1/anthropic.claude…`` → ``anthropic.claude…``), then
    case-insensitively. Resolutions are memoised: after the first lookup of a
    name a cost is a dict hit and a few multiplications.
    """

    def __init__(
        self,
        user_prices: Mapping[str, Any] | str | Path | None = None,
        *,
        unit: Unit = "per_million",
        use_litellm: bool = True,
    ) -> None:
        if unit not in ("per_million", "per_token"):
            raise PricingError(f"unit must be 'per_million' or 'per_token', not {unit!r}")
        self._user: dict[str, ModelPrice] = {}
        self._use_litellm = use_litellm
        self._map: dict[str, ModelPrice] | None = None
        self._map_lower: dict[str, str] | None = None
        self._resolved: dict[str, tuple[str, ModelPrice] | None] = {}
        self._lock = threading.Lock()
        if user_prices is not None:
            self.update(user_prices, unit=unit)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to a worker process) as its user prices and options: the lock and
        the memoised litellm map stay behind and are rebuilt on first use."""
        return {"_user": dict(self._user), "_use_litellm": self._use_litellm}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._user = state["_user"]
        self._use_litellm = state["_use_litellm"]
        self._map = None
        self._map_lower = None
        self._resolved = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- sources
    def update(self, prices: Mapping[str, Any] | str | Path, *, unit: Unit = "per_million") -> None:
        """Add user prices (they win over litellm's map)."""
        if isinstance(prices, (str, Path)):
            data, unit = _load_user_file(Path(prices))
        else:
            data = dict(prices)
        parsed = {str(m): _parse_user_entry(str(m), e, unit) for m, e in data.items()}
        with self._lock:
            self._user.update(parsed)
            self._resolved.clear()

    def _load_map(self) -> dict[str, ModelPrice]:
        if self._map is not None:
            return self._map
        with self._lock:
            if self._map is not None:
                return self._map
            table: dict[str, ModelPrice] = {}
            path = litellm_price_map_path() if self._use_litellm else None
            if path is not None:
                try:
                    raw = json.loads(path.read_text())
                except (OSError, ValueError) as exc:
                    raise PricingError(f"{path}: cannot read litellm's price map: {exc}") from exc
                for name, e in raw.items():
                    if not isinstance(e, dict) or name == "sample_spec":
                        continue
                    inp, out = e.get("input_cost_per_token"), e.get("output_cost_per_token")
                    if not isinstance(inp, (int, float)) or not isinstance(out, (int, float)):
                        continue
                    if not (math.isfinite(inp) and math.isfinite(out)):
                        continue  # a broken entry is unpriced, never nan/inf
                    table[name] = ModelPrice(
                        float(inp),
                        float(out),
                        cached_input=e.get("cache_read_input_token_cost"),
                        reasoning=e.get("output_cost_per_reasoning_token"),
                        cache_write=e.get("cache_creation_input_token_cost"),
                        source="litellm",
                    )
            self._map_lower = {k.lower(): k for k in table}
            self._map = table
            return table

    def __len__(self) -> int:
        return len(self._load_map().keys() | self._user.keys())

    # ----------------------------------------------------------------- lookup
    def resolve(self, model: str) -> tuple[str, ModelPrice] | None:
        """The (matched name, price) for ``model``, or None when unpriced."""
        try:
            return self._resolved[model]
        except KeyError:
            pass
        found = self._resolve_uncached(model)
        self._resolved[model] = found
        return found

    def _resolve_uncached(self, model: str) -> tuple[str, ModelPrice] | None:
        cands = _strip_candidates(model.strip())
        for c in cands:
            if c in self._user:
                return c, self._user[c]
        user_lower = {k.lower(): k for k in self._user}
        for c in cands:
            k = user_lower.get(c.lower())
            if k is not None:
                return k, self._user[k]
        table = self._load_map()
        for c in cands:
            if c in table:
                return c, table[c]
        lower = self._map_lower or {}
        for c in cands:
            k = lower.get(c.lower())
            if k is not None:
                return k, table[k]
        return None

    def price(self, model: str) -> ModelPrice | None:
        r = self.resolve(model)
        return None if r is None else r[1]

    def is_priced(self, model: str) -> bool:
        return self.resolve(model) is not None

    def cost(
        self,
        model: str | None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        *,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Cost:
        """The cost of one call. ``cached_tokens`` are part of ``prompt_tokens`` and
        billed at the cached-read rate where the source has one;
        ``reasoning_tokens`` are part of ``completion_tokens`` and billed at the
        reasoning rate where one exists (else as output)."""
        if model is None:
            return Cost(usd=None, known=False)
        r = self.resolve(model)
        if r is None:
            return Cost._trusted(None, False, model, None, None, None)
        name, p = r
        cached = min(max(cached_tokens, 0), prompt_tokens)
        fresh = prompt_tokens - cached
        input_usd = fresh * p.input + cached * (
            p.cached_input if p.cached_input is not None else p.input
        )
        if cache_write_tokens and p.cache_write is not None:
            input_usd += cache_write_tokens * p.cache_write
        reasoning = min(max(reasoning_tokens, 0), completion_tokens)
        output_usd = (completion_tokens - reasoning) * p.output + reasoning * (
            p.reasoning if p.reasoning is not None else p.output
        )
        return Cost._trusted(input_usd + output_usd, True, name, input_usd, output_usd, p.source)

    def cost_usd(
        self, model: str | None, prompt_tokens: int = 0, completion_tokens: int = 0, **kw: int
    ) -> float | None:
        """Like :meth:`cost`, as a float or None when unpriced."""
        return self.cost(model, prompt_tokens, completion_tokens, **kw).usd


_default: PriceBook | None = None
_default_lock = threading.Lock()


def default_price_book() -> PriceBook:
    """The process-wide PriceBook (litellm's map, no user prices)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = PriceBook()
    return _default
