"""Prometheus metrics from the engine's events, through prometheus_client (the ``prometheus`` extra).

:class:`PrometheusHook` records the metrics of :mod:`integration_kit.telemetry.conventions` with the names and
labels the OpenTelemetry Prometheus exporter would give them (``http_client_request_duration_seconds``,
``integration_kit_call_duration_seconds``, ... labels ``integration_kit_integration``, ``http_request_method`` ...),
so the alert rules and the dashboard work with either hook. Labels that an event does not have are empty strings
(Prometheus treats an empty label as absent). :meth:`PrometheusHook.asgi_app` serves ``/metrics``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_asgi_app
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import REGISTRY, Collector
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "integration_kit.telemetry.prometheus needs the prometheus extra: pip install 'integration_kit[prometheus]'"
    ) from exc

from integration_kit.events import CircuitState
from integration_kit.telemetry import conventions as c
from integration_kit.telemetry.ws_metrics import WS_LABELS, WS_METRICS, WsEventMetrics

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from integration_kit.engine.call import CallEngine

__all__ = ["PrometheusHook"]

_L = c.prometheus_label
_ATTEMPT_ATTRIBUTES = (
    c.INTEGRATION,
    c.METHOD,
    c.SERVER_ADDRESS,
    c.SERVER_PORT,
    c.STATUS_CODE,
    c.ERROR_TYPE,
    c.URL_TEMPLATE,
)
_CALL_ATTRIBUTES = (c.INTEGRATION, c.METHOD, c.CALL_OUTCOME, c.URL_TEMPLATE)
#: Label names of the per-attempt histogram and of the per-call histograms, in order.
ATTEMPT_LABELS = tuple(_L(a) for a in _ATTEMPT_ATTRIBUTES)
CALL_LABELS = tuple(_L(a) for a in _CALL_ATTRIBUTES)


#: Guards the first registration of a hook's WebSocket metrics.
_WS_LOCK = threading.Lock()


class _Instrumentable(Protocol):
    @property
    def engine(self) -> CallEngine: ...


class PrometheusHook(WsEventMetrics):
    """Records the kit's metrics in ``registry`` (default: prometheus_client's global ``REGISTRY``).

    ``route`` maps a redacted target to its ``url.template`` label. :meth:`instrument` adds the hook to a client
    and reports its breaker state and budget tokens as gauges, read at each scrape. A WebSocket stream's events
    feed the metrics of :mod:`integration_kit.telemetry.ws_metrics` (registered at its first event).
    """

    def __init__(self, *, registry: CollectorRegistry | None = None, route: c.Route | None = None) -> None:
        super().__init__(route)
        self.registry = registry if registry is not None else REGISTRY
        self._attempt_duration = Histogram(
            _base(c.HTTP_DURATION),
            c.HTTP_DURATION.description,
            ATTEMPT_LABELS,
            unit="seconds",
            registry=self.registry,
            buckets=c.DURATION_BUCKETS,
        )
        self._call_duration = Histogram(
            _base(c.CALL_DURATION),
            c.CALL_DURATION.description,
            CALL_LABELS,
            unit="seconds",
            registry=self.registry,
            buckets=c.CALL_DURATION_BUCKETS,
        )
        self._attempts = Histogram(
            _base(c.ATTEMPTS), c.ATTEMPTS.description, CALL_LABELS, registry=self.registry, buckets=c.ATTEMPT_BUCKETS
        )
        self._counters = {
            spec.name: Counter(_base(spec), spec.description, [_L(a) for a in labels], registry=self.registry)
            for spec, labels in c.COUNTERS.items()
        }
        self._engines = _Engines()
        self.registry.register(self._engines)

    def instrument(self, client: _Instrumentable | CallEngine) -> None:
        """Add this hook to ``client`` (a resilient client or a call engine) and :meth:`watch` its engine."""
        engine: CallEngine = getattr(client, "engine", client)  # type: ignore[arg-type]
        engine.add_hook(self)
        self.watch(engine)

    def watch(self, engine: CallEngine) -> None:
        """Report ``engine``'s breaker state and budget tokens at each scrape (held weakly)."""
        self._engines.refs.append(weakref.ref(engine))

    def asgi_app(self) -> Any:
        """An ASGI app serving this hook's registry in the Prometheus text format (mount it at ``/metrics``)."""
        return make_asgi_app(registry=self.registry)

    def attempt_labels(self, attributes: dict[str, str | int]) -> Any:
        """The histogram child for these attributes."""
        return self._attempt_duration.labels(*_values(attributes, _ATTEMPT_ATTRIBUTES))

    def call_labels(self, attributes: dict[str, str]) -> Any:
        """The call duration and attempts children for these attributes."""
        values = _values(attributes, _CALL_ATTRIBUTES)
        return self._call_duration.labels(*values), self._attempts.labels(*values)

    def record_attempt(self, labels: Any, duration: float) -> None:
        """Observe an attempt's duration."""
        labels.observe(duration)

    def record_call(self, labels: Any, duration: float, attempts: int) -> None:
        """Observe a call's duration and attempts."""
        labels[0].observe(duration)
        labels[1].observe(attempts)

    def count(self, metric: c.MetricSpec, attributes: dict[str, str]) -> None:
        """Add one to ``metric``."""
        self._counters[metric.name].labels(*attributes.values()).inc()

    def ws_record(self, spec: c.MetricSpec, value: float, labels: tuple[str, ...]) -> None:
        """Add ``value`` to a WebSocket counter or gauge, or observe it on the downtime histogram."""
        ws = self.__dict__.get("_ws")
        if ws is None:
            with _WS_LOCK:  # registered once, even when two threads' streams report their first event at once
                ws = self.__dict__.get("_ws")
                if ws is None:
                    ws = self._ws = _WsMetrics(self.registry)
        ws.record(spec, value, labels)


class _WsMetrics:
    """The WebSocket metrics in one registry (:mod:`integration_kit.telemetry.ws_metrics`), children cached."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.metrics: dict[str, Counter | Gauge | Histogram] = {}
        for spec in WS_METRICS:
            labels = [_L(a) for a in (c.INTEGRATION, *WS_LABELS[spec.name])]
            metric: Counter | Gauge | Histogram
            if spec.instrument == "counter":
                metric = Counter(_base(spec), spec.description, labels, registry=registry)
            elif spec.instrument == "gauge":
                metric = Gauge(_base(spec), spec.description, labels, registry=registry)
            else:
                metric = Histogram(
                    _base(spec),
                    spec.description,
                    labels,
                    unit="seconds",
                    registry=registry,
                    buckets=c.CALL_DURATION_BUCKETS,
                )
            self.metrics[spec.name] = metric
        self.children: dict[tuple[str, tuple[str, ...]], Any] = {}

    def record(self, spec: c.MetricSpec, value: float, labels: tuple[str, ...]) -> None:
        key = (spec.name, labels)
        child: Any = self.children.get(key)
        if child is None:
            child = self.children[key] = self.metrics[spec.name].labels(*labels)
        if spec.instrument == "histogram":
            child.observe(value)
        else:
            child.inc(value)


class _Engines(Collector):
    """The gauges read from the watched engines at each scrape: breaker state and budget tokens."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[CallEngine]] = []

    def _alive(self) -> Iterator[CallEngine]:
        for ref in self.refs:
            engine = ref()
            if engine is not None:
                yield engine

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            c.BREAKER.prometheus, c.BREAKER.description, labels=[_L(c.INTEGRATION), _L(c.BREAKER_STATE)]
        )
        tokens = GaugeMetricFamily(c.BUDGET.prometheus, c.BUDGET.description, labels=[_L(c.INTEGRATION)])
        for engine in self._alive():
            if engine.breaker is not None:
                current = engine.breaker.state
                for s in CircuitState:
                    state.add_metric([engine.name, s.value], 1.0 if s is current else 0.0)
            if engine.budget is not None:
                tokens.add_metric([engine.name], engine.budget.tokens)
        yield state
        yield tokens

    def describe(self) -> Iterable[Metric]:
        return []


def _base(spec: c.MetricSpec) -> str:
    """The name prometheus_client is given: it adds ``_seconds`` (from ``unit``) and ``_total`` itself."""
    return spec.name.replace(".", "_")


def _values(attributes: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    return [str(attributes.get(n, "")) for n in names]
