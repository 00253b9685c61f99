"""Worlds: the simulated models a :class:`~agentopt.sim.SimServer` serves.

A world is a YAML or JSON file (or a dict) of models, each with a name and
aliases, a provider, prices, latency and output-length distributions, skills
per task family and optional fault injection. ``load_world("default")`` loads a
world shipped under ``agentopt/sim/worlds/``; any other string is a path.

Every field but the names has a default::

    name: my-world
    seed: 0                  # answers are deterministic per (seed, model, request)
    require_key: false       # true, or a list of providers: 401 unless a key is sent
    pair_noise: 0.03         # sd of the fixed per-(producer, reader) synergy
    models:
      - name: gpt-4o-mini
        aliases: ["small"]
        provider: openai     # informational; every model speaks both wire formats
        input_per_million: 0.15     # omit both to take the PriceBook's price
        output_per_million: 0.60
        skills: {mcq: 0.5, arithmetic: 0.85, general: 0.5}
        plan: 0.1            # effect of its output on a later call, in [-1, 1]
        tool_use: 0.9        # chance of calling a tool when offered (tool_choice auto)
        latency: {ttft_s: 0.25, ttft_sigma: 0.25, per_token_s: 0.01, per_token_sigma: 0.15}
        output_tokens: {median: 120, sigma: 0.35, min: 1, max: 4096}
        faults: {errors: {429: 0.05, 529: 0.01}, hang: 0.0, hang_s: 30, drop: 0.0,
                 truncate: 0.0, malformed: 0.0, retry_after_s: 1.0}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from agentopt.exceptions import SimulatorError

__all__ = [
    "Faults",
    "Latency",
    "OutputLength",
    "SimModel",
    "World",
    "builtin_worlds",
    "load_world",
]

WORLDS_DIR = Path(__file__).resolve().parent / "worlds"

#: HTTP statuses a world may inject as errors.
FAULT_STATUSES = (400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504, 529)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Latency(_Strict):
    """Time to first token and time per output token, in seconds (before the
    time scale). Each is drawn from a log-normal with this median and sigma."""

    ttft_s: float = Field(default=0.4, ge=0)
    ttft_sigma: float = Field(default=0.25, ge=0)
    per_token_s: float = Field(default=0.01, ge=0)
    per_token_sigma: float = Field(default=0.15, ge=0)


class OutputLength(_Strict):
    """Completion tokens: log-normal with this median and sigma, clipped."""

    median: int = Field(default=120, ge=1)
    sigma: float = Field(default=0.35, ge=0)
    min: int = Field(default=1, ge=1)
    max: int = Field(default=4096, ge=1)


class Faults(_Strict):
    """Fault injection, each rate a probability per request.

    ``errors`` maps an HTTP status (429, 500, 529, …) to its rate. ``hang``
    waits ``hang_s`` seconds (unscaled) before answering, ``drop`` closes the
    connection without a response, ``truncate`` ends a stream early (a
    non-streamed body is cut short), ``malformed`` sends a 200 whose body (or one
    SSE event) is not JSON.
    """

    errors: dict[int, float] = Field(default_factory=dict)
    hang: float = Field(default=0.0, ge=0, le=1)
    drop: float = Field(default=0.0, ge=0, le=1)
    truncate: float = Field(default=0.0, ge=0, le=1)
    malformed: float = Field(default=0.0, ge=0, le=1)
    hang_s: float = Field(default=30.0, ge=0)
    retry_after_s: float = Field(default=1.0, ge=0)

    @field_validator("errors")
    @classmethod
    def _check_errors(cls, v: dict[int, float]) -> dict[int, float]:
        for status, rate in v.items():
            if status not in FAULT_STATUSES:
                raise ValueError(f"status {status} is not one of {FAULT_STATUSES}")
            if not 0 <= rate <= 1:
                raise ValueError(f"rate {rate} for status {status} is not in [0, 1]")
        return v

    @property
    def total(self) -> float:
        return sum(self.errors.values()) + self.hang + self.drop + self.truncate + self.malformed


class SimModel(_Strict):
    """One simulated model.

    ``skills`` maps a task family (``mcq``, ``arithmetic``, ``general``) to the
    probability of answering a known question right. ``plan`` is how much this
    model's output helps (>0) or hurts (<0) a later call that reads it, in
    [-1, 1]. Prices are $ per million tokens; None takes them from the
    PriceBook under ``price_as`` (default: the name).
    """

    name: str
    aliases: list[str] = Field(default_factory=list)
    provider: Literal["openai", "anthropic", "other"] = "openai"
    published_as: str | None = None
    price_as: str | None = None
    input_per_million: float | None = Field(default=None, ge=0)
    output_per_million: float | None = Field(default=None, ge=0)
    skills: dict[str, float] = Field(default_factory=lambda: {"general": 0.5})
    plan: float = Field(default=0.0, ge=-1, le=1)
    tool_use: float = Field(default=0.9, ge=0, le=1)
    latency: Latency = Field(default_factory=lambda: Latency())
    output_tokens: OutputLength = Field(default_factory=lambda: OutputLength())
    faults: Faults = Field(default_factory=lambda: Faults())
    require_key: bool | None = None
    #: False: a chat request with ``stream_options`` gets a 400, as from some
    #: OpenAI-compatible servers (older vLLM, some gateways)
    accepts_stream_options: bool = True

    @field_validator("skills")
    @classmethod
    def _check_skills(cls, v: dict[str, float]) -> dict[str, float]:
        for family, p in v.items():
            if not 0 <= p <= 1:
                raise ValueError(f"skill {family}={p} is not in [0, 1]")
        return v

    def skill(self, family: str) -> float:
        """Probability of a right answer for ``family`` (falls back to ``general``)."""
        if family in self.skills:
            return self.skills[family]
        return self.skills.get("general", 0.5)


class World(_Strict):
    """A named set of simulated models plus world-wide settings."""

    name: str
    description: str = ""
    seed: int = 0
    require_key: bool | list[str] = False
    pair_noise: float = Field(
        default=0.03, ge=0, le=0.5, description="sd of the seeded per-(producer, reader) synergy"
    )
    models: list[SimModel]
    replay: str | None = Field(
        default=None, description="a replay table CSV this world answers from"
    )
    _index: dict[str, SimModel] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        index: dict[str, SimModel] = {}
        for m in self.models:
            for key in (m.name, *m.aliases):
                if key in index and index[key] is not m:
                    raise SimulatorError(f"world {self.name!r}: model name {key!r} is used twice")
                index[key] = m
        self._index = index

    def needs_key(self, model: SimModel) -> bool:
        """Whether requests to ``model`` must carry an API key: the model's own
        ``require_key`` if set, else the world's (true, or a list of providers)."""
        if model.require_key is not None:
            return model.require_key
        if isinstance(self.require_key, bool):
            return self.require_key
        return model.provider in self.require_key

    def get(self, name: str) -> SimModel | None:
        """The model called ``name`` (or by one of its aliases), else None."""
        m = self._index.get(name)
        if m is None and "/" in name:
            # "openai/gpt-4o" and similar gateway-style prefixes
            m = self._index.get(name.split("/", 1)[1])
        return m

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def prices(self) -> dict[str, tuple[float | None, float | None]]:
        """$ per million (input, output) tokens per model, PriceBook-filled."""
        from agentopt.pricing import default_price_book

        book = None
        out: dict[str, tuple[float | None, float | None]] = {}
        for m in self.models:
            pin, pout = m.input_per_million, m.output_per_million
            if pin is None or pout is None:
                book = book or default_price_book()
                price = book.price(m.price_as or m.name)
                if price is not None:
                    bin_, bout = price.per_million()
                    pin = bin_ if pin is None else pin
                    pout = bout if pout is None else pout
            out[m.name] = (pin, pout)
        return out


def builtin_worlds() -> list[str]:
    """Names of the worlds shipped with agentopt."""
    return [*sorted(p.stem for p in WORLDS_DIR.glob("*.yaml")), "replay:<table.csv>"]


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SimulatorError(f"cannot read world file {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise SimulatorError(
            f"world file {path} is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from exc
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as exc:  # json / yaml raise their own kinds
        raise SimulatorError(f"world file {path} is not valid YAML/JSON: {exc}") from exc


def load_world(world: str | Path | Mapping[str, Any] | World, *, seed: int | None = None) -> World:
    """A :class:`World` from a built-in name, a YAML/JSON path, a dict or a World.

    ``"replay:PATH.csv"`` (or a ``.csv`` path) builds a replay world from a
    recorded table (see :mod:`agentopt.sim.replay`). ``seed`` overrides the
    world's seed. Raises :class:`SimulatorError` naming the file and field at fault.
    """
    if isinstance(world, World):
        w = world
    else:
        where = "<dict>"
        if isinstance(world, Mapping):
            data: Any = dict(world)
        else:
            text = str(world)
            if text.startswith("replay:") or text.lower().endswith(".csv"):
                from agentopt.sim.replay import replay_world

                w = replay_world(text.removeprefix("replay:"))
                return w if seed is None else w.model_copy(update={"seed": seed})
            builtin = WORLDS_DIR / f"{text}.yaml"
            path = builtin if builtin.is_file() and "/" not in text else Path(text)
            if not path.is_file():
                raise SimulatorError(
                    f"no world {text!r}: not a built-in world ({', '.join(builtin_worlds())}) "
                    "and no such file"
                )
            where = str(path)
            data = _read(path)
        if not isinstance(data, Mapping):
            raise SimulatorError(f"world {where}: expected a mapping at the top level")
        try:
            w = World.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise SimulatorError(f"world {where}: {loc}: {first['msg']}") from exc
    if seed is not None:
        w = w.model_copy(update={"seed": seed})
    return w
