"""What the daemon serves beyond the provider endpoints, each set up from its config.

- the dashboard at ``/dashboard`` (:mod:`agentopt.gateway.dashboard`), behind the
  daemon's API key (header, or the cookie its sign-in form sets);
- usage analytics (``/v1/usage/...``), routing metrics (``/v1/routing/metrics``)
  and Prometheus metrics (``/metrics``): :mod:`agentopt.gateway.usage_api`;
- OpenTelemetry export of one span per call (``telemetry.otlp_endpoint``);
- wire capture of every exchange (``capture.enabled``), as the outermost layer;
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentopt.tracking.storage.sql_store import SQLRecordStore

if TYPE_CHECKING:
    from agentopt.gateway.daemon import Daemon
    from agentopt.gateway.service import DaemonApp

__all__ = ["install"]


def install(app: DaemonApp) -> Any:
    """Mount every enabled feature on ``app``; returns the outermost ASGI app
    (the capture layer when capture is on, else ``app`` itself)."""
    daemon: Daemon = app.daemon
    cfg = daemon.config
    metrics = None
    if cfg.telemetry.metrics:
        from agentopt.telemetry.prometheus import PrometheusMetrics

        metrics = PrometheusMetrics(health=daemon.health_registry)
        daemon.recorder.add_listener(metrics.observe)
    daemon.metrics = metrics
    if cfg.telemetry.otlp_endpoint:
        from agentopt.telemetry.otel import OTelExporter

        exporter = OTelExporter(endpoint=cfg.telemetry.otlp_endpoint, service_name="agentopt-serve")
        daemon.recorder.add_listener(exporter.export)
        daemon.on_close.append(exporter.shutdown)

    from agentopt.gateway.usage_api import usage_app

    usage = usage_app(daemon.store, aliases=lambda: daemon.aliases, metrics=metrics)
    for prefix in ("/v1/usage", "/v1/routing", "/metrics"):
        app.mount(prefix, usage)

    # the dashboard reads the SQL store (SQLite or PostgreSQL; not an in-memory one)
    if cfg.dashboard.enabled and isinstance(daemon.store, SQLRecordStore):
        from agentopt.gateway.dashboard import create_dashboard_app

        def estimates() -> dict[str, dict[str, Any]]:
            from agentopt.gateway.usage_api import routing_metrics

            return {
                name: {k: v for k, v in m["estimates"].items() if v is not None}
                for name, m in routing_metrics(daemon.aliases).items()
            }

        dash = create_dashboard_app(
            daemon.store,
            selections=[Path(p) for p in cfg.dashboard.selections],
            api_key=daemon.api_key,
            estimates=estimates,
        )
        app.mount("/dashboard", dash, own_auth=True)

    outer: Any = app
    if cfg.capture.enabled:
        from agentopt.gateway.capture import CaptureMiddleware, CaptureWriter

        directory = cfg.capture.dir or str(daemon.state_dir_or_cwd() / "capture")
        writer = CaptureWriter(
            directory, max_bytes=cfg.capture.max_bytes, max_files=cfg.capture.max_files
        )
        redact = cfg.redact if cfg.capture.redact is None else cfg.capture.redact
        outer = CaptureMiddleware(app, writer, redact=redact)
        daemon.capture_writer = writer
        daemon.on_close.append(writer.close)
    return outer
