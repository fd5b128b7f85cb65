"""Telemetry: the engine's events as OpenTelemetry traces and metrics, Prometheus metrics and structured logs."""

__all__: list[str] = []
