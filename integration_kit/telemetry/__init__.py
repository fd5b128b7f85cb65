"""Telemetry: the engine's events as OpenTelemetry traces and metrics, Prometheus metrics, alert rules, dashboards.

The modules are imported one by one, so that each optional library is needed only by the module that uses it:

- :mod:`integration_kit.telemetry.otel`: :class:`~integration_kit.telemetry.otel.OpenTelemetryHook` (the ``otel``
  extra);
- :mod:`integration_kit.telemetry.prometheus`: :class:`~integration_kit.telemetry.prometheus.PrometheusHook` (the
  ``prometheus`` extra);
- :mod:`integration_kit.telemetry.alerts`: Prometheus alerting rules from the objectives (no extra);
- :mod:`integration_kit.telemetry.dashboard`: a Grafana dashboard (no extra);
- :mod:`integration_kit.telemetry.conventions`: the metric and attribute names (no extra).

Structured logs are :class:`integration_kit.events.LoggingHook` with ``structured=True``. See docs/telemetry.md.
"""

__all__: list[str] = []
