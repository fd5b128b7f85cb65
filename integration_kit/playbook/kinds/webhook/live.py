"""Webhook scenarios played live: real servers on 127.0.0.1, real sockets, real SQLite files, time compressed.

``webhook-in``: the :class:`~integration_kit.server.webhook_receiver.WebhookReceiver` runs under uvicorn with a
SQLite inbox in a temporary folder and a :class:`~integration_kit.server.webhook_processor.WebhookProcessor` thread
behind it; a sender plays the scenario's deliveries (the same plan as the simulation: duplicates, stale replays,
forgeries, the secret rotation) over HTTP and counts the answers.

``webhook-out``: a :class:`~integration_kit.webhooks.sender.WebhookSender` thread (SQLite store, the spec's
schedule) delivers to an endpoint served by uvicorn that plays the scenario (down windows, latency, flapping, 410).

Scenario time runs ``time_scale`` times faster than real time on a
:class:`~integration_kit.sim.upstream.ScaledClock` shared by both sides (signatures, tolerance, schedule, leases);
for sending, the scale is raised so that the whole scenario, outages and schedule included, takes about
``target_seconds`` of real time, and each attempt's timeout is floored at half a real second. Results are the same
:class:`~integration_kit.playbook.kinds.webhook.sim.WebhookRun` as the simulation's, so the objectives and charts apply.

The bench watches itself as the HTTP kind's does (:class:`~integration_kit.playbook.verdict.bench.BenchMonitor`):
how late each delivery (in) or event (out) started against its planned arrival, timer lag and CPU go into the run's
``bench``, which the verdict uses to call a scenario an invalid run rather than a failure. Webhook objectives are
counts and lags in seconds, so timers count as late past the lateness limit
(:func:`~integration_kit.playbook.verdict.bench.lateness_limit`), not HTTP's 50 ms.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from integration_kit.playbook.kinds.webhook.sim import (
    PlayedEndpoint,
    WebhookRun,
    _arrivals,
    _scheme,
    _secret,
    delivery_counts,
    receive_plan,
    receive_result,
    send_result,
    sender_endpoint,
)
from integration_kit.playbook.kinds.webhook.spec import WebhookScenario, WebhookSpec
from integration_kit.playbook.verdict.bench import BenchMonitor, lateness_limit
from integration_kit.policies.config import RetryPolicy
from integration_kit.server.inbox import InboxEvent, InboxState, SQLiteInbox
from integration_kit.server.signatures import StandardWebhooks, WebhookScheme
from integration_kit.server.webhook_processor import WebhookProcessor
from integration_kit.server.webhook_receiver import WebhookReceiver
from integration_kit.sim.upstream import ScaledClock, serve_app
from integration_kit.webhooks.delivery_store import SQLiteDeliveryStore
from integration_kit.webhooks.sender import WebhookSender

__all__ = ["live_webhooks"]

#: The longest a live scenario may wait for its backlog to drain (real seconds).
MAX_DRAIN = 120.0

#: How many deliveries the played partner may have in flight at once (webhook-in): it sends each at its planned
#: time whether or not the earlier ones were answered (an open loop, as GitHub or Stripe do), so a slow receiver
#: shows as lag in the integration's figures, never as a bench that fell behind.
SENDERS = 32


def live_webhooks(
    spec: WebhookSpec,
    scenario: WebhookScenario | str,
    *,
    seed: int = 0,
    time_scale: float = 10.0,
    target_seconds: float = 20.0,
) -> WebhookRun:
    """Play ``scenario`` of ``spec`` over real sockets on 127.0.0.1 (see the module docstring)."""
    if isinstance(scenario, str):
        scenario = spec.scenario(scenario)
    if spec.kind == "webhook-in":
        clock = ScaledClock(time_scale)
        with _monitor(clock) as monitor:
            run = _live_receive(spec, scenario, random.Random(seed), clock, monitor)
    else:
        arrivals = _arrivals(scenario)
        horizon = max([arrivals[-1] if arrivals else 0.0, scenario.gone_at or 0.0, *(b for _, b in scenario.down)])
        clock = ScaledClock(max(time_scale, (horizon + 3600.0) / target_seconds))
        with _monitor(clock) as monitor:
            run = _live_send(spec, scenario, random.Random(seed), clock, monitor)
    run.bench = monitor.health()
    return run


def _monitor(clock: ScaledClock) -> BenchMonitor:
    """The bench's monitor for a webhook scenario played on ``clock`` (see the module docstring)."""
    return BenchMonitor(clock, clock.time_scale, lag_limit=lateness_limit(clock.time_scale))


def _live_receive(
    spec: WebhookSpec, sc: WebhookScenario, rng: random.Random, clock: ScaledClock, monitor: BenchMonitor
) -> WebhookRun:
    settings, h = spec.receiver, spec.handler
    assert settings is not None  # a webhook-in spec always has one (validated)
    old, new, forger = (_secret(rng, settings.scheme) for _ in range(3))
    secrets = [old, new] if sc.rotate_at is not None else [old]
    limit = settings.max_body_bytes
    receiver_scheme = _scheme(settings.scheme, secrets, clock, settings.tolerance, limit)
    signers = {
        k: _scheme(settings.scheme, [v], clock, settings.tolerance, limit)
        for k, v in (("old", old), ("new", new), ("forger", forger))
    }
    deliveries, rotate_time = receive_plan(sc, settings.tolerance, rng)
    invocations: Counter[str] = Counter()
    done_at: dict[str, float] = {}
    lock = threading.Lock()
    origin = clock.now()
    handler_rng = random.Random(rng.random())

    def handler(event: InboxEvent) -> None:
        clock.sleep(sc.handler_latency)
        t = clock.now() - origin
        with lock:
            failed = handler_rng.random() < sc.handler_failure_rate
        if failed or (sc.handler_outage is not None and sc.handler_outage[0] <= t < sc.handler_outage[1]):
            raise RuntimeError("the handler's downstream failed")
        with lock:
            invocations[event.id] += 1
            done_at[event.id] = clock.now()

    counts = delivery_counts()
    received: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ik-webhooks-") as folder:
        inbox = SQLiteInbox(Path(folder) / "inbox.db", clock=clock, dedup_window=settings.dedup_window)
        receiver = WebhookReceiver(receiver_scheme, inbox, source=spec.name, clock=clock)
        retry = RetryPolicy(max_attempts=h.max_attempts, base_delay=h.base_delay, max_delay=h.max_delay)
        processor = WebhookProcessor(
            inbox, handler, retry=retry, deadline=h.deadline, lease=h.deadline * 2 + 1, clock=clock, rng=rng
        )
        halt = processor.start(poll=0.01)
        try:
            with serve_app(receiver, name="webhook-receiver") as url:
                origin = clock.now()
                _play(url, deliveries, signers, rotate_time, origin, clock, monitor, counts, received, lock)
                _drain(inbox)
            if sc.handler_outage is not None:
                clock.sleep(origin + sc.handler_outage[1] - clock.now())
        finally:
            halt()
        run = receive_result(spec, sc, inbox, processor, counts, received, done_at, invocations, origin)
        inbox.close()
    return run


def _play(
    url: str,
    deliveries: list[tuple[float, str, str, float]],
    signers: Mapping[str, WebhookScheme],
    rotate_time: float | None,
    origin: float,
    clock: ScaledClock,
    monitor: BenchMonitor,
    counts: Counter[str],
    received: dict[str, float],
    lock: threading.Lock,
) -> None:
    """The played partner: each delivery signed and sent at its planned time, ``SENDERS`` at most in flight."""
    with (
        httpx.Client(timeout=10, limits=httpx.Limits(max_connections=SENDERS)) as client,
        ThreadPoolExecutor(SENDERS, thread_name_prefix="webhook-partner") as partner,
    ):

        def deliver(body: bytes, headers: dict[str, str], kind: str, event_id: str) -> None:
            answer = client.post(url + "/", content=body, headers=headers)
            with lock:
                _count(answer, kind, event_id, counts, received, clock.now())

        sent: list[Future[None]] = []
        for arrival, kind, event_id, signed_at in deliveries:
            clock.sleep(origin + arrival - clock.now())
            monitor.offered(origin + arrival)
            who = (
                "forger"
                if kind == "forged"
                else "new"
                if rotate_time is not None and signed_at >= rotate_time
                else "old"
            )
            body = f'{{"id":"{event_id}","type":"push"}}'.encode()
            headers = signers[who].sign(body, msg_id=event_id, timestamp=int(origin + signed_at))
            with lock:
                counts["deliveries"] += 1
            sent.append(partner.submit(deliver, body, headers, kind, event_id))
        for delivery in sent:
            delivery.result()  # a delivery the partner could not make is an error of the bench: raise it


def _count(
    answer: httpx.Response, kind: str, event_id: str, counts: Counter[str], received: dict[str, float], now: float
) -> None:
    if answer.status_code != 200:
        counts[f"rejected_{kind}"] += 1
        counts[f"rejected:HTTP {answer.status_code}"] += 1
        return
    if kind == "forged":
        counts["forged_accepted"] += 1
    if answer.json().get("status") == "accepted":
        counts["accepted"] += 1
        received[event_id] = now
    else:
        counts["duplicates_suppressed"] += 1


def _drain(inbox: SQLiteInbox) -> None:
    """Wait (real time, bounded) until the processor has taken every pending event."""
    deadline = time.monotonic() + MAX_DRAIN
    while inbox.counts()[InboxState.PENDING] and time.monotonic() < deadline:
        time.sleep(0.02)  # watching real threads work: there is no clock to step


def _live_send(
    spec: WebhookSpec, sc: WebhookScenario, rng: random.Random, clock: ScaledClock, monitor: BenchMonitor
) -> WebhookRun:
    s = spec.sender
    assert s is not None  # a webhook-out spec always has one (validated)
    arrivals = _arrivals(sc)
    secret = _secret(rng, "standard-webhooks")
    origin = clock.now()
    played = PlayedEndpoint(sc, StandardWebhooks(secret, clock=clock), clock, origin, rng)

    async def endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await clock.asleep(sc.latency)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status = played.answer(headers, body)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    created: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ik-webhooks-") as folder, serve_app(endpoint, name="endpoint") as url:
        store = SQLiteDeliveryStore(Path(folder) / "outbox.db", clock=clock)
        # 127.0.0.1 through the endpoint's explicit allowance; timeouts at least half a real second
        target = sender_endpoint(s, url + "/hooks", secret, min_timeout=0.5 * clock.time_scale, allow_private=True)
        sender = WebhookSender(store, [target], schedule=s.schedule(), workers=4, clock=clock, rng=rng)
        halt = sender.start(poll=0.01)
        try:
            origin = played.origin = clock.now()
            for index, arrival in enumerate(arrivals):
                clock.sleep(origin + arrival - clock.now())
                monitor.offered(origin + arrival)
                created[sender.send("order.updated", {"order": index}, msg_id=f"msg_{index:06d}")] = clock.now()
            deadline = time.monotonic() + MAX_DRAIN
            while store.counts()["pending"] and time.monotonic() < deadline:
                time.sleep(0.02)  # watching real threads work: there is no clock to step
        finally:
            halt()
        run = send_result(spec, sc, store, sender, created, played, origin)
        sender.close()
        store.close()
    return run
