"""Upstream origins the gateway may forward to, by short key.

A gateway URL names its upstream by key (``/s/<session>/<key>/<path>``), never
by raw URL, so the loopback gateway is no open proxy: it reaches only the
official providers and the base URLs a tracker registered for its children.

>>> ups = Upstreams()
>>> ups.origin("openai")
'https://api.openai.com'
>>> key, path = ups.register("http://127.0.0.1:8000/v1")
>>> ups.origin(key), path
('http://127.0.0.1:8000', '/v1')
"""

from __future__ import annotations

import hashlib
import threading

import httpx

from agentopt.exceptions import ConfigError

__all__ = ["OFFICIAL_ORIGINS", "Upstreams"]

#: Official origins, by the key the gateway knows them under.
OFFICIAL_ORIGINS: dict[str, str] = {
    "openai": "https://api.openai.com",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}


class Upstreams:
    """Key → origin (``scheme://host[:port]``); official providers built in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._origins: dict[str, str] = dict(OFFICIAL_ORIGINS)
        self._keys: dict[str, str] = {v: k for k, v in OFFICIAL_ORIGINS.items()}

    def register(self, base_url: str) -> tuple[str, str]:
        """Register ``base_url``'s origin; return its key and the base URL's path
        (without trailing slash), so that ``<gateway>/s/<sid>/<key><path>`` stands
        for ``base_url``."""
        try:
            url = httpx.URL(base_url.strip())
        except Exception as exc:
            raise ConfigError(f"invalid upstream base URL {base_url!r}: {exc}") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"upstream base URL must be absolute http(s), got {base_url!r}")
        origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        path = url.raw_path.decode("ascii").split("?", 1)[0].rstrip("/")
        with self._lock:
            key = self._keys.get(origin)
            if key is None:
                key = "u" + hashlib.sha256(origin.encode()).hexdigest()[:10]
                self._origins[key] = origin
                self._keys[origin] = key
        return key, path

    def origin(self, key: str) -> str | None:
        """The origin registered under ``key``, or None."""
        return self._origins.get(key)
