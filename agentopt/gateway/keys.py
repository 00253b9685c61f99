"""Provider keys live with the engine: where they come from and which one a call uses.

Engine keys come from the environment (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``,
``<NAME>_API_KEY`` or a provider's ``api_key_env``) or from a secrets file
(YAML/JSON ``{VARIABLE: value}``), refused unless only its owner can read it
(mode 0600). The key policy decides whether a caller's own ``Authorization``
/ ``x-api-key`` reaches the provider:

- ``engine`` (default): never; the engine's key is sent.
- ``caller``: the caller's key is sent, the engine's never.
- ``caller-first``: the caller's key when it sent one, else the engine's.

The daemon's own API key is never forwarded, whatever the policy. Keys never
appear in records (headers are not stored), logs or error messages.
"""

from __future__ import annotations

import hmac
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from agentopt.exceptions import ConfigError
from agentopt.gateway.config import GatewayConfig, KeyPolicy
from agentopt.tracking.providers import ProviderSpec

__all__ = ["CREDENTIAL_HEADERS", "KeyRing", "check_api_key", "presented_key", "scrub_secrets"]

# Headers that carry credentials to a provider; none goes upstream unless the policy says so.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization"}
)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request presents: ``Authorization: Bearer <key>`` or ``x-api-key``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key else None


def check_api_key(expected: str | None, headers: Mapping[str, str]) -> bool:
    """Whether the request may pass: no key configured, or the key it presents
    (in either header) equals ``expected``, compared in constant time."""
    if not expected:
        return True
    want = expected.encode()
    ok = False
    for name in ("authorization", "x-api-key"):
        value = headers.get(name)
        if not value:
            continue
        if name == "authorization":
            scheme, _, value = value.partition(" ")
            if scheme.lower() != "bearer":
                continue
        ok |= hmac.compare_digest(value.strip().encode(), want)
    return ok


def _read_secrets(path: Path) -> dict[str, str]:
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"secrets file {str(path)!r}: cannot read it: {exc.strerror}") from None
    if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(
            f"secrets file {str(path)!r} is readable by others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}` and start again"
        )
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        # The parser's message may quote the file's content: the keys themselves.
        raise ConfigError(
            f"secrets file {str(path)!r}: not a valid YAML/JSON mapping of VARIABLE: key"
        ) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ConfigError(
            f"secrets file {str(path)!r}: expected a mapping of VARIABLE: key (strings)"
        )
    return dict(raw)


class KeyRing:
    """The engine's provider keys and the key policy."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        environ: Mapping[str, str] | None = None,
        daemon_key: str | None = None,
    ) -> None:
        self.policy: KeyPolicy = config.keys
        self._env = dict(os.environ if environ is None else environ)
        if config.secrets_file:
            self._env.update(_read_secrets(Path(config.secrets_file)))
        self._vars = {name: p.api_key_env for name, p in config.providers.items() if p.api_key_env}
        self._daemon_key = daemon_key

    def engine_key(self, spec: ProviderSpec) -> str | None:
        """The engine's key for ``spec``'s provider, or None."""
        var = self._vars.get(spec.name) or f"{spec.name.upper().replace('-', '_')}_API_KEY"
        return self._env.get(var) or None

    def secrets(self) -> list[str]:
        """Every key value the engine holds (to scrub from messages)."""
        out = [v for k, v in self._env.items() if k.endswith(("_API_KEY", "_KEY")) and v]
        if self._daemon_key:
            out.append(self._daemon_key)
        return out

    def outgoing(
        self, incoming: Mapping[str, str], spec: ProviderSpec
    ) -> tuple[list[tuple[str, str]], str | None]:
        """The request headers to send to ``spec`` (credentials replaced per the
        policy) and the key chosen. ``incoming`` has lower-cased names."""
        caller = presented_key(incoming)
        if (
            caller is not None
            and self._daemon_key
            and hmac.compare_digest(caller.encode(), self._daemon_key.encode())
        ):
            caller = None  # the daemon's own key is never a provider key
        if self.policy == "engine":
            key = self.engine_key(spec)
        elif self.policy == "caller":
            key = caller
        else:
            key = caller or self.engine_key(spec)
        headers = [(k, v) for k, v in incoming.items() if k not in CREDENTIAL_HEADERS]
        if key:
            if spec.wire == "anthropic":
                headers.append(("x-api-key", key))
            else:
                headers.append(("authorization", f"Bearer {key}"))
        return headers, key


def scrub_secrets(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced (for error messages and logs)."""
    for s in secrets:
        if len(s) >= 4 and s in text:
            text = text.replace(s, "<redacted>")
    return text
