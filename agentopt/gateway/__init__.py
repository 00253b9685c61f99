"""gateway: the serving side of agentopt.

The loopback gateway a tracker's child processes reach (:mod:`.local`) and the
``agentopt serve`` daemon (:class:`Daemon`, served by :class:`DaemonServer`)
are two front-ends of the same pipeline. Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentopt._lazy import lazy_exports

_LAZY = {
    "Daemon": "agentopt.gateway.daemon",
    "DaemonApp": "agentopt.gateway.service",
    "DaemonServer": "agentopt.gateway.service",
    "GatewayConfig": "agentopt.gateway.config",
    "load_config": "agentopt.gateway.config",
}
__all__ = ["Daemon", "DaemonApp", "DaemonServer", "GatewayConfig", "load_config"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from agentopt.gateway.config import GatewayConfig, load_config
    from agentopt.gateway.daemon import Daemon
    from agentopt.gateway.service import DaemonApp, DaemonServer
