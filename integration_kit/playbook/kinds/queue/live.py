"""Queue scenarios live: a :class:`~integration_kit.queues.sim.QueueScenario` played against a real broker.

The simulator (:mod:`integration_kit.queues.sim`) predicts; this checks the prediction on RabbitMQ or JetStream,
through a :class:`~integration_kit.queues.proxy.FaultProxy`, in compressed time (``time_scale`` real seconds per
scenario second). The same parts as production: messages are written to a SQLite outbox in application
transactions, an :class:`~integration_kit.queues.relay.OutboxRelay` publishes them with confirms, a
:class:`~integration_kit.queues.consumer.Consumer` with a transactional
:class:`~integration_kit.queues.inbox.SQLiteInbox` applies them (each effect a row in a SQLite table: counted,
never guessed). The scenario's faults:

- ``broker_outage``: the proxy refuses and cuts every connection for the window (relay and consumer reconnect);
- ``poison_rate``: messages that are not JSON (dead-lettered at once);
- ``failure_rate``: a first attempt that fails (redelivered after the topology's delay);
- ``duplicate_rate``: a message written to the outbox twice with the same id (as a relay killed before marking);
- ``downstream_outage``: the handler's downstream fails for the window behind a breaker; with
  ``pause_on_open_breaker`` the consumer pauses, otherwise the failures use up attempts (dead letters);
- ``consumer_crash_at``: the consumer's connection is dropped with deliveries in flight, and a new one starts;
- ``processing_time``, ``slow_consumer`` and ``slow_processing_time``: each handler waits that long (scenario
  seconds, exponentially distributed) on its downstream call, outside the inbox's transaction
  (``SQLiteInbox(transaction="effect")``), so ``concurrency`` handlers wait at once;
- ``backlog``: messages written to the outbox in one transaction before the first arrival.

A run is at most ``max_messages`` messages (400 by default, so a scenario takes seconds, not minutes). A bigger
scenario is *thinned*: arrivals and backlog are cut by the same factor ``f`` and processing times stretched by
``1 / f``, which keeps the consumer's utilisation (arrival rate x processing time / concurrency), and so when a
backlog builds and how long it takes to drain, the scenario's; each latency has its own processing's stretch taken
off, so it is comparable with the simulator's.
``series`` samples, once a scenario second (at most 20 times a real second), ``depth`` (messages waiting on the
broker for a handler, a delayed retry included), ``outbox`` (rows not sent yet), ``in_flight`` (handlers running)
and ``lag`` (the age of the oldest message waiting for a handler; unlike the simulator's, it counts messages still
in the outbox).

The result is a :class:`~integration_kit.queues.sim.QueueResult`, judged like a simulated one: ``lost`` and
``applied_twice`` must be 0. Given a :class:`~integration_kit.playbook.verdict.bench.BenchMonitor` (``bench=``), the
producer reports how late each arrival was written against its plan, so the verdict can tell a bench that fell
behind from the integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from integration_kit.engine.call import CallEngine
from integration_kit.events import Event, Recorder
from integration_kit.playbook.verdict.bench import BenchMonitor
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.config import BreakerPolicy, RetryPolicy
from integration_kit.queues.broker import Broker, Topology
from integration_kit.queues.consumer import Consumer
from integration_kit.queues.errors import BrokerUnavailable, PoisonMessage, QueueError
from integration_kit.queues.events import (
    DuplicateSuppressed,
    MessageAcked,
    MessageDeadLettered,
    MessageRequeued,
    MessageRetried,
)
from integration_kit.queues.inbox import Handler, SQLiteInbox
from integration_kit.queues.jetstream import DEFAULT_NATS_URL, JetStreamBroker
from integration_kit.queues.message import Message
from integration_kit.queues.outbox import SQLiteOutbox
from integration_kit.queues.proxy import FaultProxy
from integration_kit.queues.publisher import Publisher
from integration_kit.queues.rabbitmq import RabbitMQBroker, amqp_url
from integration_kit.queues.relay import OutboxRelay
from integration_kit.queues.sim import QueueResult, QueueScenario, QueueSettings

__all__ = ["Thinned", "play_live", "play_on_broker", "thin"]

logger = logging.getLogger("integration_kit.playbook")

#: The relay's and the consumer's waits in a compressed run (seconds): short, so outages end visibly.
_FAST = RetryPolicy(max_attempts=1_000_000, base_delay=0.05, max_delay=0.5)


async def play_live(
    scenario: QueueScenario,
    settings: QueueSettings,
    *,
    proxy: FaultProxy,
    connect: Callable[[], Broker],
    admin: Broker,
    folder: Path,
    time_scale: float = 0.05,
    max_messages: int = 400,
    drain: float = 30.0,
    seed: int = 0,
    bench: BenchMonitor | None = None,
) -> QueueResult:
    """Play ``scenario`` live and return what happened (arrivals' lateness reported to ``bench``, if given).

    ``connect()`` builds a broker adapter whose URL points at ``proxy`` (its topology declared by the caller, with
    the retry delays and ack wait already scaled); ``admin`` is a direct adapter (not through the proxy) that reads
    the dead letters at the end; ``folder`` holds the SQLite outbox and effects databases.
    ``scenario.backlog`` messages wait at the start and ``scenario.rate * scenario.duration`` arrive evenly over
    ``duration * time_scale`` seconds, thinned to ``max_messages`` in all (:func:`thin`); then the run waits up to
    ``drain`` seconds for every good message's effect. Raises ``ValueError`` for a ``time_scale`` or
    ``max_messages`` that is not positive.
    """
    if not time_scale > 0 or max_messages < 1:
        raise ValueError(f"play_live needs time_scale > 0 and max_messages >= 1, got {time_scale!r}, {max_messages!r}")
    plan = thin(scenario, max_messages)
    run = _LiveRun(plan.scenario, settings, proxy, connect, folder, time_scale, random.Random(seed), plan.factor)
    run.bench = bench
    await run.play(plan.arrivals, plan.backlog, drain)
    logger.info("live %s: reading the dead letters", scenario.name)
    result = run.result_with(await admin.dead_letters(limit=10 * (plan.arrivals + plan.backlog)))
    result.thinning = plan.factor
    return result


@dataclass(frozen=True, slots=True)
class Thinned:
    """A scenario cut to a live run's size: ``arrivals`` and ``backlog`` messages, ``factor`` of the scenario's,
    with the processing times of ``scenario`` stretched by ``1 / factor``."""

    scenario: QueueScenario
    arrivals: int
    backlog: int
    factor: float


def thin(scenario: QueueScenario, max_messages: int) -> Thinned:
    """Cut ``scenario`` to at most ``max_messages`` messages (arrivals and backlog alike), stretching its processing
    times so the consumer's utilisation stays the scenario's; a scenario that fits is played whole (factor 1)."""
    arrivals = scenario.rate * scenario.duration
    factor = min(1.0, max_messages / (arrivals + scenario.backlog))
    if factor == 1.0:
        return Thinned(scenario, max(1, round(arrivals)), scenario.backlog, 1.0)
    stretched = replace(
        scenario,
        processing_time=scenario.processing_time / factor,
        slow_processing_time=scenario.slow_processing_time / factor,
    )
    return Thinned(stretched, max(1, round(arrivals * factor)), round(scenario.backlog * factor), factor)


def play_on_broker(
    kind: Literal["rabbitmq", "jetstream"],
    topology: Topology,
    scenario: QueueScenario,
    settings: QueueSettings,
    *,
    folder: Path,
    url: str | None = None,
    time_scale: float = 0.05,
    seed: int = 0,
    max_messages: int = 400,
    bench: BenchMonitor | None = None,
) -> QueueResult:
    """Play ``scenario`` live on a broker (blocking): a uniquely named copy of ``topology`` is declared, played
    through a fresh :class:`~integration_kit.queues.proxy.FaultProxy` with :func:`play_live`, and deleted.

    ``kind`` picks the adapter; ``url`` defaults to ``INTEGRATION_KIT_AMQP_URL`` (else
    ``amqp://guest:guest@127.0.0.1:5672/``) for RabbitMQ and ``INTEGRATION_KIT_NATS_URL`` (else
    ``nats://127.0.0.1:4222``) for JetStream. The retry delays, the JetStream ack wait and the breaker wait are
    scenario seconds, compressed by ``time_scale`` (real seconds per scenario second) like the scenario; at most
    ``max_messages`` messages are played (:func:`thin`). Raises
    :class:`~integration_kit.queues.errors.BrokerUnavailable` when the broker cannot be reached.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{topology.name.replace('.', '_').replace('-', '_')}_live_{_unique()}"
    scaled = replace(
        topology,
        name=name,
        dead_letter="",  # derived from the new name
        retry_delays=tuple(d * time_scale for d in topology.retry_delays),
    )
    broker_url = url or default_url(kind)
    ack_wait = max(1.0, settings.ack_wait * time_scale)

    def make(at: str, connect_timeout: float = 5.0) -> Broker:
        if kind == "rabbitmq":
            return RabbitMQBroker(scaled, at, connect_timeout=connect_timeout)
        return JetStreamBroker(scaled, at, ack_wait=ack_wait, connect_timeout=connect_timeout)

    async def body() -> QueueResult:
        admin = make(broker_url)
        try:
            await admin.declare()
            parts = urlsplit(broker_url)
            with FaultProxy(parts.hostname or "127.0.0.1", parts.port or (5672 if kind == "rabbitmq" else 4222)) as p:
                auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
                via = urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{p.port}"))
                return await play_live(
                    scenario,
                    settings,
                    proxy=p,
                    connect=lambda: make(via, connect_timeout=1.0),
                    admin=admin,
                    folder=folder,
                    time_scale=time_scale,
                    max_messages=max_messages,
                    seed=seed,
                    bench=bench,
                )
        finally:
            try:
                await admin.delete()
            except QueueError as exc:  # the broker went away: say what is left behind
                logger.warning("live %s: could not delete the topology %s: %s", scenario.name, name, exc)
            finally:
                await admin.close()

    return asyncio.run(body())


def default_url(kind: Literal["rabbitmq", "jetstream"]) -> str:
    """The broker URL a live run uses: ``INTEGRATION_KIT_AMQP_URL`` (else ``amqp://guest:guest@127.0.0.1:5672/``) for
    RabbitMQ, ``INTEGRATION_KIT_NATS_URL`` (else ``nats://127.0.0.1:4222``) for JetStream. It may hold a password:
    never print it."""
    if kind == "rabbitmq":
        return amqp_url()
    return os.environ.get("INTEGRATION_KIT_NATS_URL") or DEFAULT_NATS_URL


def reachable(kind: Literal["rabbitmq", "jetstream"], *, timeout: float = 2.0) -> None:
    """Open and close a TCP connection to the broker of :func:`default_url` within ``timeout`` seconds.

    Raises :class:`~integration_kit.errors.BrokerUnavailable` naming the host and port (never the URL's password).
    """
    parts = urlsplit(default_url(kind))
    host, port = parts.hostname or "127.0.0.1", parts.port or (5672 if kind == "rabbitmq" else 4222)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise BrokerUnavailable(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None


def _unique() -> str:
    """A suffix no other run uses (8 hex digits)."""
    return uuid.uuid4().hex[:8]


class _LiveRun:
    def __init__(
        self,
        scenario: QueueScenario,
        settings: QueueSettings,
        proxy: FaultProxy,
        connect: Callable[[], Broker],
        folder: Path,
        scale: float,
        rng: random.Random,
        thinned: float,
    ) -> None:
        self.s, self.settings, self.proxy, self.connect, self.scale, self.rng = (
            scenario,
            settings,
            proxy,
            connect,
            scale,
            rng,
        )
        self.outbox = SQLiteOutbox(folder / "outbox.db")
        self.monitor = SQLiteOutbox(folder / "outbox.db")  # its own connection: the relay's runs in a thread
        self.effects = folder / "effects.db"
        self.recorder = Recorder()
        self.breaker = CircuitBreaker(
            BreakerPolicy(
                failure_threshold=settings.breaker_failures,
                failure_rate_threshold=None,
                wait_in_open=settings.breaker_wait * scale,
                half_open_max_calls=1,
            ),
            name="downstream",
        )
        self.result = QueueResult(scenario.name)
        self.good: set[str] = set()
        self.created: dict[str, float] = {}  # scenario second each message was written
        self.waiting: set[str] = set()  # written, not in a handler, not applied or dead-lettered
        self.in_flight = 0  # handlers running
        self.thinned = thinned  # the thinning factor: processing times are stretched by 1 / thinned
        self.start = 0.0
        self.consumers: list[Consumer] = []
        self.bench: BenchMonitor | None = None  # told how late each arrival is written

    def now(self) -> float:
        """Scenario seconds since the start."""
        return (time.monotonic() - self.start) / self.scale

    def _in(self, window: tuple[float, float] | None) -> bool:
        return window is not None and window[0] <= self.now() < window[1]

    def _settled_hook(self, event: Event) -> None:
        """Keep :attr:`waiting` (a hook on the consumers): a settled message leaves it, a retried one is back."""
        if isinstance(event, (MessageAcked, DuplicateSuppressed, MessageDeadLettered)):
            self.waiting.discard(event.message_id)
        elif isinstance(event, (MessageRetried, MessageRequeued)):
            self.waiting.add(event.message_id)

    async def _sample(self) -> None:
        """Once a scenario second: depth, outbox, in flight and lag into the result's series."""
        while True:
            now = self.now()
            outbox = self.monitor.pending()
            in_flight = self.in_flight
            self.result.series.append(
                {
                    "t": now,
                    "depth": float(max(0, len(self.waiting) - outbox)),
                    "outbox": float(outbox),
                    "in_flight": float(in_flight),
                    "lag": now - min((self.created[m] for m in self.waiting), default=now),
                    "paused": float(any(c.paused for c in self.consumers[-1:])),
                }
            )
            await self._sleep_until(max(int(now) + 1, now + 0.05 / self.scale))  # at most 20 samples a real second

    async def play(self, messages: int, backlog: int, drain: float) -> None:
        db = sqlite3.connect(self.effects)
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS effects (message_id TEXT NOT NULL, latency REAL NOT NULL)")
        db.close()
        self.start = time.monotonic()
        relay_broker = self.connect()
        engine = CallEngine(name="live-relay", retry=RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.5))
        relay = OutboxRelay(
            self.outbox, Publisher(relay_broker, engine=engine, confirm_timeout=2.0), poll_interval=0.05, backoff=_FAST
        )
        tasks = [
            asyncio.create_task(relay.run()),
            asyncio.create_task(self._produce(messages, backlog)),
            asyncio.create_task(self._sample()),
        ]
        if self.s.broker_outage is not None:
            tasks.append(asyncio.create_task(self._outage(*self.s.broker_outage)))
        consumer, consumer_broker, consuming = self._consume()
        if self.s.consumer_crash_at is not None:
            await self._sleep_until(self.s.consumer_crash_at)
            logger.info("live %s: the consumer crashes", self.s.name)
            await consumer_broker.close()  # a crash: in-flight deliveries are never acknowledged
            consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consuming
            await consumer_broker.close()  # in case the cancelled loop reconnected before it stopped
            consumer, consumer_broker, consuming = self._consume()
            logger.info("live %s: a new consumer started", self.s.name)
        await self._sleep_until(self.s.duration)
        logger.info("live %s: arrivals over, draining", self.s.name)
        deadline = time.monotonic() + drain
        while (self.monitor.pending() or self._settled() < len(self.good)) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # a straggling duplicate would be applied by now
        logger.info("live %s: stopping", self.s.name)
        consumer.stop()
        relay.stop()
        await consuming
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for broker in (relay_broker, consumer_broker):
            await broker.close()
        self.outbox.close()
        self.monitor.close()

    def _consume(self) -> tuple[Consumer, Broker, asyncio.Task[object]]:
        broker = self.connect()
        inbox = SQLiteInbox(self.effects, consumer="live", transaction="effect")
        consumer = Consumer(
            broker,
            self._handler(inbox),
            inbox=inbox,
            concurrency=self.settings.concurrency,
            breaker=self.breaker if self.settings.pause_on_open_breaker else None,
            fetch_timeout=0.2,
            hooks=[self.recorder, self._settled_hook],
        )
        self.consumers.append(consumer)
        return consumer, broker, asyncio.create_task(consumer.run())

    def _handler(self, inbox: SQLiteInbox) -> Handler:
        async def handle(message: Message) -> None:
            self.waiting.discard(message.message_id)
            try:
                payload = json.loads(message.body)
            except ValueError as exc:
                raise PoisonMessage("not an order event") from exc
            if message.attempt == 1 and payload["fails"]:
                raise ConnectionError("the first attempt failed")
            permit = self.breaker.acquire()  # CircuitOpenError while the downstream's breaker is open
            s = self.s
            mean = s.slow_processing_time if self._in(s.slow_consumer) else s.processing_time
            self.in_flight += 1
            try:
                processing = self.rng.expovariate(1 / mean)
                await asyncio.sleep(processing * self.scale)  # the downstream call
            finally:
                self.in_flight -= 1
            if self._in(s.downstream_outage):
                permit.record_failure(0.0)
                raise ConnectionError("downstream unavailable")
            permit.record_success(0.0)
            async with inbox.effect() as db:
                db.execute(
                    "INSERT INTO effects (message_id, latency) VALUES (?, ?)",
                    (message.message_id, self.now() - payload["t"] - processing * (1 - self.thinned)),
                )

        return handle

    async def _produce(self, messages: int, backlog: int) -> None:
        app = sqlite3.connect(self.outbox.path, isolation_level=None)
        try:
            app.execute("BEGIN")  # the backlog: written before the first arrival, in one transaction
            for n in range(backlog):
                self._write(app, n)
            app.execute("COMMIT")
            for n in range(messages):
                at = n * self.s.duration / messages
                await self._sleep_until(at)
                if self.bench is not None:
                    self.bench.scheduled()
                    self.bench.late(self.now() - at)
                app.execute("BEGIN")
                self._write(app, backlog + n)
                app.execute("COMMIT")
        finally:
            app.close()

    def _write(self, app: sqlite3.Connection, n: int) -> None:
        """Write message ``n`` to the outbox in ``app``'s open transaction (twice, as a duplicate, at its rate)."""
        now = self.now()
        poison = self.rng.random() < self.s.poison_rate
        fails = self.rng.random() < self.s.failure_rate
        body = b"\xff not json" if poison else json.dumps({"n": n, "t": now, "fails": fails}).encode()
        message = Message(body, key=f"k{n % 8}")
        copies = 2 if self.rng.random() < self.s.duplicate_rate else 1
        for _ in range(copies):  # the same id twice: as a relay killed between publish and mark
            self.outbox.add(app, message)
        self.created[message.message_id] = now
        self.waiting.add(message.message_id)
        self.result.messages += 1
        if poison:
            self.result.poison += 1
        else:
            self.good.add(message.message_id)

    async def _outage(self, start: float, end: float) -> None:
        await self._sleep_until(start)
        self.proxy.refuse()
        await self._sleep_until(end)
        self.proxy.heal()

    async def _sleep_until(self, at: float) -> None:
        await asyncio.sleep(max(0.0, (at - self.now()) * self.scale))

    def _settled(self) -> int:
        """Good messages applied or dead-lettered so far."""
        with sqlite3.connect(self.effects, timeout=30) as db:
            applied = int(db.execute("SELECT COUNT(DISTINCT message_id) FROM effects").fetchone()[0])
        dead = {e.message_id for e in self.recorder.of(MessageDeadLettered)}  # type: ignore[attr-defined]
        return applied + len(dead & self.good)

    def result_with(self, letters: list[Message]) -> QueueResult:
        """The run's result, given the dead letters."""
        r = self.result
        with sqlite3.connect(self.effects, timeout=30) as db:
            rows = db.execute("SELECT message_id, COUNT(*), MIN(latency) FROM effects GROUP BY message_id").fetchall()
        r.applied = sum(1 for mid, _, _ in rows if mid in self.good)
        r.applied_twice = sum(1 for _, count, _ in rows if count > 1)
        r.latencies = [latency for _, _, latency in rows]
        dead = {m.message_id for m in letters}
        r.dead_good = len(dead & self.good)
        r.dead_poison = len(dead - self.good)
        r.lost = len(self.good - {mid for mid, _, _ in rows} - dead)  # neither applied nor dead-lettered (as sim's)
        r.duplicates_suppressed = sum(c.stats.duplicates for c in self.consumers)
        r.pauses = sum(c.stats.pauses for c in self.consumers)
        r.redeliveries = Counter(e.attempt + 1 for e in self.recorder.of(MessageRetried))  # type: ignore[attr-defined]
        return r
