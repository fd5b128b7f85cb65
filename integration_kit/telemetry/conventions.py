"""The names telemetry uses: metrics, attributes (OpenTelemetry semantic conventions plus the kit's namespace),
their Prometheus spellings, and :class:`EventMetrics`, which turns events into metric updates for any backend.

Metrics (OpenTelemetry name, unit, instrument; the Prometheus name is :func:`prometheus_name`):

==========================================  =========  ===========================================================
``http.client.request.duration``            s          histogram, per attempt (the HTTP client convention)
``integration_kit.call.duration``           s          histogram, per logical call
``integration_kit.call.attempts``           {attempt}  histogram, attempts per logical call
``integration_kit.retries.scheduled``       {retry}    counter, by ``integration_kit.retry.reason``
``integration_kit.retries.refused``         {retry}    counter, by ``integration_kit.retry.refusal``
``integration_kit.calls.rejected``          {call}     counter, by ``integration_kit.rejection.reason``
``integration_kit.deadline.exceeded``       {call}     counter, calls that ended with ``DeadlineExceeded``
``integration_kit.breaker.transitions``     {transition}  counter, by the state entered
``integration_kit.breaker.state``           1          observable gauge: 1 for the current state, 0 for the others
``integration_kit.budget.tokens``           {token}    observable gauge: the retry budget's tokens
``integration_kit.queue.received``          {message}  counter, deliveries a queue consumer took
``integration_kit.queue.settled``           {message}  counter, by ``integration_kit.queue.outcome``
``integration_kit.queue.pauses``            {pause}    counter, consumer pauses on an open downstream breaker
==========================================  =========  ===========================================================

Every metric has ``integration_kit.integration``. Label sets are bounded: the method (unknown ones become
``_OTHER``, as the conventions say), the server's address and port (the client pins one origin per integration),
the status code, the error type (a status code or an outcome kind), the call's outcome (``success`` or an error
class name), a queue delivery's outcome (``acked``, ``duplicate``, ``retried``, ``dead_lettered``, ``requeued``),
and ``url.template`` only when a ``route`` function maps targets to templates. Never a raw URL.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from integration_kit.events import AttemptFinished, CallFinished, Event

__all__ = [
    "ATTEMPT_BUCKETS",
    "CALL_DURATION_BUCKETS",
    "COUNTERS",
    "DURATION_BUCKETS",
    "METRICS",
    "EventMetrics",
    "MetricSpec",
    "Route",
    "attempt_error_type",
    "integration_selector",
    "known_method",
    "prometheus_label",
    "prometheus_name",
    "server_of",
]

#: A function from a (redacted) target URL to its path template (``/orders/{id}``), or ``None``.
Route = Callable[[str], str | None]

#: ``http.client.request.duration`` buckets from the HTTP semantic conventions (seconds).
DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
#: Logical calls include backoff waits, so their histogram reaches further (seconds).
CALL_DURATION_BUCKETS: tuple[float, ...] = (*DURATION_BUCKETS, 15.0, 30.0, 60.0, 120.0)
#: Attempts per logical call.
ATTEMPT_BUCKETS: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)

# Attributes: the conventions' own names, and the kit's under ``integration_kit.``.
INTEGRATION = "integration_kit.integration"
METHOD = "http.request.method"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
STATUS_CODE = "http.response.status_code"
ERROR_TYPE = "error.type"
URL_FULL = "url.full"
URL_TEMPLATE = "url.template"
RESEND_COUNT = "http.request.resend_count"
CALL_OUTCOME = "integration_kit.call.outcome"
CALL_ATTEMPTS = "integration_kit.call.attempts"
ATTEMPT = "integration_kit.attempt"
ATTEMPT_TIMEOUT = "integration_kit.attempt.timeout"
ATTEMPT_OUTCOME = "integration_kit.attempt.outcome"
ATTEMPT_VERDICT = "integration_kit.attempt.verdict"
RETRY_DECISION = "integration_kit.retry.decision"
RETRY_DELAY = "integration_kit.retry.delay"
RETRY_REASON = "integration_kit.retry.reason"
REFUSAL = "integration_kit.retry.refusal"
REJECTION = "integration_kit.rejection.reason"
BREAKER_STATE = "integration_kit.breaker.state"
BUDGET_TOKENS = "integration_kit.budget.tokens"
QUEUE_OUTCOME = "integration_kit.queue.outcome"

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"})


class MetricSpec:
    """One metric: its OpenTelemetry name, unit, instrument kind and description."""

    __slots__ = ("description", "instrument", "name", "unit")

    def __init__(self, name: str, unit: str, instrument: str, description: str) -> None:
        self.name = name
        self.unit = unit
        self.instrument = instrument  # "histogram", "counter" or "gauge"
        self.description = description

    @property
    def prometheus(self) -> str:
        """The metric's Prometheus name (what the OpenTelemetry Prometheus exporter would call it)."""
        return prometheus_name(self.name, self.unit, self.instrument)


HTTP_DURATION = MetricSpec("http.client.request.duration", "s", "histogram", "Duration of HTTP client requests.")
CALL_DURATION = MetricSpec("integration_kit.call.duration", "s", "histogram", "Duration of logical calls.")
ATTEMPTS = MetricSpec("integration_kit.call.attempts", "{attempt}", "histogram", "Attempts per logical call.")
RETRIES_SCHEDULED = MetricSpec("integration_kit.retries.scheduled", "{retry}", "counter", "Retries scheduled.")
RETRIES_REFUSED = MetricSpec("integration_kit.retries.refused", "{retry}", "counter", "Retries refused, by reason.")
CALLS_REJECTED = MetricSpec("integration_kit.calls.rejected", "{call}", "counter", "Calls refused before the network.")
DEADLINES = MetricSpec("integration_kit.deadline.exceeded", "{call}", "counter", "Calls past their deadline.")
TRANSITIONS = MetricSpec("integration_kit.breaker.transitions", "{transition}", "counter", "Breaker transitions.")
BREAKER = MetricSpec("integration_kit.breaker.state", "1", "gauge", "Circuit breaker state (1: current state).")
BUDGET = MetricSpec("integration_kit.budget.tokens", "{token}", "gauge", "Retry budget tokens left.")
QUEUE_RECEIVED = MetricSpec("integration_kit.queue.received", "{message}", "counter", "Deliveries consumed.")
QUEUE_SETTLED = MetricSpec("integration_kit.queue.settled", "{message}", "counter", "Deliveries settled, by outcome.")
QUEUE_PAUSES = MetricSpec("integration_kit.queue.pauses", "{pause}", "counter", "Consumer pauses (breaker open).")

#: Every metric, in the order of the module docstring.
METRICS: tuple[MetricSpec, ...] = (
    HTTP_DURATION,
    CALL_DURATION,
    ATTEMPTS,
    RETRIES_SCHEDULED,
    RETRIES_REFUSED,
    CALLS_REJECTED,
    DEADLINES,
    TRANSITIONS,
    BREAKER,
    BUDGET,
    QUEUE_RECEIVED,
    QUEUE_SETTLED,
    QUEUE_PAUSES,
)
#: The counters, with the attributes of each (in this order; :meth:`EventMetrics.count` passes them so).
COUNTERS: dict[MetricSpec, tuple[str, ...]] = {
    RETRIES_SCHEDULED: (INTEGRATION, RETRY_REASON),
    RETRIES_REFUSED: (INTEGRATION, REFUSAL),
    CALLS_REJECTED: (INTEGRATION, REJECTION),
    DEADLINES: (INTEGRATION,),
    TRANSITIONS: (INTEGRATION, BREAKER_STATE),
    QUEUE_RECEIVED: (INTEGRATION,),
    QUEUE_SETTLED: (INTEGRATION, QUEUE_OUTCOME),
    QUEUE_PAUSES: (INTEGRATION,),
}
#: The queue consumer's settling events, and the ``integration_kit.queue.outcome`` each counts as.
_SETTLED = {
    "message_acked": "acked",
    "duplicate_suppressed": "duplicate",
    "message_retried": "retried",
    "message_dead_lettered": "dead_lettered",
    "message_requeued": "requeued",
}


def prometheus_name(name: str, unit: str, instrument: str) -> str:
    """The Prometheus spelling of an OpenTelemetry metric: dots become underscores, ``_seconds`` for seconds,
    ``_total`` for counters (annotations such as ``{retry}`` add nothing), as the OpenTelemetry exporter does."""
    base = name.replace(".", "_")
    if unit == "s":
        base += "_seconds"
    if instrument == "counter":
        base += "_total"
    return base


def prometheus_label(attribute: str) -> str:
    """The Prometheus spelling of an attribute: ``integration_kit.integration`` -> ``integration_kit_integration``."""
    return attribute.replace(".", "_")


def integration_selector(integration: str) -> str:
    """The PromQL label matcher of one integration: ``integration_kit_integration="name"`` (escaped)."""
    escaped = integration.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{prometheus_label(INTEGRATION)}="{escaped}"'


def known_method(method: str) -> str:
    """``method``, or ``_OTHER`` when it is not a standard HTTP method (the conventions' bound on the label)."""
    return method if method in KNOWN_METHODS else "_OTHER"


@functools.lru_cache(maxsize=1024)
def server_of(target: str) -> tuple[str, int] | None:
    """``(address, port)`` of a target URL (the scheme's default port when none is given); ``None`` without one."""
    scheme, sep, rest = target.partition("://")
    if not sep:
        return None
    end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if 0 <= at < end:
            end = at
    return _server(scheme.lower(), rest[:end])


@functools.lru_cache(maxsize=256)
def _server(scheme: str, netloc: str) -> tuple[str, int] | None:
    host = netloc.rpartition("@")[2]
    if host.startswith("["):  # [IPv6]:port
        address, _, port = host[1:].partition("]")
        port = port.removeprefix(":")
    else:
        address, _, port = host.partition(":")
    if not address:
        return None
    default = 443 if scheme == "https" else 80
    return address.lower(), int(port) if port.isdigit() else default


def attempt_error_type(event: AttemptFinished) -> str | None:
    """``error.type`` of a finished attempt: the status code for 4xx/5xx, the outcome kind for a failure without
    one (``read_timeout``, ``connection_lost`` ...), ``None`` for a success."""
    status = event.status
    if status is not None and status >= 400:
        return str(status)
    if event.outcome in ("status", "success"):
        return None
    return event.outcome


def refusal_reason(event: CallFinished) -> str | None:
    """Why a failed call's retrying stopped, when a policy refused the next attempt: ``max_attempts`` or ``deadline``
    (a refusal by the retry budget has its own event)."""
    if event.outcome == "RetriesExhausted":
        return "max_attempts"
    if event.outcome == "DeadlineExceeded" and event.attempts > 0:
        return "deadline"
    return None


class EventMetrics(ABC):
    """A hook that turns events into metric updates, with bounded label sets; a backend implements the recorders.

    Labels are computed once per distinct combination and cached (the combinations are bounded, see the module
    docstring). ``route`` maps a target to its ``url.template`` (default: none, the label is left out).
    """

    def __init__(self, route: Route | None = None) -> None:
        self.route = route
        self._attempt_keys: dict[tuple[Any, ...], Any] = {}
        self._call_keys: dict[tuple[Any, ...], Any] = {}

    def __call__(self, event: Event) -> None:
        """Record ``event``'s contribution to the metrics."""
        kind = event.kind
        if kind == "attempt_started":  # the most frequent event, and it counts for nothing here
            return
        e: Any = event
        if kind == "attempt_finished":
            self._attempt(e)
        elif kind == "call_finished":
            self._call(e)
        elif kind == "retry_scheduled":
            self.count(RETRIES_SCHEDULED, {INTEGRATION: e.integration, RETRY_REASON: e.reason})
        elif kind == "call_rejected":
            self.count(CALLS_REJECTED, {INTEGRATION: e.integration, REJECTION: e.reason})
        elif kind == "budget_exhausted":
            self.count(RETRIES_REFUSED, {INTEGRATION: e.integration, REFUSAL: "budget"})
        elif kind == "breaker_transition":
            self.count(TRANSITIONS, {INTEGRATION: e.integration, BREAKER_STATE: e.new})
        else:
            self._queue(kind, e.integration)

    def _queue(self, kind: str, integration: str) -> None:
        if kind == "message_received":
            self.count(QUEUE_RECEIVED, {INTEGRATION: integration})
        elif (outcome := _SETTLED.get(kind)) is not None:
            self.count(QUEUE_SETTLED, {INTEGRATION: integration, QUEUE_OUTCOME: outcome})
        elif kind == "consumer_paused":
            self.count(QUEUE_PAUSES, {INTEGRATION: integration})

    def _attempt(self, e: AttemptFinished) -> None:
        template = self.route(e.target) if self.route is not None else None
        error = attempt_error_type(e)
        server = server_of(e.target) if e.target else None
        key = (e.integration, e.method, server, e.status, error, template)
        labels = self._attempt_keys.get(key)
        if labels is None:
            labels = self._attempt_keys[key] = self.attempt_labels(
                _attempt_attributes(e.integration, e.method, server, e.status, error, template)
            )
        self.record_attempt(labels, e.duration)

    def _call(self, c: CallFinished) -> None:
        template = self.route(c.target) if self.route is not None else None
        key = (c.integration, c.method, c.outcome, template)
        labels = self._call_keys.get(key)
        if labels is None:
            attributes: dict[str, str] = {
                INTEGRATION: c.integration,
                METHOD: known_method(c.method),
                CALL_OUTCOME: c.outcome,
            }
            if template is not None:
                attributes[URL_TEMPLATE] = template
            labels = self._call_keys[key] = self.call_labels(attributes)
        self.record_call(labels, c.duration, c.attempts)
        if not c.ok:
            if (reason := refusal_reason(c)) is not None:
                self.count(RETRIES_REFUSED, {INTEGRATION: c.integration, REFUSAL: reason})
            if c.outcome == "DeadlineExceeded":
                self.count(DEADLINES, {INTEGRATION: c.integration})

    @abstractmethod
    def attempt_labels(self, attributes: dict[str, str | int]) -> Any:
        """The backend's label handle for an attempt with ``attributes`` (cached by the caller)."""

    @abstractmethod
    def call_labels(self, attributes: dict[str, str]) -> Any:
        """The backend's label handle for a logical call with ``attributes`` (cached by the caller)."""

    @abstractmethod
    def record_attempt(self, labels: Any, duration: float) -> None:
        """An attempt took ``duration`` seconds."""

    @abstractmethod
    def record_call(self, labels: Any, duration: float, attempts: int) -> None:
        """A logical call took ``duration`` seconds and ``attempts`` attempts."""

    @abstractmethod
    def count(self, metric: MetricSpec, attributes: dict[str, str]) -> None:
        """Add one to the counter ``metric`` with ``attributes``."""


def _attempt_attributes(
    integration: str,
    method: str,
    server: tuple[str, int] | None,
    status: int | None,
    error: str | None,
    template: str | None,
) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {INTEGRATION: integration, METHOD: known_method(method)}
    if server is not None:
        attributes[SERVER_ADDRESS], attributes[SERVER_PORT] = server
    if status is not None:
        attributes[STATUS_CODE] = status
    if error is not None:
        attributes[ERROR_TYPE] = error
    if template is not None:
        attributes[URL_TEMPLATE] = template
    return attributes
