"""Process front-ends by name: how a tracker's child processes reach a pipeline.

``tracking/`` never imports ``gateway/``: the tracker asks this registry (the
package's composition root) for the front-end that gives a session's child
processes their environment. ``"loopback"`` (the tracker's own gateway, in
:mod:`agentopt.gateway.local`) is registered here lazily; a backend may bring
its own (the remote backend points children at the daemon).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agentopt.tracking.session import SessionInfo
    from agentopt.tracking.tracker import LLMTracker

__all__ = ["ProcessFrontEnd", "process_front_end", "register_process_front_end"]


class ProcessFrontEnd(Protocol):
    """What the tracker needs to send a session's child processes somewhere."""

    def session_env(
        self, tracker: LLMTracker, session: SessionInfo, base_env: Mapping[str, str] | None
    ) -> dict[str, str]:
        """The variables a child needs (its base URLs) for ``session``."""
        ...

    def proxy(self, tracker: LLMTracker, session: SessionInfo) -> Any:
        """The session's endpoint (``url``, ``env_dict()``), or None."""
        ...

    def base_url_for(self, tracker: LLMTracker, session: SessionInfo, upstream: str) -> str:
        """The base URL that stands for ``upstream`` (an absolute base URL) in
        ``session``: what a client that cannot be captured in process is pointed at."""
        ...

    def stop(self, tracker: LLMTracker) -> None:
        """Release what the front-end started for ``tracker``."""
        ...


def _loopback() -> ProcessFrontEnd:
    from agentopt.gateway.local import LOOPBACK

    return LOOPBACK


_FACTORIES: dict[str, Callable[[], ProcessFrontEnd]] = {"loopback": _loopback}
_BUILT: dict[str, ProcessFrontEnd] = {}


def register_process_front_end(name: str, factory: Callable[[], ProcessFrontEnd]) -> None:
    """Register (or replace) a front-end by name; ``factory`` runs on first use."""
    _FACTORIES[name] = factory
    _BUILT.pop(name, None)


def process_front_end(name: str = "loopback") -> ProcessFrontEnd:
    """The front-end registered under ``name``."""
    fe = _BUILT.get(name)
    if fe is None:
        fe = _BUILT[name] = _FACTORIES[name]()
    return fe
