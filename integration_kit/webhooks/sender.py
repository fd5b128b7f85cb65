"""The webhook sender: signed deliveries on a durable retry schedule, one engine per endpoint, an SSRF guard.

:meth:`WebhookSender.send` stores the message and one delivery per endpoint in the
:class:`~integration_kit.webhooks.delivery_store.DeliveryStore` (SQLite on one host, PostgreSQL for workers
on many; an id already sent is ignored: one payload per event id). :meth:`WebhookSender.deliver_due` (or the
thread of :meth:`WebhookSender.start`) makes each due attempt:

1. the payload is signed with the Standard Webhooks scheme under the endpoint's secrets (two during a rotation),
   with a fresh ``webhook-timestamp`` and the same ``webhook-id`` on every attempt;
2. the attempt is one call of the endpoint's :class:`~integration_kit.http.client.ResilientClient` (the call engine
   with the endpoint's timeouts, circuit breaker and bulkhead; redirects are never followed) over a
   :class:`GuardedTransport`, which resolves the host at that moment, refuses unsafe addresses and connects to the
   address it checked;
3. its end is written to the store and the attempt log: ``delivered`` (2xx); ``disabled`` (410 Gone, or the
   endpoint has failed for longer than the schedule's ``disable_after``: a
   :class:`~integration_kit.webhooks.events.WebhookEndpointDisabled` event is emitted and its pending deliveries are
   parked); ``retry`` at the time the :class:`~integration_kit.webhooks.schedule.RetrySchedule` gives (a longer
   ``Retry-After`` is honoured); ``failed`` when the schedule is exhausted. A breaker or bulkhead refusal is not an
   attempt: the delivery is due again when the breaker allows a probe.

The engine makes each attempt's decisions; the schedule between attempts lives in the store, so it survives
restarts and is shared by every worker on the store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from integration_kit.clock import Clock, WallClock
from integration_kit.errors import (
    AttemptError,
    CallRejected,
    CircuitOpenError,
    ConfigurationError,
    GaveUp,
    IntegrationError,
)
from integration_kit.events import Event, Hook, RetryScheduled, emit
from integration_kit.http.client import ResilientClient
from integration_kit.http.config import ClientConfig
from integration_kit.policies.config import BreakerPolicy, Limits, RetryPolicy, Timeouts
from integration_kit.server.signatures import StandardWebhooks
from integration_kit.webhooks.delivery_store import AttemptLogEntry, DeliveryStore, DueDelivery
from integration_kit.webhooks.errors import UnsafeDestination
from integration_kit.webhooks.events import WebhookEndpointDisabled
from integration_kit.webhooks.schedule import RetrySchedule
from integration_kit.webhooks.ssrf import Resolver, resolve_destination

__all__ = ["DELIVERY_TIMEOUTS", "Endpoint", "GuardedTransport", "WebhookSender"]

logger = logging.getLogger("integration_kit.webhooks")

#: Per-attempt timeouts of a delivery: Svix gives an endpoint 15 s to answer.
DELIVERY_TIMEOUTS = Timeouts(connect=3.05, read=15.0, write=15.0, pool=5.0)
#: The per-endpoint breaker: open after 5 consecutive failures, probe after 60 s, then twice as long after each
#: failed probe up to an hour (a down endpoint is probed less and less, not hammered by every due delivery).
DEFAULT_ENDPOINT_BREAKER = BreakerPolicy(
    failure_threshold=5,
    failure_rate_threshold=None,
    wait_in_open=60.0,
    wait_in_open_multiplier=2.0,
    max_wait_in_open=3600.0,
)
#: How much of an endpoint's answer is read (bytes): receivers answer with a short acknowledgement.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one subscriber receives webhooks.

    ``secrets`` are Standard Webhooks ``whsec_`` secrets (two during a rotation; never shown in a repr);
    ``allow_private`` lets the URL resolve to loopback or private addresses (tests, internal subscribers; never
    the metadata services); ``timeouts``, ``breaker`` and ``max_concurrent`` (the bulkhead) isolate the endpoint
    from the others. ``event_types`` filters what it receives (empty: everything).
    """

    id: str
    url: str
    secrets: tuple[str, ...] = field(repr=False)
    allow_private: bool = False
    timeouts: Timeouts = DELIVERY_TIMEOUTS
    breaker: BreakerPolicy | None = DEFAULT_ENDPOINT_BREAKER
    max_concurrent: int | None = 10
    event_types: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.id or not self.id.isprintable():
            raise ConfigurationError(f"Endpoint.id must be a printable name, got {self.id!r}")
        if isinstance(self.secrets, str):
            object.__setattr__(self, "secrets", (self.secrets,))
        StandardWebhooks(self.secrets)  # raises ConfigurationError for a malformed secret, naming no value

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribes to ``event_type``."""
        return not self.event_types or event_type in self.event_types


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that sends each request to the address the SSRF guard checked, resolving only once.

    The request's URL host is replaced by the checked IP address; the ``Host`` header and the TLS server name keep
    the original name. An unsafe destination raises :class:`~integration_kit.webhooks.errors.UnsafeDestination`
    before any connection is made.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        inner: httpx.BaseTransport | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.inner = inner if inner is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        destination = resolve_destination(str(request.url), allow_private=self.allow_private, resolver=self.resolver)
        request.url = destination.url
        request.extensions = {**request.extensions, "sni_hostname": destination.host}
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class WebhookSender:
    """Sends webhooks to ``endpoints`` through ``store``, on ``schedule`` (Svix's by default).

    ``workers`` attempts run in parallel (each endpoint's bulkhead bounds its own share); a claimed delivery is
    leased for ``lease`` seconds. ``clock`` gives epoch seconds (the wall clock by default; the simulator and tests
    pass a :class:`~integration_kit.clock.ManualClock`); ``resolver`` replaces DNS and ``transport`` the network
    (both for tests); ``rng`` seeds the schedule's jitter; events go to ``hooks``.
    """

    def __init__(
        self,
        store: DeliveryStore,
        endpoints: Iterable[Endpoint],
        *,
        schedule: RetrySchedule | None = None,
        workers: int = 4,
        lease: float = 120.0,
        clock: Clock | None = None,
        resolver: Resolver | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
        hooks: Iterable[Hook] = (),
    ) -> None:
        self.store = store
        self.schedule = schedule if schedule is not None else RetrySchedule()
        self.workers = workers
        self.lease = lease
        self.clock: Clock = clock if clock is not None else WallClock()
        self.rng = rng if rng is not None else random.Random()
        self.hooks = list(hooks)
        self.endpoints: dict[str, Endpoint] = {}
        self._clients: dict[str, ResilientClient] = {}
        self._signers: dict[str, StandardWebhooks] = {}
        self._resolver = resolver
        self._transport = transport
        self._lock = threading.Lock()
        self._users: Counter[ResilientClient] = Counter()  # attempts under way on each client
        self._retired: set[ResilientClient] = set()  # replaced while in use: closed when its last attempt ends
        #: How attempts ended: delivered, retry, failed, disabled, and refused (by the endpoint's breaker or bulkhead).
        self.stats: Counter[str] = Counter()
        for endpoint in endpoints:
            self.add_endpoint(endpoint)

    def add_endpoint(self, endpoint: Endpoint) -> None:
        """Register (or replace, e.g. to rotate its secrets) an endpoint."""
        config = ClientConfig(
            name=f"webhook-{endpoint.id}".replace(" ", "-"),
            base_url=endpoint.url,
            timeouts=endpoint.timeouts,
            deadline=None,
            retry=RetryPolicy.disabled(),
            breaker=endpoint.breaker,
            budget=None,
            limits=Limits(max_concurrent=endpoint.max_concurrent),
            max_response_bytes=MAX_ANSWER_BYTES,
            allow_insecure_http=True,
            user_agent="integration_kit-webhooks",
        )
        transport = GuardedTransport(
            allow_private=endpoint.allow_private, resolver=self._resolver, inner=self._transport
        )
        client = ResilientClient(config, transport=transport, clock=self.clock, hooks=self.hooks, rng=self.rng)
        with self._lock:
            old = self._clients.get(endpoint.id)
            self.endpoints[endpoint.id] = endpoint
            self._clients[endpoint.id] = client
            self._signers[endpoint.id] = StandardWebhooks(endpoint.secrets, clock=self.clock)
            if old is not None and (self._transport is not None or self._users[old]):
                if self._transport is None:
                    self._retired.add(old)  # an attempt is under way on it: closed when the last one ends
                old = None
        if old is not None:
            old.close()

    def send(
        self,
        event_type: str,
        payload: Mapping[str, Any] | bytes,
        *,
        msg_id: str | None = None,
        endpoints: Sequence[str] | None = None,
    ) -> str:
        """Queue one message for every subscribed endpoint (or ``endpoints``); return its id.

        A mapping is wrapped as Standard Webhooks recommends (``{"type", "timestamp", "data"}``); bytes are sent as
        they are. Sending an id again is ignored: the first payload is the one delivered, on every attempt.
        """
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        if isinstance(payload, bytes):
            body = payload
        else:
            stamp = datetime.fromtimestamp(self.clock.now(), tz=UTC).isoformat().replace("+00:00", "Z")
            body = json.dumps({"type": event_type, "timestamp": stamp, "data": dict(payload)}).encode()
        targets = [e.id for e in self.endpoints.values() if e.wants(event_type)] if endpoints is None else endpoints
        unknown = [t for t in targets if t not in self.endpoints]
        if unknown:
            raise ConfigurationError(f"unknown webhook endpoints: {', '.join(map(repr, unknown))}")
        self.store.enqueue(msg_id, event_type, body, targets)
        return msg_id

    def deliver_due(self, limit: int = 100) -> int:
        """Make every due attempt (up to ``limit``) and record how each ended; return how many were made."""
        due = self.store.claim_due(lease=self.lease, limit=limit)
        if self.workers <= 1 or len(due) <= 1:
            for delivery in due:
                self._deliver(delivery)
        else:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="webhooks") as pool:
                list(pool.map(self._deliver, due))
        return len(due)

    def run(self, stop: threading.Event, *, poll: float = 0.05, batch: int = 100) -> None:
        """Deliver until ``stop`` is set, ``batch`` claims at a time, waiting ``poll`` seconds when nothing is due."""
        while not stop.is_set():
            try:
                busy = self.deliver_due(batch)
            except IntegrationError:
                logger.warning("webhook delivery store unavailable", exc_info=True)
                busy = 0
            if not busy:
                stop.wait(poll)

    def start(self, *, poll: float = 0.05, batch: int = 100) -> Callable[[], None]:
        """Run :meth:`run` in a daemon thread; return a function that stops it and waits for it."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), kwargs={"poll": poll, "batch": batch}, daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join()

        return halt

    def log(self, *, message_id: str | None = None, endpoint_id: str | None = None) -> list[AttemptLogEntry]:
        """The delivery log (every attempt's time, status, latency, outcome and error), oldest first."""
        return self.store.log(message_id=message_id, endpoint_id=endpoint_id)

    def close(self) -> None:
        """Close every endpoint's connections."""
        for client in [*self._clients.values(), *self._retired]:
            client.close()

    # -- one attempt ------------------------------------------------------------------------------------------

    def _deliver(self, due: DueDelivery) -> None:
        endpoint = self.endpoints.get(due.endpoint_id)
        now = self.clock.now()
        attempt = due.attempts + 1
        if endpoint is None or not self.store.endpoint(due.endpoint_id).enabled:
            reason = "unknown endpoint" if endpoint is None else "endpoint disabled"
            self._record(AttemptLogEntry(due.message_id, due.endpoint_id, attempt, now, None, 0.0, "disabled", reason))
            return
        with self._using(endpoint.id) as (client, signer):
            headers = signer.sign(due.payload, msg_id=due.message_id)
            headers["content-type"] = "application/json"
            try:
                response = client.request("POST", endpoint.url, content=due.payload, headers=headers)
            except CallRejected as exc:
                self._refused(due, exc, now)
                return
            except (AttemptError, GaveUp, UnsafeDestination) as exc:
                self._failed(endpoint, due, exc, now)
                return
        latency = self.clock.now() - now
        entry = AttemptLogEntry(
            due.message_id, endpoint.id, attempt, now, response.status_code, latency, "delivered", None
        )
        self._record(entry)
        self.store.set_failing(endpoint.id, None)

    @contextlib.contextmanager
    def _using(self, endpoint_id: str) -> Iterator[tuple[ResilientClient, StandardWebhooks]]:
        """The endpoint's client and signer, held for one attempt: a client replaced meanwhile (a secret rotation)
        is closed when its last attempt ends, never under it."""
        with self._lock:
            client = self._clients[endpoint_id]
            self._users[client] += 1
            signer = self._signers[endpoint_id]
        try:
            yield client, signer
        finally:
            with self._lock:
                self._users[client] -= 1
                done = not self._users[client] and client in self._retired
                if not self._users[client]:
                    del self._users[client]
                    self._retired.discard(client)
            if done:
                client.close()

    def _refused(self, due: DueDelivery, exc: CallRejected, now: float) -> None:
        """The endpoint's breaker or bulkhead refused the attempt: due again later, not counted as an attempt."""
        retry_at = exc.retry_at if isinstance(exc, CircuitOpenError) and exc.retry_at is not None else now + 1.0
        entry = AttemptLogEntry(
            due.message_id, due.endpoint_id, due.attempts, now, None, 0.0, "refused", type(exc).__name__
        )
        self._record(entry, next_attempt_at=max(retry_at, now + 0.001), counted=False)

    def _failed(self, endpoint: Endpoint, due: DueDelivery, exc: IntegrationError, now: float) -> None:
        attempt = due.attempts + 1
        latency = self.clock.now() - now
        status: int | None = getattr(exc, "status", None)
        error = f"{type(exc).__name__}: {exc.message}"
        if status == 410:
            self._disable(endpoint.id, "gone", None)
            self._record(AttemptLogEntry(due.message_id, endpoint.id, attempt, now, status, latency, "disabled", error))
            return
        failing_since = self.store.set_failing(endpoint.id, now)
        if failing_since is not None and now - failing_since >= self.schedule.disable_after:
            self._record(AttemptLogEntry(due.message_id, endpoint.id, attempt, now, status, latency, "disabled", error))
            self._disable(endpoint.id, "failing", failing_since)
            return
        retry_after = getattr(exc, "retry_after", None) or getattr(
            getattr(exc, "last_error", None), "retry_after", None
        )
        delay = self.schedule.next_delay(attempt, retry_after=retry_after, rng=self.rng)
        if delay is None:
            self._record(AttemptLogEntry(due.message_id, endpoint.id, attempt, now, status, latency, "failed", error))
            return
        self._record(
            AttemptLogEntry(due.message_id, endpoint.id, attempt, now, status, latency, "retry", error),
            next_attempt_at=now + delay,
        )
        reason = "retry_after" if retry_after is not None and delay >= retry_after else "schedule"
        self._emit(RetryScheduled(self.clock.now(), f"webhook-{endpoint.id}", 0, attempt, delay, reason))

    def _record(self, entry: AttemptLogEntry, *, next_attempt_at: float | None = None, counted: bool = True) -> None:
        self.store.record(entry, next_attempt_at=next_attempt_at, counted=counted)
        with self._lock:
            self.stats[entry.outcome] += 1

    def _disable(self, endpoint_id: str, reason: str, failing_since: float | None) -> None:
        if self.store.disable(endpoint_id, reason):
            logger.warning("webhook endpoint %s disabled (%s)", endpoint_id, reason)
            self._emit(
                WebhookEndpointDisabled(
                    self.clock.now(), f"webhook-{endpoint_id}", 0, endpoint_id, reason, failing_since
                )
            )

    def _emit(self, event: Event) -> None:
        emit(self.hooks, event, log=logger)

    def __repr__(self) -> str:
        return f"WebhookSender({self.store!r}, endpoints={sorted(self.endpoints)})"
