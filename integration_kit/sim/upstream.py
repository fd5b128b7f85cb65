"""The live flaky upstream: an ASGI app that plays a :class:`~integration_kit.sim.scenarios.Scenario` over real HTTP.

Every request to any path (except ``GET /stats`` and ``GET /metrics``) is answered as the scenario decides at that
moment: a status after the sampled latency (a 429 carries ``Retry-After``), a reset, a refusal or a hang. ``time_scale``
plays the scenario faster than real time: scenario time is ``elapsed real seconds * time_scale`` and a latency of
``L`` scenario seconds takes ``L / time_scale`` real seconds. ``Retry-After`` stays in scenario seconds (rounded
up to whole seconds, as HTTP requires), so a client run at the same time scale must wait on a clock scaled
likewise (:class:`ScaledClock`).

``GET /stats`` reports what the upstream received: requests in all, per scenario second, per answer, and the
idempotency keys it saw (``Idempotency-Key`` header), for measuring load amplification and duplicate writes. It also
reports the upstream's own view of how well it kept up, ``loop_lag``: how much later than asked its event loop
ran each wait it plays (a latency, a paced start), in real seconds (``p99``, ``max``, ``samples``; the last
:data:`LAG_SAMPLES` waits). A loop shared with a busy client, or starved of CPU, answers later than the scenario
says; the live playbook counts that lag in the bench's health.
A client that tags each logical call with an ``X-Call-Id`` header (the same value on every retry) also learns how
many requests came *early*: sent for a call before the ``Retry-After`` of that call's last 429 had passed
(``early_retries``; the hint counts from when the 429 was sent).

A request that names its logical call in an ``X-Fault-Key: <call number>`` header draws its fault and latency from
a stream keyed by ``(seed, call, attempt)``, the attempt being the count of requests with that key so far
(:class:`~integration_kit.sim.keyed.KeyedRandom`), exactly as the simulator does, so the two give the same request
the same fate; any other request is keyed by its order of arrival (refusals included).

When the scenario gives the partner a :class:`~integration_kit.sim.capacity.Capacity`, requests go through a real
bounded FIFO queue (:class:`_LiveQueue`): at most ``concurrency`` in service, starts paced at ``rate`` per scenario
second, at most ``queue`` waiting; a request that finds the queue full is answered the ``overflow`` status at once
(or hangs). The drawn latency is the service time, and a request whose client has gone is still served to its end,
as a real overloaded server does. ``/stats`` counts the overflows.

Faults over real sockets, honestly:

- *reset*: the upstream starts a response (status line and headers promising a body) and then closes the
  connection without the body, after the sampled latency. A client sees the connection lost mid-response.
- *refused*: once a connection is accepted it can no longer be refused, and one listening socket cannot refuse
  some connections and accept others. The upstream approximates a refusal by closing the connection at once, in
  the same way, without waiting. A client therefore sees a *lost connection* (``ConnectionLost``), where the
  simulator and :mod:`integration_kit.sim.testing` report a *connect error* (``ConnectError``). Both are transient
  failures that the breaker and the budget count alike; only the retry of a non-idempotent call without an
  idempotency key differs (a connect error is safe to retry, a lost connection is not). Refusals are not counted as
  received in ``per_second`` (the simulator's definition: the partner never saw them) but are reported apart.
- *hang*: the upstream never answers and waits until the client disconnects (bounded by ``max_hang`` real
  seconds, after which it drops the connection).

A scenario's *malformed* answer is a 200 with the header ``x-malformed: 1`` (:data:`MALFORMED_HEADER`); over a
partner's OpenAPI document, :class:`~integration_kit.openapi.stand_in.DocumentedAnswers` turns it into a documented
body with one field broken.

Starlette and uvicorn are imported only when an app is built or served (the ``server`` extra).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from integration_kit.clock import Clock, SystemClock
from integration_kit.sim.capacity import Capacity
from integration_kit.sim.keyed import KeyedRandom, arrival_key, request_key
from integration_kit.sim.provider import Admission, ProviderState
from integration_kit.sim.scaled_clock import ScaledClock
from integration_kit.sim.scenarios import Decision, FaultKind, Scenario

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.types import Receive, Scope, Send

__all__ = ["FlakyUpstream", "ScaledClock", "serve_app", "serve_scenario"]

#: How long (real seconds) a hang may hold a connection when the client never gives up.
MAX_HANG = 60.0
#: The request header that names a logical call, so retries sent before its Retry-After are counted.
CALL_ID_HEADER = "x-call-id"
#: The response header that marks a scenario's ``malformed`` 200 (its body ``{"status": "malformed"}``), so
#: :class:`~integration_kit.openapi.stand_in.DocumentedAnswers` breaks the documented body of that very answer.
MALFORMED_HEADER = "x-malformed"
#: Slack (real seconds) before a retry counts as early: clock reads and float rounding, not client behaviour.
EARLY_TOLERANCE = 0.002
#: How many of the latest waits ``loop_lag`` is computed over.
LAG_SAMPLES = 100_000
#: How long :func:`serve_scenario` waits for uvicorn to start or stop (real seconds).
SERVER_TIMEOUT = 10.0


class FlakyUpstream:
    """A scenario played over HTTP: :attr:`app` is the ASGI app; :meth:`stats` what it has received so far.

    Request *n*'s decision is drawn from a stream keyed by ``(seed, n)``; the scenario's clock starts at
    construction or at :meth:`restart`. ``clock`` (default: the system's monotonic clock) tells real time; a
    :class:`~integration_kit.clock.ManualClock` lets a test step through the phases.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int = 0,
        time_scale: float = 1.0,
        max_hang: float = MAX_HANG,
        clock: Clock | None = None,
    ) -> None:
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise ValueError(f"FlakyUpstream: time_scale must be a finite number > 0, got {time_scale!r}")
        self.scenario = scenario
        self.seed = seed
        self.time_scale = float(time_scale)
        self.max_hang = max_hang
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._app: Starlette | None = None
        self.restart()

    def restart(self) -> None:
        """Start the scenario again from time 0 with fresh statistics and a freshly seeded generator."""
        with self._lock:
            self._rng = KeyedRandom(self.seed)
            self._index = 0
            self._attempts: collections.Counter[int] = collections.Counter()
            self._started = self.clock.now()
            self._received = 0
            self._refused = 0
            self._overflowed = 0
            self._queue = _LiveQueue()
            self._per_second: collections.Counter[int] = collections.Counter()
            self._answers: collections.Counter[str] = collections.Counter()
            self._keys: collections.Counter[str] = collections.Counter()
            self._not_before: dict[str, float] = {}
            self._early = 0
            self._lags: collections.deque[float] = collections.deque(maxlen=LAG_SAMPLES)
            limits = self.scenario.provider
            self.provider = (
                None if limits is None else ProviderState(limits, seed=self.seed, time_scale=self.time_scale)
            )

    def now(self) -> float:
        """Scenario seconds since the start."""
        return (self.clock.now() - self._started) * self.time_scale

    def decide(
        self, idempotency_key: str | None = None, fault_key: str | None = None, call_id: str | None = None
    ) -> Decision:
        """Draw the answer to a request arriving now, and count it; ``fault_key`` is its ``X-Fault-Key``,
        ``call_id`` its ``X-Call-Id`` (see ``early_retries``)."""
        return self._decide(idempotency_key, fault_key, call_id)[0]

    def _decide(
        self, idempotency_key: str | None = None, fault_key: str | None = None, call_id: str | None = None
    ) -> tuple[Decision, Capacity | None, float]:
        """The answer to a request arriving now, the capacity in force, and the scenario time; counted."""
        with self._lock:
            t = self.now()
            call = int(fault_key) if fault_key is not None and fault_key.isdigit() and len(fault_key) < 12 else None
            if call is None:
                self._rng.rekey(arrival_key(self._index))
            else:
                self._attempts[call] += 1
                self._rng.rekey(request_key(call, self._attempts[call]))
            self._index += 1
            decision = self.scenario.decide(t, self._rng)
            if call_id is not None:
                self._check_early(call_id, t, decision)
            if decision.fault is FaultKind.REFUSE:
                self._refused += 1
            else:
                self._received += 1
                self._per_second[int(t)] += 1
                if idempotency_key is not None:
                    self._keys[idempotency_key] += 1
            self._answers[str(decision.status) if decision.status else decision.fault.value] += 1
        return decision, self.scenario.capacity_at(t), t

    async def play(self, seconds: float) -> None:
        """Wait ``seconds`` of scenario time on the running loop, and note how much later than asked it ended
        (real seconds; ``loop_lag`` in :meth:`stats`). A zero wait still yields once, so it measures one pass of
        the loop."""
        import anyio

        asked = max(0.0, seconds) / self.time_scale
        began = time.perf_counter()
        await anyio.sleep(asked)
        self._lags.append(max(0.0, time.perf_counter() - began - asked))  # deque.append is atomic

    def loop_lag(self) -> dict[str, float | None]:
        """``{"p99", "max"}`` of the loop lag in real seconds (``None`` before any wait) and how many ``samples``."""
        lags = sorted(self._lags)
        if not lags:
            return {"p99": None, "max": None, "samples": 0}
        return {"p99": lags[min(len(lags) - 1, math.ceil(0.99 * len(lags)) - 1)], "max": lags[-1], "samples": len(lags)}

    def _count_overflow(self) -> None:
        with self._lock:
            self._overflowed += 1

    def _check_early(self, call_id: str, t: float, decision: Decision) -> None:
        """Count a request for ``call_id`` that came before its last Retry-After passed; remember a new hint."""
        not_before = self._not_before.pop(call_id, None)
        if not_before is not None and t < not_before - EARLY_TOLERANCE * self.time_scale:
            self._early += 1
        if decision.retry_after is not None:
            # the hint is sent rounded up to whole seconds, after the sampled latency
            self._not_before[call_id] = t + decision.latency + math.ceil(decision.retry_after)

    def stats(self) -> dict[str, Any]:
        """What the upstream received so far (the JSON of ``GET /stats``)."""
        with self._lock:
            return {
                "scenario": self.scenario.name,
                "time": self.now(),
                "time_scale": self.time_scale,
                "received": self._received,
                "refused": self._refused,
                "overflowed": self._overflowed,
                "per_second": {str(s): n for s, n in sorted(self._per_second.items())},
                "answers": dict(sorted(self._answers.items())),
                "idempotency_keys_seen": len(self._keys),
                "idempotency_keys": sorted(self._keys),
                "duplicate_keys": sorted(k for k, n in self._keys.items() if n > 1),
                "early_retries": self._early,
                "loop_lag": self.loop_lag(),
                **({} if self.provider is None else {"provider": self.provider.stats()}),
            }

    @property
    def app(self) -> Starlette:
        """The Starlette app (built on first use); ``GET /metrics`` serves :meth:`stats` in the Prometheus format."""
        if self._app is None:
            from starlette.applications import Starlette
            from starlette.routing import Route

            self._app = Starlette(
                routes=[
                    Route("/stats", self._stats_endpoint, methods=["GET"]),
                    Route("/metrics", self._metrics_endpoint, methods=["GET"]),
                    Route("/{path:path}", _Play(self), methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
                ]
            )
        return self._app

    async def _stats_endpoint(self, request: Request) -> JSONResponse:
        from starlette.responses import JSONResponse

        return JSONResponse(self.stats())

    async def _metrics_endpoint(self, request: Request) -> Response:
        """``GET /metrics``: :meth:`stats` as Prometheus counters and gauges (needs prometheus_client)."""
        from starlette.responses import PlainTextResponse, Response

        try:
            from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
            from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        except ImportError:
            return PlainTextResponse("/metrics needs prometheus_client (the prometheus extra)\n", status_code=501)
        stats = self.stats()
        scenario = [stats["scenario"]]
        answers = CounterMetricFamily(
            "flaky_upstream_requests", "Requests by answer (status or fault)", labels=["scenario", "answer"]
        )
        for answer, n in stats["answers"].items():
            answers.add_metric([*scenario, answer], n)
        families: list[Any] = [answers]
        for kind, name, doc, value in (
            (CounterMetricFamily, "received", "Requests received (not refused)", stats["received"]),
            (CounterMetricFamily, "refused", "Connections refused (closed at once)", stats["refused"]),
            (GaugeMetricFamily, "idempotency_keys", "Distinct idempotency keys seen", stats["idempotency_keys_seen"]),
            (GaugeMetricFamily, "duplicate_idempotency_keys", "Keys seen twice or more", len(stats["duplicate_keys"])),
            (GaugeMetricFamily, "scenario_time_seconds", "Scenario seconds since the start", stats["time"]),
        ):
            family = kind(f"flaky_upstream_{name}", doc, labels=["scenario"])
            family.add_metric(scenario, value)
            families.append(family)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(families))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _Families:
    """A prometheus_client collector that yields metric families built beforehand."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> list[Any]:
        return self.families


class _Play:
    """The raw ASGI endpoint that plays the scenario (raw, because dropping a connection needs the raw protocol)."""

    def __init__(self, upstream: FlakyUpstream) -> None:
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import anyio

        read = {name: value.decode("latin-1") for name, value in scope["headers"] if name in _READ_HEADERS}
        upstream = self.upstream
        decision, capacity, arrived = upstream._decide(
            read.get(b"idempotency-key"), read.get(b"x-fault-key"), read.get(_CALL_ID)
        )
        if capacity is not None and decision.fault in (FaultKind.RESPOND, FaultKind.RESET):
            decision = await self._through_queue(decision, capacity, arrived)
        elif decision.fault is not FaultKind.REFUSE and decision.fault is not FaultKind.HANG:
            await upstream.play(decision.latency)
        fault = decision.fault
        admitted = _NO_LIMITS
        if upstream.provider is not None and fault is FaultKind.RESPOND:
            admitted = upstream.provider.admit(arrived, scope["method"])  # at arrival, as the simulator counts
            if admitted.status is not None:
                decision = Decision(FaultKind.RESPOND, admitted.status, decision.latency, None)
        if fault is FaultKind.HANG:
            with anyio.move_on_after(upstream.max_hang):
                while (await receive())["type"] != "http.disconnect":
                    pass
            return await _drop(send)
        if fault is not FaultKind.RESPOND:
            return await _drop(send)
        headers = [(b"content-type", b"application/json")]
        headers += [(name.encode(), value.encode()) for name, value in admitted.headers]
        if decision.retry_after is not None:
            headers.append((b"retry-after", str(math.ceil(decision.retry_after)).encode()))
        body = b'{"status": %d}' % decision.status
        if decision.malformed:
            headers.append((_MALFORMED, b"1"))
            body = b'{"status": "malformed"}'
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": decision.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _through_queue(self, decision: Decision, capacity: Capacity, arrived: float) -> Decision:
        """Serve ``decision`` through the bounded queue; a full queue turns it into the overflow answer."""
        upstream = self.upstream
        if await upstream._queue.serve(upstream, capacity, arrived, decision.latency):
            return decision
        upstream._count_overflow()
        if capacity.overflow == "hang":
            return Decision(FaultKind.HANG, 0, math.inf, None)
        return Decision(FaultKind.RESPOND, int(capacity.overflow), 0.0, None)


class _LiveQueue:
    """A real bounded FIFO queue in front of the partner's capacity (one per upstream run, on its event loop).

    A request takes a service slot when one is free (``concurrency``) and no one is waiting before it, else it
    waits in line; starts are paced ``1 / rate`` scenario seconds apart. A request that finds ``queue`` others
    waiting is turned away. The service itself is a sleep of the drawn latency.
    """

    def __init__(self) -> None:
        self.busy = 0
        self.line: collections.deque[Any] = collections.deque()  # anyio.Event per waiting request
        self.pacing = 0  # requests holding a slot but waiting for their paced start (they count as waiting)
        self.next_start = 0.0  # scenario time of the next start the rate allows

    async def serve(self, upstream: FlakyUpstream, capacity: Capacity, arrived: float, service: float) -> bool:
        """Queue, be served for ``service`` scenario seconds, leave; ``False`` if the queue was full."""
        import anyio

        waiting = len(self.line) + self.pacing
        if capacity.queue is not None and waiting >= capacity.queue:
            return False
        limit = capacity.concurrency
        if limit is not None and (self.busy >= limit or self.line):
            event = anyio.Event()
            self.line.append(event)
            await event.wait()  # the slot is handed over by the request that leaves it
        else:
            self.busy += 1
        try:
            if capacity.rate is not None:
                start = max(upstream.now(), self.next_start)
                self.next_start = start + capacity.interval
                pause = start - upstream.now()
                if pause > 0:
                    self.pacing += 1
                    try:
                        await upstream.play(pause)
                    finally:
                        self.pacing -= 1
            await upstream.play(service)
        finally:
            self._leave(limit)
        return True

    def _leave(self, limit: int | None) -> None:
        if limit is not None and self.line and self.busy <= limit:
            self.line.popleft().set()  # hand the slot to the next in line
        else:
            self.busy -= 1


_CALL_ID = CALL_ID_HEADER.encode()
_MALFORMED = MALFORMED_HEADER.encode()
#: The request headers the upstream reads: the idempotency key it counts, the client's fault key (so live and
#: simulated runs draw the same fates) and the call id (to count requests sent before a Retry-After had passed).
_READ_HEADERS = frozenset({b"idempotency-key", b"x-fault-key", _CALL_ID})


#: The admission of a request when the scenario names no provider.
_NO_LIMITS = Admission(None, ())


async def _drop(send: Send) -> None:
    """Promise a body and return without it: the server closes the connection mid-response."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})


class _QuietDrops(logging.Filter):
    """Hides uvicorn's complaint about the responses the upstream leaves unfinished on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


@contextlib.contextmanager
def serve_scenario(
    scenario: Scenario, *, seed: int = 0, time_scale: float = 1.0, port: int = 0, max_hang: float = MAX_HANG
) -> Iterator[str]:
    """Serve ``scenario`` on ``127.0.0.1`` (``port=0``: a free port) in a background thread; yield the base URL.

    The scenario's clock starts when the URL is yielded. On exit the server stops and the thread is joined.
    Needs the ``server`` extra (starlette, uvicorn).
    """
    upstream = FlakyUpstream(scenario, seed=seed, time_scale=time_scale, max_hang=max_hang)
    with serve_app(upstream.app, port=port, name="upstream") as url:
        upstream.restart()
        yield url


@contextlib.contextmanager
def serve_app(app: Any, *, port: int = 0, name: str = "app") -> Iterator[str]:
    """Serve any ASGI ``app`` with uvicorn on ``127.0.0.1`` in a background thread; yield its base URL.

    Needs the ``server`` extra (uvicorn). On exit the server stops and the thread is joined.
    """
    import uvicorn

    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say so, and without it Nagle's
    # algorithm meets delayed ACKs and every response waits ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    host, bound = sock.getsockname()
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    quiet = _QuietDrops()
    error_log = logging.getLogger("uvicorn.error")
    error_log.addFilter(quiet)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"{name}-{bound}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {name} did not start on {host}:{bound}")
            time.sleep(0.005)
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(SERVER_TIMEOUT)
        sock.close()
        error_log.removeFilter(quiet)
