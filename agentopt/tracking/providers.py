"""Which HTTP requests are LLM calls, and which wire format they speak.

A :class:`ProviderRegistry` answers ``match(method, url)`` on the capture hot
path. Registered providers match on their origin (host and port) and path
patterns; any other origin matches too when its path is a well-known LLM endpoint
(``…/chat/completions``, ``…/responses``, ``…/v1/messages``,
``…:generateContent``, ``…:streamGenerateContent``), because
OpenAI-compatible servers (vLLM, a local simulator) live anywhere.

>>> reg = default_registry()
>>> reg.match("POST", "https://api.openai.com/v1/chat/completions").name
'openai'
>>> reg.match("POST", "https://api.anthropic.com/v1/messages/count_tokens") is None
True
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from agentopt.exceptions import ConfigError

__all__ = [
    "OFFICIAL_BASE_URLS",
    "ProviderRegistry",
    "ProviderSpec",
    "Wire",
    "default_registry",
    "ignore_origin",
    "infer_wire",
    "is_ignored_origin",
    "unignore_origin",
]

Wire = Literal["openai", "anthropic", "gemini"]
_WIRES: tuple[Wire, ...] = ("openai", "anthropic", "gemini")

#: Official base URL of each wire's first-party provider.
OFFICIAL_BASE_URLS: dict[Wire, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}

# Well-known endpoint paths, anchored at the end so that sub-resources
# (``/v1/messages/count_tokens``, ``/responses/{id}``) never match.
_OPENAI_PATHS = (r"/chat/completions/?$", r"/responses/?$")
_ANTHROPIC_PATHS = (r"/v1/messages/?$",)
_GEMINI_PATHS = (r":generateContent$", r":streamGenerateContent$")

_WIRE_PATHS: tuple[tuple[Wire, tuple[str, ...]], ...] = (
    ("openai", _OPENAI_PATHS),
    ("anthropic", _ANTHROPIC_PATHS),
    ("gemini", _GEMINI_PATHS),
)
_WELL_KNOWN: tuple[tuple[re.Pattern[str], Wire], ...] = tuple(
    (re.compile(p), wire) for wire, pats in _WIRE_PATHS for p in pats
)

# OpenAI-compatible hosted providers: named so that records say who answered.
_OPENAI_COMPATIBLE: tuple[tuple[str, str], ...] = (
    ("openrouter", "https://openrouter.ai/api/v1"),
    ("groq", "https://api.groq.com/openai/v1"),
    ("mistral", "https://api.mistral.ai/v1"),
    ("deepseek", "https://api.deepseek.com/v1"),
    ("together", "https://api.together.xyz/v1"),
    ("fireworks", "https://api.fireworks.ai/inference/v1"),
    ("xai", "https://api.x.ai/v1"),
)

_CACHE_LIMIT = 4096

# Origins (host, port) no registry ever matches: the tracker's own loopback
# gateway, which records the calls it receives itself (no double counting).
_IGNORED: set[tuple[str, int | None]] = set()
_GENERATION = [0]  # bumped when _IGNORED changes, so registries drop their memos


def _origin(url: httpx.URL | str) -> tuple[str, int | None]:
    u = url if isinstance(url, httpx.URL) else httpx.URL(url)
    return (u.host, u.port)


def ignore_origin(url: httpx.URL | str) -> None:
    """Never match requests to ``url``'s host and port (in every registry)."""
    _IGNORED.add(_origin(url))
    _GENERATION[0] += 1


def unignore_origin(url: httpx.URL | str) -> None:
    """Undo :func:`ignore_origin`."""
    _IGNORED.discard(_origin(url))
    _GENERATION[0] += 1


def is_ignored_origin(url: httpx.URL | str) -> bool:
    """Whether ``url``'s host and port were passed to :func:`ignore_origin`."""
    return _origin(url) in _IGNORED


def infer_wire(path: str) -> Wire | None:
    """The wire format a well-known endpoint path speaks, or None."""
    for pattern, wire in _WELL_KNOWN:
        if pattern.search(path):
            return wire
    return None


@dataclass(frozen=True)
class ProviderSpec:
    """One provider: its name, wire format, base URL, and what it matches."""

    name: str
    wire: Wire
    base_url: str
    hosts: tuple[str, ...]
    path_patterns: tuple[str, ...]

    def matches_path(self, path: str) -> bool:
        return any(re.search(p, path) for p in self.path_patterns)


class ProviderRegistry:
    """Providers by origin (host and port), with a memo of recent answers (the
    capture hot path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, ProviderSpec] = {}
        # (host, port) -> [(spec, compiled patterns)], newest registration first.
        # The port is part of the key: two local servers on one host are two providers.
        self._by_origin: dict[
            tuple[str, int | None], list[tuple[ProviderSpec, tuple[re.Pattern[str], ...]]]
        ] = {}
        self._memo: dict[tuple[str, str, int | None, str], ProviderSpec | None] = {}
        self._memo_text: dict[str, ProviderSpec | None] = {}
        self._generation = _GENERATION[0]

    def register(
        self,
        name: str,
        base_url: str,
        path_patterns: Sequence[str],
        *,
        wire: Wire = "openai",
    ) -> ProviderSpec:
        """Register (or replace) a provider by name. Its host matches when a
        path pattern (a regex searched in the URL path) matches."""
        if not name:
            raise ConfigError("register_provider: name must be a non-empty string")
        if wire not in _WIRES:
            raise ConfigError(
                f"register_provider({name!r}): wire must be one of {_WIRES}, got {wire!r}"
            )
        if isinstance(path_patterns, str):
            path_patterns = (path_patterns,)
        try:
            url = httpx.URL(base_url)
        except Exception as exc:  # httpx.InvalidURL and friends
            raise ConfigError(
                f"register_provider({name!r}): invalid base_url {base_url!r}: {exc}"
            ) from exc
        if not url.host or url.scheme not in ("http", "https"):
            raise ConfigError(
                f"register_provider({name!r}): base_url must be an absolute http(s) URL, got {base_url!r}"
            )
        compiled: list[re.Pattern[str]] = []
        for p in path_patterns:
            try:
                compiled.append(re.compile(p))
            except re.error as exc:
                raise ConfigError(
                    f"register_provider({name!r}): invalid path pattern {p!r}: {exc}"
                ) from exc
        spec = ProviderSpec(
            name=name,
            wire=wire,
            base_url=str(base_url).rstrip("/"),
            hosts=(url.host,),
            path_patterns=tuple(path_patterns),
        )
        with self._lock:
            old = self._by_name.get(name)
            if old is not None:
                where = _origin(old.base_url)
                entries = self._by_origin.get(where, [])
                self._by_origin[where] = [e for e in entries if e[0].name != name]
            self._by_name[name] = spec
            self._by_origin.setdefault(_origin(url), []).insert(0, (spec, tuple(compiled)))
            self._memo = {}
            self._memo_text = {}
        return spec

    def by_name(self, name: str) -> ProviderSpec | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return list(self._by_name)

    def match(self, method: str, url: httpx.URL | str) -> ProviderSpec | None:
        """The provider a request goes to, or None when it is not an LLM call."""
        if method != "POST" and method.upper() != "POST":
            return None
        if self._generation != _GENERATION[0]:
            self._memo, self._memo_text = {}, {}
            self._generation = _GENERATION[0]
        if not isinstance(url, httpx.URL):
            by_text = self._memo_text
            try:
                return by_text[url]
            except KeyError:
                pass
            try:
                spec = self.match(method, httpx.URL(url))
            except Exception:
                spec = None
            if len(by_text) >= _CACHE_LIMIT:
                by_text.clear()
            by_text[url] = spec
            return spec
        key = (url.scheme, url.host, url.port, url.path)
        memo = self._memo
        try:
            return memo[key]
        except KeyError:
            pass
        spec = self._lookup(url)
        if len(memo) >= _CACHE_LIMIT:
            memo.clear()
        memo[key] = spec
        return spec

    def _lookup(self, url: httpx.URL) -> ProviderSpec | None:
        if _IGNORED and (url.host, url.port) in _IGNORED:
            return None
        path = url.path
        origin = (url.host, url.port)
        for spec, patterns in self._by_origin.get(origin, ()):
            if any(p.search(path) for p in patterns):
                return spec
        wire = infer_wire(path)
        if wire is None:
            return None
        # An unregistered host on a well-known path: name it after its wire and
        # keep the URL prefix before the endpoint as its base URL.
        registered = self._by_origin.get(origin)
        name = registered[0][0].name if registered else wire
        return ProviderSpec(
            name=name,
            wire=wire,
            base_url=_base_of(url, wire),
            hosts=(url.host,),
            path_patterns=tuple(p.pattern for p, w in _WELL_KNOWN if w == wire),
        )


def _base_of(url: httpx.URL, wire: Wire) -> str:
    """The base URL an SDK would be configured with for this endpoint URL."""
    path = url.path
    if wire == "openai":
        cut = re.search(r"/(chat/completions|responses)/?$", path)
    elif wire == "anthropic":
        cut = re.search(r"/v1/messages/?$", path)
    else:
        cut = re.search(r"/(v1beta|v1alpha|v1)/", path) or re.search(r"/models/", path)
    prefix = path[: cut.start()] if cut else ""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{prefix}"


def default_registry() -> ProviderRegistry:
    """A registry with OpenAI, Anthropic, Gemini and common OpenAI-compatible hosts."""
    reg = ProviderRegistry()
    for name, base in _OPENAI_COMPATIBLE:
        reg.register(name, base, _OPENAI_PATHS, wire="openai")
    reg.register("gemini", OFFICIAL_BASE_URLS["gemini"], _GEMINI_PATHS, wire="gemini")
    reg.register("anthropic", OFFICIAL_BASE_URLS["anthropic"], _ANTHROPIC_PATHS, wire="anthropic")
    reg.register("openai", OFFICIAL_BASE_URLS["openai"], _OPENAI_PATHS, wire="openai")
    return reg
