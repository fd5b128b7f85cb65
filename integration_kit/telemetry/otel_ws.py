"""The WebSocket metrics (:mod:`integration_kit.telemetry.ws_metrics`) as OpenTelemetry instruments, for
:class:`~integration_kit.telemetry.otel.OpenTelemetryHook` (the ``otel`` extra)."""

from __future__ import annotations

from typing import Any

try:
    from opentelemetry import metrics as otel_metrics
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "integration_kit.telemetry.otel_ws needs the otel extra: pip install 'integration_kit[otel]'"
    ) from exc

from integration_kit.telemetry import conventions as c
from integration_kit.telemetry.ws_metrics import WS_METRICS, ws_attributes

__all__ = ["WsInstruments"]


class WsInstruments:
    """The WebSocket metrics' instruments on ``meter``: counters, the connections up-down counter and the downtime
    histogram (buckets of the call duration), each update's attributes built once per label set."""

    def __init__(self, meter: otel_metrics.Meter) -> None:
        self.instruments: dict[str, Any] = {}
        for spec in WS_METRICS:
            if spec.instrument == "counter":
                instrument: Any = meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
            elif spec.instrument == "gauge":  # connections open: +1 and -1, an up-down counter
                instrument = meter.create_up_down_counter(spec.name, unit=spec.unit, description=spec.description)
            else:
                instrument = meter.create_histogram(
                    spec.name,
                    unit=spec.unit,
                    description=spec.description,
                    explicit_bucket_boundaries_advisory=list(c.CALL_DURATION_BUCKETS),
                )
            self.instruments[spec.name] = instrument
        self.attributes: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}

    def record(self, spec: c.MetricSpec, value: float, labels: tuple[str, ...]) -> None:
        """Add ``value`` to ``spec``'s counter or up-down counter, or record it on the histogram, under ``labels``
        (the integration, then the metric's labels of :data:`~integration_kit.telemetry.ws_metrics.WS_LABELS`)."""
        key = (spec.name, labels)
        attributes = self.attributes.get(key)
        if attributes is None:
            attributes = self.attributes[key] = ws_attributes(spec, labels)
        instrument = self.instruments[spec.name]
        if spec.instrument == "histogram":
            instrument.record(value, attributes)
        else:
            instrument.add(value, attributes)
