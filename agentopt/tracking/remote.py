"""The remote backend: an LLMTracker whose calls go to an ``agentopt serve`` daemon.

Setting ``AGENTOPT_GATEWAY_URL`` makes every new :class:`LLMTracker` use this
backend instead of the in-process one, with no other change to the caller's
code. The daemon (the gateway with its control plane: sessions, records,
feedback over HTTP) is its own issue; until it lands this backend says so
clearly instead of silently tracking nothing.
"""

from __future__ import annotations

from agentopt.exceptions import NotBuiltError

__all__ = ["GATEWAY_URL_ENV", "RemoteBackend"]

#: The environment variable that switches trackers to the remote backend.
GATEWAY_URL_ENV = "AGENTOPT_GATEWAY_URL"


class RemoteBackend:
    """Placeholder for the daemon-backed backend (implements ``Backend`` later)."""

    def __init__(self, url: str) -> None:
        self.url = url
        raise NotBuiltError(
            f"{GATEWAY_URL_ENV}={url!r} asks for the remote tracker backend (the "
            "`agentopt serve` daemon and its control plane), which is not built yet: "
            "it comes with the gateway daemon issue. Unset "
            f"{GATEWAY_URL_ENV} to track in this process."
        )
