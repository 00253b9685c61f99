"""The daemon's configuration: a YAML file validated with pydantic.

Every key is optional; ``GatewayConfig()`` (no file at all) serves the
official OpenAI and Anthropic APIs with keys from the environment::

    # gateway.yaml
    providers:
      vllm: {base_url: http://127.0.0.1:8000/v1, wire: openai}   # any OpenAI-compatible server
    aliases:
      smart: {targets: [openai/gpt-4o, anthropic/claude-sonnet-4-6], router: thompson}
      safe: {targets: [openai/gpt-4o-mini, anthropic/claude-haiku-4-5], router: fallback}
    keys: engine          # engine | caller | caller-first
    redact: false
    retention_days: 30
    resilience:           # retries, breakers, probes and time-outs (defaults shown)
      retries: {max_attempts: 3, base_delay: 0.25, max_delay: 8, max_retry_after: 30}
      breaker: {failure_threshold: 5, cooldown: 30}
      timeouts: {connect: 10, first_byte: 300, idle: 120}
      health_checks: {vllm: {path: /models, interval: 10, failure_threshold: 3}}
    capture: {enabled: false, dir: ./capture, redact: false}
    telemetry: {metrics: true, otlp_endpoint: http://127.0.0.1:4318/v1/traces}
    dashboard: {enabled: true, selections: [selection.sqlite]}

Aliases and providers may override ``retries`` for their own calls.

A bad file is a :class:`~agentopt.exceptions.ConfigError` naming the file,
the key and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentopt.exceptions import ConfigError

__all__ = [
    "AliasConfig",
    "BreakerConfig",
    "CaptureConfig",
    "DashboardConfig",
    "GatewayConfig",
    "HealthCheckConfig",
    "KeyPolicy",
    "ProviderConfig",
    "ResilienceConfig",
    "RetryConfig",
    "TelemetryConfig",
    "TimeoutConfig",
    "load_config",
]

KeyPolicy = Literal["engine", "caller", "caller-first"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryConfig(_Strict):
    """Retries of one target before falling back (``max_attempts`` counts the first)."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    base_delay: float = Field(default=0.25, ge=0)
    max_delay: float = Field(default=8.0, ge=0)
    max_retry_after: float = Field(default=30.0, ge=0)

    def policy(self) -> Any:
        from agentopt.resilience import RetryPolicy

        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            max_retry_after=self.max_retry_after,
        )


class BreakerConfig(_Strict):
    """A backend's breaker opens after ``failure_threshold`` consecutive failures and
    lets one trial call through after ``cooldown`` seconds."""

    failure_threshold: int = Field(default=5, ge=1)
    cooldown: float = Field(default=30.0, ge=0)


class HealthCheckConfig(_Strict):
    """An HTTP probe of one provider: GET ``<base_url><path>`` every ``interval`` s."""

    path: str = "/models"
    interval: float = Field(default=10.0, gt=0)
    failure_threshold: int = Field(default=3, ge=1)
    timeout: float = Field(default=5.0, gt=0)


class TimeoutConfig(_Strict):
    """Seconds: to connect, to the response's first byte, and between two chunks."""

    connect: float = Field(default=10.0, gt=0)
    first_byte: float = Field(default=300.0, gt=0)
    idle: float = Field(default=120.0, gt=0)


class ResilienceConfig(_Strict):
    retries: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig)
    #: provider name → its probe (providers without one get passive checks only)
    health_checks: dict[str, HealthCheckConfig] = Field(default_factory=dict)


class CaptureConfig(_Strict):
    """Wire capture of every exchange (see :mod:`agentopt.gateway.capture`)."""

    enabled: bool = False
    #: where capture files go (default: ``capture/`` next to the record store)
    dir: str | None = None
    #: store no message content (default: the top-level ``redact``)
    redact: bool | None = None
    max_bytes: int = Field(default=64 << 20, ge=1024)
    max_files: int | None = Field(default=None, ge=1)


class TelemetryConfig(_Strict):
    #: serve ``GET /metrics`` (Prometheus)
    metrics: bool = True
    #: export one OpenTelemetry span per call to this OTLP/HTTP endpoint (the ``otel`` extra)
    otlp_endpoint: str | None = None
    #: keep an independent count of each call's tokens (litellm's tokenizer, in a
    #: background thread, before redaction) beside the provider's usage
    estimate_tokens: bool = True


class DashboardConfig(_Strict):
    enabled: bool = True
    #: selection observation stores the dashboard's selection view offers
    selections: list[str] = Field(default_factory=list)


class ProviderConfig(_Strict):
    """An upstream the daemon may forward to, addressed as ``<name>/<model>``."""

    base_url: str
    wire: Literal["openai", "anthropic"] = "openai"
    #: The environment variable holding its key (default ``<NAME>_API_KEY``).
    api_key_env: str | None = None
    #: Retries of calls to this provider (default: ``resilience.retries``).
    retries: RetryConfig | None = None

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return v.rstrip("/")


class AliasConfig(_Strict):
    """A model name that stands for several targets, chosen by a router."""

    targets: list[str] = Field(min_length=1)
    #: Any registered router name (``thompson``, ``ucb``…), or ``fallback``:
    #: the targets in order, the next one tried when one fails.
    router: str = "fallback"
    #: Extra constructor arguments of the router (``seed``, ``budget_usd``…).
    options: dict[str, Any] = Field(default_factory=dict)
    #: Retries of each target before the next (default: the provider's, else global).
    retries: RetryConfig | None = None

    @field_validator("targets")
    @classmethod
    def _qualified(cls, v: list[str]) -> list[str]:
        for t in v:
            if not isinstance(t, str) or "/" not in t.strip("/"):
                raise ValueError(f"each target must be 'provider/model', got {t!r}")
        return v


class GatewayConfig(_Strict):
    """Everything ``agentopt serve`` can be told in its YAML file."""

    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    aliases: dict[str, AliasConfig] = Field(default_factory=dict)
    keys: KeyPolicy = "engine"
    #: A YAML/JSON file ``{PROVIDER_API_KEY: value}``; refused unless its mode is 0600.
    secrets_file: str | None = None
    redact: bool = False
    retention_days: float | None = Field(default=None, gt=0)
    #: Requests with a larger body get 413.
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    #: Where router state is saved and restored (default: next to the store).
    state_dir: str | None = None
    #: With a PostgreSQL store: how often each replica folds the feedback other
    #: replicas received into its routers, and appends and folds the calls and
    #: spend that quotas and budgets count (the staleness bounds; see gateway.replicas).
    router_sync_seconds: float = Field(default=0.5, gt=0)
    #: Write each non-streamed call's record before answering it (one transaction
    #: per call, shared by concurrent calls), so a replica killed without warning
    #: loses no record of a call it answered. While the store fails, calls are
    #: answered at once and their records wait in memory as usual.
    commit_before_answer: bool = False
    resilience: ResilienceConfig = Field(default_factory=ResilienceConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load_config(path: str | Path | None) -> GatewayConfig:
    """The configuration in ``path`` (YAML or JSON); defaults when ``path`` is None."""
    if path is None:
        return GatewayConfig()
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the gateway config: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping of settings at the top level, got {raw!r}")
    try:
        return GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"key {_where(e['loc'])!r}: {_expected(e)}" for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"{p}: invalid gateway config: {problems}") from None


def _expected(error: Any) -> str:
    kind, msg = error.get("type", ""), error.get("msg", "")
    if kind == "extra_forbidden":
        return "unknown key (allowed keys: see `agentopt serve --help` and the README)"
    if kind == "missing":
        return "required key is missing"
    return f"expected {msg[0].lower() + msg[1:]}" if msg else "invalid value"
