"""Webhook scenarios in virtual time, run through the real receiving and sending code.

``webhook-in``: a simulated provider signs deliveries with the spec's scheme (switching to the next secret at
``rotate_at``), adds duplicates, stale replays and forgeries; each delivery goes through the receiver's two steps,
:meth:`~integration_kit.server.signatures.WebhookScheme.verify` and
:meth:`~integration_kit.server.inbox.SQLiteInbox.put` (an in-memory SQLite inbox), and a
:class:`~integration_kit.server.webhook_processor.WebhookProcessor` runs a simulated handler behind it on its own
virtual clock (a worker that catches up between arrivals). Dead letters are replayed once the scenario ends, as
an operator would.

``webhook-out``: a :class:`~integration_kit.webhooks.sender.WebhookSender` (in-memory store, the spec's schedule,
breaker, bulkhead, SSRF guard) delivers to a simulated endpoint through an ``httpx.MockTransport`` that plays the
scenario (down windows, latency, flapping, 410); the loop jumps from one due time to the next, so a day of retry
schedule takes about a second.

Both return a :class:`WebhookRun`: counters, the per-event frame for the charts, and the objectives' verdict.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import httpx

from integration_kit.clock import Clock, ManualClock
from integration_kit.playbook.kinds.webhook.judge import checks_of
from integration_kit.playbook.kinds.webhook.spec import SenderSettings, WebhookScenario, WebhookSpec
from integration_kit.playbook.verdict.bench import BenchHealth
from integration_kit.policies.config import RetryPolicy, Timeouts
from integration_kit.server.inbox import Inbox, InboxEvent, InboxState, SQLiteInbox
from integration_kit.server.signatures import (
    GitHubSignature,
    HMACSignature,
    StandardWebhooks,
    StripeSignature,
    WebhookScheme,
)
from integration_kit.server.webhook_processor import WebhookProcessor
from integration_kit.webhooks.delivery_store import SQLiteDeliveryStore
from integration_kit.webhooks.errors import PayloadTooLarge, WebhookVerificationError
from integration_kit.webhooks.sender import DEFAULT_ENDPOINT_BREAKER, Endpoint, WebhookSender

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "START",
    "PlayedEndpoint",
    "WebhookRun",
    "delivery_counts",
    "receive_plan",
    "receive_result",
    "send_result",
    "sender_endpoint",
    "simulate_webhooks",
]

#: Virtual epoch time at which every simulation starts (signatures carry real-looking timestamps).
START = 1_700_000_000.0


@dataclass
class WebhookRun:
    """One scenario's run: ``counts`` by outcome, per-event ``rows`` (for :meth:`frame`), the verdict, and for a
    live run how well the bench kept up (``bench``; ``None`` when simulated)."""

    integration: str
    kind: str
    scenario: str
    counts: dict[str, float]
    rows: list[dict[str, Any]] = field(default_factory=list)
    objectives: dict[str, bool] = field(default_factory=dict)
    bench: BenchHealth | None = None

    @property
    def ok(self) -> bool:
        """Whether every objective is met."""
        return all(self.objectives.values())

    def frame(self) -> pd.DataFrame:
        """One row per event: ids, times (seconds from the start), outcome, attempts, lag."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def as_dict(self) -> dict[str, Any]:
        """Counters, objectives and the verdict, for ``summary.json``, with the columns of the CLI's run table.

        ``calls``: events; ``success_rate``: events processed (in) or delivered (out) per event; ``rejected``:
        deliveries refused (in) or refused by the breaker (out); ``amplification``: deliveries (in) or attempts
        (out) per event; ``latency_p99``: processing lag (in) or time to deliver after recovery (out), seconds.
        """
        c = self.counts
        events = c.get("accepted", 0) if self.kind == "webhook-in" else c.get("events", 0)
        done = c.get("processed", 0) if self.kind == "webhook-in" else c.get("delivered", 0)
        load = c.get("deliveries", 0) if self.kind == "webhook-in" else c.get("attempts", 0)
        refused = sum(v for k, v in c.items() if k.startswith("rejected_")) if self.kind == "webhook-in" else 0
        table = {
            "calls": int(events),
            "success_rate": done / events if events else 1.0,
            "rejected": int(refused or c.get("refused_by_breaker", 0)),
            "amplification": load / events if events else 0.0,
            "latency_p99": c.get("lag_p99", c.get("time_to_deliver_after_recovery_p99", 0.0)),
            "transitions": [],
        }
        bench = {} if self.bench is None else {"bench": self.bench.as_dict()}
        return {"kind": self.kind, **table, **self.counts, "objectives": self.objectives, "ok": self.ok, **bench}


def simulate_webhooks(spec: WebhookSpec, scenario: WebhookScenario | str, *, seed: int = 0) -> WebhookRun:
    """Play ``scenario`` (a name or a scenario) of ``spec`` in virtual time; deterministic for a seed."""
    if isinstance(scenario, str):
        scenario = spec.scenario(scenario)
    quiet = logging.getLogger("integration_kit.webhooks")
    was_disabled, quiet.disabled = quiet.disabled, True  # dead letters and disabled endpoints are counted, not logged
    try:
        if spec.kind == "webhook-in":
            return _receive(spec, scenario, random.Random(seed))
        return _send(spec, scenario, random.Random(seed))
    finally:
        quiet.disabled = was_disabled


def _arrivals(scenario: WebhookScenario) -> list[float]:
    """Arrival times (seconds from the start): ``rate`` per second, ``burst_factor`` faster in the middle fifth."""
    times, t = [], 0.0
    for i in range(int(scenario.events)):
        times.append(t)
        burst = 0.4 * scenario.events <= i < 0.6 * scenario.events
        t += 1.0 / (scenario.rate * (scenario.burst_factor if burst else 1.0))
    return times


def _secret(rng: random.Random, scheme: str) -> str:
    raw = bytes(rng.getrandbits(8) for _ in range(32))
    return "whsec_" + base64.b64encode(raw).decode() if scheme in ("standard-webhooks", "stripe") else raw.hex()


def _scheme(name: str, secrets: list[str], clock: Clock, tolerance: float, limit: int) -> WebhookScheme:
    options: dict[str, Any] = {"clock": clock, "tolerance": tolerance, "max_body_bytes": limit}
    if name == "standard-webhooks":
        return StandardWebhooks(secrets, **options)
    if name == "stripe":
        return StripeSignature(secrets, **options)
    if name == "github":
        return GitHubSignature(secrets, **options)
    return HMACSignature(
        secrets, header="x-signature", id_header="x-event-id", timestamp_header="x-timestamp", **options
    )


# -- receiving ---------------------------------------------------------------------------------------------------------


def _receive(spec: WebhookSpec, sc: WebhookScenario, rng: random.Random) -> WebhookRun:  # noqa: C901, PLR0915
    settings, h = spec.receiver, spec.handler
    assert settings is not None  # a webhook-in spec always has one (validated)
    arrival_clock, work_clock = ManualClock(START), ManualClock(START)
    old, new, forger = (_secret(rng, settings.scheme) for _ in range(3))
    rotating = sc.rotate_at is not None
    receiver = _scheme(
        settings.scheme, [old, new] if rotating else [old], arrival_clock, settings.tolerance, settings.max_body_bytes
    )
    signers = {
        k: _scheme(settings.scheme, [s], arrival_clock, settings.tolerance, settings.max_body_bytes)
        for k, s in (("old", old), ("new", new), ("forger", forger))
    }
    inbox = SQLiteInbox(":memory:", clock=arrival_clock, dedup_window=settings.dedup_window)
    invocations: Counter[str] = Counter()
    done_at: dict[str, float] = {}

    def handler(event: InboxEvent) -> None:
        work_clock.advance(sc.handler_latency)
        t = work_clock.now() - START
        outage = sc.handler_outage is not None and sc.handler_outage[0] <= t < sc.handler_outage[1]
        if outage or rng.random() < sc.handler_failure_rate:
            raise RuntimeError("the handler's downstream failed")
        invocations[event.id] += 1
        done_at[event.id] = work_clock.now()

    processor = WebhookProcessor(
        inbox,
        handler,
        retry=RetryPolicy(max_attempts=h.max_attempts, base_delay=h.base_delay, max_delay=h.max_delay),
        deadline=h.deadline,
        lease=h.deadline * 2 + 1,
        clock=work_clock,
        rng=rng,
    )
    deliveries, rotate_time = receive_plan(sc, settings.tolerance, rng)
    counts = delivery_counts()
    received: dict[str, float] = {}

    def drain(until: float) -> None:
        while work_clock.now() < until:
            events = inbox.claim(lease=processor.lease, limit=1)
            if not events:
                return
            work_clock.set(max(work_clock.now(), events[0].received_at))
            processor.process(events[0])

    for arrival, kind, event_id, signed_at in deliveries:
        drain(START + arrival)
        arrival_clock.set(max(arrival_clock.now(), START + arrival))
        who = "forger" if kind == "forged" else "new" if rotate_time is not None and signed_at >= rotate_time else "old"
        body = f'{{"id":"{event_id}","type":"push","n":{rng.randrange(10**6)}}}'.encode()
        headers = signers[who].sign(body, msg_id=event_id, timestamp=int(START + signed_at))
        counts["deliveries"] += 1
        try:
            verified = receiver.verify(headers, body)
        except (WebhookVerificationError, PayloadTooLarge) as exc:
            counts[f"rejected_{kind}"] += 1
            counts[f"rejected:{type(exc).__name__}"] += 1
            continue
        if kind == "forged":
            counts["forged_accepted"] += 1
        if inbox.put(InboxEvent(verified.id, spec.name, arrival_clock.now(), body)):
            counts["accepted"] += 1
            received[verified.id] = arrival_clock.now()
        else:
            counts["duplicates_suppressed"] += 1
    drain(float("inf"))
    if sc.handler_outage is not None:
        work_clock.set(max(work_clock.now(), START + sc.handler_outage[1]))
    run = receive_result(spec, sc, inbox, processor, counts, received, done_at, invocations, START)
    inbox.close()
    return run


def receive_plan(
    sc: WebhookScenario, tolerance: float, rng: random.Random
) -> tuple[list[tuple[float, str, str, float]], float | None]:
    """The deliveries a provider makes in ``sc``: ``(arrival, kind, event id, signed at)`` sorted by arrival (seconds
    from the start; kind is first, duplicate, replay or forged), and when the provider switches secrets."""
    deliveries: list[tuple[float, str, str, float]] = []
    times = _arrivals(sc)
    for i, t in enumerate(times):
        event_id = f"evt_{i:06d}"
        deliveries.append((t, "first", event_id, t))
        if rng.random() < sc.duplicates:
            deliveries.append((t + rng.uniform(1, 60), "duplicate", event_id, t + rng.uniform(1, 60)))
        if rng.random() < sc.replays:
            deliveries.append((t + tolerance + rng.uniform(60, 600), "replay", event_id, t))
        if rng.random() < sc.forged:
            deliveries.append((t + rng.uniform(0, 5), "forged", f"forged_{i:06d}", t))
    deliveries.sort()
    rotate_time = times[int(len(times) * sc.rotate_at)] if sc.rotate_at is not None else None
    return deliveries, rotate_time


def delivery_counts() -> Counter[str]:
    """The receiving counters, every one present (zero or not)."""
    counts: Counter[str] = Counter()
    for key in (
        "deliveries",
        "accepted",
        "duplicates_suppressed",
        "forged_accepted",
        "rejected_first",
        "rejected_duplicate",
        "rejected_replay",
        "rejected_forged",
    ):
        counts[key] = 0
    return counts


def receive_result(
    spec: WebhookSpec,
    sc: WebhookScenario,
    inbox: Inbox,
    processor: WebhookProcessor,
    counts: Counter[str],
    received: dict[str, float],
    done_at: dict[str, float],
    invocations: Counter[str],
    origin: float,
) -> WebhookRun:
    """Replay the dead letters (as an operator would once the scenario is over), then count and judge the run."""
    state = inbox.counts()
    counts["dead_letters"] = state[InboxState.DEAD]
    counts["replayed"] = processor.replay() if state[InboxState.DEAD] else 0
    final = inbox.counts()
    counts["processed"] = final[InboxState.DONE]
    counts["processed_twice"] = sum(1 for n in invocations.values() if n > 1)
    counts["lost"] = counts["accepted"] - final[InboxState.DONE] - final[InboxState.DEAD]
    counts["dead_after_replay"] = final[InboxState.DEAD]
    counts["forged_rejected"] = counts["rejected_forged"]
    lags = sorted(done_at[i] - received[i] for i in received if i in done_at)
    figures = {"lag_p50": _quantile(lags, 0.5), "lag_p99": _quantile(lags, 0.99)}
    rows = [
        {
            "event": i,
            "received": received[i] - origin,
            "processed": done_at.get(i, float("nan")) - origin,
            "lag": done_at[i] - received[i] if i in done_at else float("nan"),
            "invocations": invocations.get(i, 0),
        }
        for i in sorted(received)
    ]
    objectives = {c.objective: c.passed for c in checks_of(spec, sc.name, {**counts, **figures})}
    return WebhookRun(spec.name, spec.kind, sc.name, {**counts, **figures}, rows, objectives)


# -- sending -----------------------------------------------------------------------------------------------------------


def _send(spec: WebhookSpec, sc: WebhookScenario, rng: random.Random) -> WebhookRun:
    s = spec.sender
    assert s is not None  # a webhook-out spec always has one (validated)
    clock = ManualClock(START)
    secret = _secret(rng, "standard-webhooks")
    played = PlayedEndpoint(sc, StandardWebhooks(secret, clock=clock), clock, START, rng)

    def endpoint(request: httpx.Request) -> httpx.Response:
        clock.advance(sc.latency)
        if sc.latency > s.timeout:
            raise httpx.ReadTimeout("the endpoint did not answer in time", request=request)
        status = played.answer(dict(request.headers), request.content)
        return httpx.Response(status, json={"ok": status == 200})

    store = SQLiteDeliveryStore(":memory:", clock=clock)
    sender = WebhookSender(
        store,
        [sender_endpoint(s, s.url, secret)],
        schedule=s.schedule(),
        workers=1,
        clock=clock,
        resolver=lambda host, port: ["93.184.216.34"],  # a public address: the SSRF guard runs as in production
        transport=httpx.MockTransport(endpoint),
        rng=rng,
    )
    arrivals = [START + t for t in _arrivals(sc)]
    created: dict[str, float] = {}
    index = 0
    while True:
        due = store.next_due()
        upcoming = arrivals[index] if index < len(arrivals) else None
        if upcoming is not None and (due is None or upcoming <= due):
            clock.set(max(clock.now(), upcoming))
            msg = sender.send("order.updated", {"order": index}, msg_id=f"msg_{index:06d}")
            created[msg] = clock.now()
            index += 1
        elif due is not None:
            clock.set(max(clock.now(), due))
        else:
            break
        sender.deliver_due()
    run = send_result(spec, sc, store, sender, created, played, START)
    sender.close()
    store.close()
    return run


def sender_endpoint(
    s: SenderSettings, url: str, secret: str, *, min_timeout: float = 0.0, allow_private: bool | None = None
) -> Endpoint:
    """The :class:`Endpoint` a spec's sender settings describe (timeouts floored at ``min_timeout`` seconds;
    ``allow_private`` overrides the spec's, for live runs against 127.0.0.1)."""
    timeout = max(s.timeout, min_timeout)
    return Endpoint(
        "subscriber",
        url,
        (secret,),
        allow_private=s.allow_private if allow_private is None else allow_private,
        timeouts=Timeouts(connect=min(3.05, timeout), read=timeout, write=timeout, pool=max(5.0, timeout)),
        breaker=replace(DEFAULT_ENDPOINT_BREAKER, failure_threshold=s.breaker_failures),
        max_concurrent=s.max_concurrent,
    )


class PlayedEndpoint:
    """A subscriber's endpoint playing a scenario: 410 from ``gone_at``, 503 while down or at random
    (``failure_rate``), else it verifies the signature and records the payload (the wire, as the subscriber saw it).
    Thread-safe; times are ``clock`` seconds from ``origin``."""

    def __init__(
        self, sc: WebhookScenario, verifier: StandardWebhooks, clock: Clock, origin: float, rng: random.Random
    ) -> None:
        self.sc, self.verifier, self.clock, self.origin, self.rng = sc, verifier, clock, origin, rng
        self.wire: defaultdict[str, set[bytes]] = defaultdict(set)
        self.delivered_at: dict[str, float] = {}
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        """The status to answer one delivery with."""
        t = self.clock.now() - self.origin
        msg_id = headers.get("webhook-id", "")
        with self._lock:
            self.attempts[msg_id] += 1
            if self.sc.gone_at is not None and t >= self.sc.gone_at:
                return 410
            if any(a <= t < b for a, b in self.sc.down) or self.rng.random() < self.sc.failure_rate:
                return 503
        try:
            self.verifier.verify(headers, body)
        except WebhookVerificationError:
            return 401
        with self._lock:
            self.wire[msg_id].add(body)
            self.delivered_at.setdefault(msg_id, self.clock.now())
        return 200


def send_result(
    spec: WebhookSpec,
    sc: WebhookScenario,
    store: SQLiteDeliveryStore,
    sender: WebhookSender,
    created: dict[str, float],
    played: PlayedEndpoint,
    origin: float,
) -> WebhookRun:
    """Count and judge a sending run from the store, the sender and what the endpoint received."""
    counts: Counter[str] = Counter()
    states = store.counts()
    counts["events"] = len(created)
    counts.update(states)
    log = store.log(limit=10**7)
    counts["attempts"] = len(log)
    counts["refused_by_breaker"] = sender.stats["refused"]
    counts["lost"] = len(created) - states["delivered"] - states["failed"] - states["disabled"] - states["pending"]
    counts["payloads_per_id_max"] = max((len(v) for v in played.wire.values()), default=0)
    counts["wire_matches_log"] = int(set(played.wire) == {e.message_id for e in log if e.outcome == "delivered"})
    recovery = origin + max((b for _, b in sc.down), default=0.0)
    delivered_at = played.delivered_at
    after = sorted(delivered_at[m] - recovery for m in delivered_at if created.get(m, recovery) < recovery)
    figures = {
        "time_to_deliver_after_recovery_p99": _quantile(after, 0.99),
        "time_to_deliver_after_recovery_max": max(after, default=0.0),
    }
    by_attempt = {e.message_id: e.attempt for e in log if e.outcome == "delivered"}
    rows = [
        {
            "event": m,
            "created": created[m] - origin,
            "delivered": delivered_at.get(m, float("nan")) - origin,
            "attempt": by_attempt.get(m, 0),
            "attempts_on_wire": played.attempts.get(m, 0),
            "state": (store.delivery(m, "subscriber") or {}).get("state", ""),
        }
        for m in sorted(created)
    ]
    objectives = {c.objective: c.passed for c in checks_of(spec, sc.name, {**counts, **figures})}
    return WebhookRun(spec.name, spec.kind, sc.name, {**counts, **figures}, rows, objectives)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])
