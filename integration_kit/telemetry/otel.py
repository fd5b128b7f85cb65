"""OpenTelemetry traces and metrics from the engine's events (the ``otel`` extra: opentelemetry-api; an SDK to export).

:class:`OpenTelemetryHook` is a hook (give it to a client, or :meth:`~OpenTelemetryHook.instrument` one):

- **Traces.** One ``INTERNAL`` span per logical call (``"{integration} {method}"``) and one ``CLIENT`` child span
  per attempt (``"{method}"``, or ``"{method} {url.template}"`` with a ``route``), with the HTTP client semantic
  conventions (``http.request.method``, ``server.address``, ``server.port``, ``url.full`` as the driver redacted
  it, ``http.response.status_code``, ``error.type``, ``http.request.resend_count`` from the second attempt on) and
  the kit's attributes under ``integration_kit.`` (attempt number and remaining deadline, outcome and verdict, the
  retry decision with its reason and delay, breaker state, budget tokens, rejection reason). Retry decisions,
  rejections, budget refusals and breaker transitions are span events on the call span. The call span's parent is
  the context current when the call's first event is emitted. An attempt of a gRPC channel (target ``grpc://`` or
  ``grpcs://``) follows the RPC conventions instead: span ``"package.Service/Method"``, ``rpc.system="grpc"``,
  ``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code``, one span per attempt.
- **Propagation.** The HTTP clients call :meth:`~OpenTelemetryHook.wrap_attempt` around each attempt's send: the
  attempt span becomes current and its trace context is injected into the request's headers with ``propagator``
  (default: the globally configured one, read at each attempt). HTTP instrumentation is suppressed meanwhile, so
  opentelemetry-instrumentation-httpx adds no second, duplicate span for the same request (see docs/telemetry.md).
- **Metrics.** Every metric of :mod:`integration_kit.telemetry.conventions`; the breaker state and budget tokens
  are observable gauges over the engines given to :meth:`~OpenTelemetryHook.instrument` or
  :meth:`~OpenTelemetryHook.watch`.

Nothing here holds a secret: targets in events are already redacted, and no header or body is read.
"""

from __future__ import annotations

import contextvars
import time
import weakref
from collections.abc import Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import propagate, trace
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "integration_kit.telemetry.otel needs the otel extra: pip install 'integration_kit[otel]'"
    ) from exc

from integration_kit.events import CircuitState, Event
from integration_kit.telemetry import conventions as c
from integration_kit.telemetry.otel_ws import WsInstruments
from integration_kit.telemetry.ws_metrics import WsEventMetrics

if TYPE_CHECKING:
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Span

    from integration_kit.engine.call import CallEngine

__all__ = ["OpenTelemetryHook"]

#: The RPC semantic conventions, for the attempts of gRPC channels (targets ``grpc://`` or ``grpcs://``).
RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
RPC_STATUS = "rpc.grpc.status_code"

#: The instrumentation scope's name.
SCOPE = "integration_kit"
#: How many calls may be open (started, not finished) before the oldest are ended as abandoned.
MAX_OPEN_CALLS = 10_000
#: How many breaker transitions wait, per thread or task, for the next event of the call that caused them.
MAX_PENDING_TRANSITIONS = 8


def _suppress_http_key() -> str | None:
    """opentelemetry-instrumentation's key that HTTP instrumentations check; without the package there is none."""
    try:
        from opentelemetry.instrumentation import utils
    except ImportError:  # pragma: no cover - depends on what is installed
        return None
    key: str | None = getattr(utils, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None)
    return key


_SUPPRESS_HTTP = _suppress_http_key()
_ERROR = Status(StatusCode.ERROR)


class _Instrumentable(Protocol):
    @property
    def engine(self) -> CallEngine: ...


class _CallTrace:
    """The spans of one logical call in flight."""

    __slots__ = ("attempt", "attempt_end", "context", "recording", "span")

    def __init__(self, span: Span, context: otel_context.Context) -> None:
        self.span = span
        self.context = context
        self.recording = span.is_recording()  # sampled out: no attempt spans, the call's context is propagated
        self.attempt: Span | None = None  # the last attempt's span, ended once the decision after it is known
        self.attempt_end = 0


class OpenTelemetryHook(WsEventMetrics):
    """Turns events into OpenTelemetry spans and metrics (see the module docstring).

    ``tracer_provider`` and ``meter_provider`` default to the global ones; ``propagator`` to the global text map
    propagator; ``route`` maps a redacted target to its ``url.template`` (span names and a bounded metric label).
    ``traces=False`` or ``metrics=False`` switch one half off. ``attempts_histogram=False`` leaves
    ``integration_kit.call.attempts`` out: one histogram record less per call (about a third of the metrics' cost
    on the SDK, see docs/telemetry.md), and nothing the kit's dashboard or alerts read (they take attempts per call
    from the counts of the two duration histograms). Give every integration a distinct name: calls are told apart
    by ``(integration, call_id)``.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: otel_metrics.MeterProvider | None = None,
        propagator: TextMapPropagator | None = None,
        route: c.Route | None = None,
        traces: bool = True,
        metrics: bool = True,
        attempts_histogram: bool = True,
    ) -> None:
        super().__init__(route)
        self.tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        self.propagator = propagator
        self.traces = traces
        self.metrics = metrics
        self._calls: dict[tuple[str, int], _CallTrace] = {}
        self._engines: list[weakref.ref[CallEngine]] = []
        # Each integration's breaker state as its transitions tell (reading breaker.state could reach a store).
        self._breaker_states: dict[str, str] = {}
        self._attempt_context: contextvars.ContextVar[tuple[Span, otel_context.Context] | None] = (
            contextvars.ContextVar("integration_kit_attempt", default=None)
        )
        self._pending: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar(
            "integration_kit_transitions", default=()
        )
        meter = _get_meter(meter_provider)
        self._attempt_duration = meter.create_histogram(
            c.HTTP_DURATION.name,
            unit="s",
            description=c.HTTP_DURATION.description,
            explicit_bucket_boundaries_advisory=list(c.DURATION_BUCKETS),
        )
        self._call_duration = meter.create_histogram(
            c.CALL_DURATION.name,
            unit="s",
            description=c.CALL_DURATION.description,
            explicit_bucket_boundaries_advisory=list(c.CALL_DURATION_BUCKETS),
        )
        self._attempts = (
            meter.create_histogram(
                c.ATTEMPTS.name,
                unit=c.ATTEMPTS.unit,
                description=c.ATTEMPTS.description,
                explicit_bucket_boundaries_advisory=list(c.ATTEMPT_BUCKETS),
            )
            if attempts_histogram
            else None
        )
        self._counters = {
            spec.name: meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
            for spec in c.COUNTERS
        }
        meter.create_observable_gauge(
            c.BREAKER.name, [self._observe_breakers], unit=c.BREAKER.unit, description=c.BREAKER.description
        )
        meter.create_observable_gauge(
            c.BUDGET.name, [self._observe_budgets], unit=c.BUDGET.unit, description=c.BUDGET.description
        )
        self._ws = WsInstruments(meter)

    # -- wiring ------------------------------------------------------------------------------------------------

    def instrument(self, client: _Instrumentable | CallEngine) -> None:
        """Add this hook to ``client`` (a resilient client, or a :class:`~integration_kit.engine.call.CallEngine`)
        and :meth:`watch` its engine."""
        engine: CallEngine = getattr(client, "engine", client)  # type: ignore[arg-type]
        engine.add_hook(self)
        self.watch(engine)

    def watch(self, engine: CallEngine) -> None:
        """Report ``engine``'s breaker state and budget tokens through the observable gauges (held weakly), and
        its breaker state on attempt spans."""
        self._engines.append(weakref.ref(engine))
        if engine.breaker is not None:
            self._breaker_states.setdefault(engine.name, engine.breaker.state.value)

    def __call__(self, event: Event) -> None:
        """Turn ``event`` into spans (when ``traces``) and metric updates (when ``metrics``)."""
        if self.traces:
            self._trace(event)
        if self.metrics:
            super().__call__(event)

    def wrap_attempt(self, headers: MutableMapping[str, str]) -> _AttemptScope:
        """The scope of the attempt just started on this thread or task: its span is current and its trace context
        is injected into ``headers`` (see :class:`~integration_kit.events.AttemptWrapper`)."""
        return _AttemptScope(self, headers)

    # -- traces --------------------------------------------------------------------------------------------------

    def _trace(self, event: Event) -> None:  # noqa: C901, PLR0912 - one dispatch over the event kinds
        kind = event.kind
        e: Any = event
        if kind == "breaker_transition":
            self._breaker_states[event.integration] = e.new
            # Emitted while a call acquires or records; its call's next event (same thread or task) picks it up.
            # A thread that makes no calls (a metrics reader syncing a shared breaker) keeps only the last few.
            self._pending.set((*self._pending.get()[-(MAX_PENDING_TRANSITIONS - 1) :], e))
            return
        if event.call_id == 0:
            return
        key = (event.integration, event.call_id)
        call = self._calls.get(key)
        if call is None:
            if kind not in ("attempt_started", "call_rejected", "call_finished"):
                return
            call = self._start_call(key, e)
        if not call.recording:
            if kind == "attempt_started":
                self._attempt_context.set((call.span, call.context))
            elif kind == "call_finished":
                del self._calls[key]
                call.span.end()
            return
        if pending := self._pending.get():
            for t in pending:
                call.span.add_event(
                    "breaker_transition",
                    {
                        "integration_kit.breaker.name": t.breaker,
                        "integration_kit.breaker.from": t.old,
                        c.BREAKER_STATE: t.new,
                        "integration_kit.breaker.reason": t.reason,
                    },
                )
            self._pending.set(())
        if kind == "attempt_started":
            self._start_attempt(call, e)
        elif kind == "attempt_finished":
            self._finish_attempt(call, e)
        elif kind == "retry_scheduled":
            attributes = {
                c.RETRY_DECISION: "retry",
                c.RETRY_REASON: e.reason,
                c.RETRY_DELAY: e.delay,
                c.ATTEMPT: e.attempt,
            }
            self._end_attempt(call, attributes)
            call.span.add_event("retry_scheduled", attributes)
        elif kind == "budget_exhausted":
            attributes = {c.RETRY_DECISION: "refused", c.REFUSAL: "budget", c.BUDGET_TOKENS: e.tokens}
            self._end_attempt(call, attributes)
            call.span.add_event("budget_exhausted", {**attributes, c.ATTEMPT: e.attempt})
        elif kind == "call_rejected":
            call.span.set_attribute(c.REJECTION, e.reason)
            call.span.add_event("call_rejected", {c.REJECTION: e.reason})
        elif kind == "call_finished":
            self._finish_call(key, call, e)

    def _start_attempt(self, call: _CallTrace, e: Any) -> None:
        self._end_attempt(call, None)
        attributes = self._attempt_attributes(e)
        name = e.method if (template := attributes.get(c.URL_TEMPLATE)) is None else f"{e.method} {template}"
        rpc = _rpc_of(e.target)
        if rpc is not None:  # a gRPC attempt: the RPC semantic conventions, named "package.Service/Method"
            name = f"{rpc[0]}/{rpc[1]}"
            for key in (c.METHOD, c.URL_FULL, "http.request.method_original", c.RESEND_COUNT):
                attributes.pop(key, None)
            attributes |= {RPC_SYSTEM: "grpc", RPC_SERVICE: rpc[0], RPC_METHOD: rpc[1]}
        span = self.tracer.start_span(name, call.context, SpanKind.CLIENT, attributes)
        call.attempt = span
        self._attempt_context.set((span, call.context))

    def _finish_attempt(self, call: _CallTrace, e: Any) -> None:
        """Record how the attempt ended; its span ends once the decision after it is known."""
        self._attempt_context.set(None)
        span = call.attempt
        if span is None:
            return
        call.attempt_end = time.time_ns()
        finished: dict[str, Any] = {c.ATTEMPT_OUTCOME: e.outcome, c.ATTEMPT_VERDICT: e.verdict}
        if e.status is not None:
            finished[RPC_STATUS if _rpc_of(e.target) is not None else c.STATUS_CODE] = e.status
        error = c.attempt_error_type(e)
        if error is not None:
            finished[c.ERROR_TYPE] = error
            span.set_status(_ERROR)
        span.set_attributes(finished)

    def _start_call(self, key: tuple[str, int], e: Any) -> _CallTrace:
        if len(self._calls) >= MAX_OPEN_CALLS:  # abandoned calls (a cancelled driver) must not pile up
            try:
                old = self._calls.pop(next(iter(self._calls)))
            except (RuntimeError, StopIteration, KeyError):  # another thread changed the dict meanwhile
                pass
            else:
                self._end_attempt(old, None)
                old.span.set_attribute(c.CALL_OUTCOME, "abandoned")
                old.span.end()
        parent = otel_context.get_current()
        method = getattr(e, "method", "CALL") if e.kind != "call_rejected" else "CALL"
        attributes: dict[str, Any] = {c.INTEGRATION: e.integration, "integration_kit.call.id": e.call_id}
        if e.kind != "call_rejected":
            attributes[c.METHOD] = c.known_method(method)
            if e.target:
                attributes[c.URL_FULL] = e.target
        span = self.tracer.start_span(
            f"{e.integration} {method}" if method != "CALL" else e.integration, parent, SpanKind.INTERNAL, attributes
        )
        call = self._calls[key] = _CallTrace(span, trace.set_span_in_context(span, parent))
        return call

    def _attempt_attributes(self, e: Any) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            c.INTEGRATION: e.integration,
            c.METHOD: c.known_method(e.method),
            c.ATTEMPT: e.attempt,
        }
        if e.method not in c.KNOWN_METHODS:
            attributes["http.request.method_original"] = e.method
        if e.target:
            attributes[c.URL_FULL] = e.target
            server = c.server_of(e.target)
            if server is not None:
                attributes[c.SERVER_ADDRESS], attributes[c.SERVER_PORT] = server
            if self.route is not None and (template := self.route(e.target)) is not None:
                attributes[c.URL_TEMPLATE] = template
        if e.attempt > 1:
            attributes[c.RESEND_COUNT] = e.attempt - 1
        if e.timeout is not None:
            attributes[c.ATTEMPT_TIMEOUT] = e.timeout
        state = self._breaker_states.get(e.integration)
        if state is not None:
            attributes[c.BREAKER_STATE] = state
        return attributes

    def _end_attempt(self, call: _CallTrace, attributes: dict[str, Any] | None) -> None:
        span = call.attempt
        if span is None:
            return
        if attributes:
            span.set_attributes(attributes)
        span.end(call.attempt_end or None)
        call.attempt = None
        call.attempt_end = 0

    def _finish_call(self, key: tuple[str, int], call: _CallTrace, e: Any) -> None:
        del self._calls[key]
        if call.attempt is not None:
            reason = c.refusal_reason(e)
            decision: dict[str, Any] = {}
            if not e.ok:
                decision = {c.RETRY_DECISION: "refused", c.REFUSAL: reason} if reason else {c.RETRY_DECISION: "none"}
            self._end_attempt(call, decision)
        span = call.span
        attributes: dict[str, Any] = {c.CALL_ATTEMPTS: e.attempts, c.CALL_OUTCOME: e.outcome}
        if e.status is not None:
            attributes[c.STATUS_CODE] = e.status
        if not e.ok:
            attributes[c.ERROR_TYPE] = e.outcome
            span.set_status(_ERROR)
        span.set_attributes(attributes)
        span.end()

    # -- metrics -------------------------------------------------------------------------------------------------

    def attempt_labels(self, attributes: dict[str, str | int]) -> Any:
        """OpenTelemetry takes the attributes themselves."""
        return attributes

    def call_labels(self, attributes: dict[str, str]) -> Any:
        """OpenTelemetry takes the attributes themselves."""
        return attributes

    def record_attempt(self, labels: Any, duration: float) -> None:
        """Record on ``http.client.request.duration``."""
        self._attempt_duration.record(duration, labels)

    def record_call(self, labels: Any, duration: float, attempts: int) -> None:
        """Record on the call duration and (unless ``attempts_histogram=False``) attempts-per-call histograms."""
        self._call_duration.record(duration, labels)
        if self._attempts is not None:
            self._attempts.record(attempts, labels)

    def count(self, metric: c.MetricSpec, attributes: dict[str, str]) -> None:
        """Add one to ``metric``."""
        self._counters[metric.name].add(1, attributes)

    def ws_record(self, spec: c.MetricSpec, value: float, labels: tuple[str, ...]) -> None:
        """Add ``value`` to a WebSocket counter or up-down counter, or record it on the downtime histogram."""
        self._ws.record(spec, value, labels)

    def _watched(self) -> Iterator[CallEngine]:
        for ref in self._engines:
            engine = ref()
            if engine is not None:
                yield engine

    def _observe_breakers(self, options: CallbackOptions) -> Iterable[Observation]:
        for engine in self._watched():
            if engine.breaker is not None:
                current = engine.breaker.state
                for state in CircuitState:
                    yield Observation(
                        1 if state is current else 0, {c.INTEGRATION: engine.name, c.BREAKER_STATE: state.value}
                    )

    def _observe_budgets(self, options: CallbackOptions) -> Iterable[Observation]:
        for engine in self._watched():
            if engine.budget is not None:
                yield Observation(engine.budget.tokens, {c.INTEGRATION: engine.name})


class _AttemptScope:
    """Makes the started attempt's span current (HTTP instrumentation suppressed) and injects its context."""

    __slots__ = ("headers", "hook", "token")

    def __init__(self, hook: OpenTelemetryHook, headers: MutableMapping[str, str]) -> None:
        self.hook = hook
        self.headers = headers
        self.token: object | None = None

    def __enter__(self) -> None:
        started = self.hook._attempt_context.get()
        if started is None:
            return
        ctx = trace.set_span_in_context(*started)
        if _SUPPRESS_HTTP is not None:
            ctx = otel_context.set_value(_SUPPRESS_HTTP, True, ctx)
        propagator = self.hook.propagator or propagate.get_global_textmap()
        propagator.inject(self.headers, context=ctx)
        self.token = otel_context.attach(ctx)

    def __exit__(self, *exc_info: object) -> None:
        if self.token is not None:
            otel_context.detach(self.token)  # type: ignore[arg-type]
            self.token = None


def _get_meter(provider: otel_metrics.MeterProvider | None) -> otel_metrics.Meter:
    return otel_metrics.get_meter(SCOPE, meter_provider=provider)


def _rpc_of(target: str | None) -> tuple[str, str] | None:
    """``(service, method)`` of a gRPC channel's target (``grpcs://host:port/package.Service/Method``), else None."""
    if not target or not target.startswith(("grpc://", "grpcs://")):
        return None
    path = target.partition("://")[2].partition("/")[2]
    service, _, method = path.partition("/")
    return (service, method) if service and method else None
