"""The consumer: manual acknowledgement after the handler, delayed retry, dead letters, inbox dedup, pause, shutdown.

One delivery's path::

    fetch (at most ``concurrency`` in flight, the broker's prefetch bounds the rest)
      -> inbox: processed before?  yes -> ack (a duplicate suppressed)
      -> handler(message)
           returned                        -> ack
           CircuitOpenError (its breaker)  -> requeue, no attempt used; the consumer pauses
           failure leaving the breaker open -> the same (it tripped the breaker, or was the failed probe)
           poison (PermanentError, decode) -> dead letter at once
           other error, attempts left      -> retry: redelivered after the topology's delay for this attempt
           other error, attempts used up   -> dead letter, with the reason and the attempt history in headers

**Pause.** With a ``breaker`` (the one guarding the handler's downstream), the consumer stops fetching while it
is open, leaving messages on the broker instead of burning their attempts into the dead-letter queue, and lets
one message through as the half-open probe; it resumes in full when the breaker closes.

**Slow handlers.** A broker with an ack deadline (:attr:`~integration_kit.queues.broker.Broker.ack_deadline`,
JetStream's ``ack_wait``) redelivers a delivery left unsettled that long, even while its handler still runs: a
second run starts beside the first, and each such redelivery burns an attempt. So while handlers are in flight, one
background task per consumer wakes every third of the deadline and sends
:meth:`~integration_kit.queues.broker.Broker.in_progress` for each delivery whose handler has been running at least
that long, which restarts the broker's timer. A failure to send is logged and counted (``lease_errors``); the
broker then redelivers as it would have anyway, and the inbox suppresses the copy if the first run's effect
happened. A handler that finishes without waiting (eager start) never needs it. RabbitMQ has no ack deadline.

**Shutdown.** :meth:`Consumer.stop` (and SIGTERM/SIGINT after :meth:`Consumer.install_signal_handlers`) stops
fetching, lets the handlers in flight finish for ``shutdown_grace`` seconds and acknowledges them, then cancels and
requeues the rest. Nothing is lost; what was requeued after its effect is suppressed by the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from integration_kit.clock import Clock, SystemClock
from integration_kit.errors import CircuitOpenError, PermanentError
from integration_kit.events import CircuitState, Hook, emit
from integration_kit.policies.breaker import CircuitBreaker
from integration_kit.policies.config import RetryPolicy
from integration_kit.policies.retry import backoff_delay
from integration_kit.queues._eager import start_eagerly
from integration_kit.queues.broker import Broker, Delivery
from integration_kit.queues.errors import QueueError
from integration_kit.queues.events import (
    ConsumerPaused,
    ConsumerResumed,
    DuplicateSuppressed,
    MessageAcked,
    MessageDeadLettered,
    MessageReceived,
    MessageRequeued,
    MessageRetried,
)
from integration_kit.queues.inbox import Handler, Inbox
from integration_kit.server.errors import IdempotencyKeyReused, RequestInFlight

__all__ = ["DEFAULT_POISON", "Consumer", "ConsumerStats"]

logger = logging.getLogger("integration_kit.queues")

#: Errors that no retry can fix: the message is dead-lettered at once.
DEFAULT_POISON: tuple[type[BaseException], ...] = (
    PermanentError,
    IdempotencyKeyReused,
    UnicodeDecodeError,
    json.JSONDecodeError,
)

#: Backoff while the broker is unreachable (reconnecting): 0.1 s doubling to 5 s, full jitter.
RECONNECT = RetryPolicy(max_attempts=1_000_000, base_delay=0.1, max_delay=5.0)


@dataclass(slots=True)
class ConsumerStats:
    """What a consumer did so far: counts of deliveries, and of lease extensions (``extended``: in-progress acks
    sent for slow handlers; ``lease_errors``: those that failed)."""

    handled: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    requeued: int = 0
    settle_errors: int = 0
    broker_errors: int = 0
    pauses: int = 0
    extended: int = 0
    lease_errors: int = 0


@dataclass(slots=True)
class _InFlight:
    """A delivery whose handler runs in a task: since when (event-loop seconds), and whether it is being settled."""

    delivery: Delivery
    since: float
    settling: bool = False


class Consumer:
    """Consumes one :class:`~integration_kit.queues.broker.Broker`'s work queue with ``handler``.

    ``handler`` is ``async (Message) -> None``; raising means the attempt failed. ``inbox`` deduplicates (see
    :mod:`~integration_kit.queues.inbox`; ``None``: no dedup). ``concurrency`` bounds handlers in flight (default
    8; keep the broker's prefetch at least this). ``breaker`` is the handler's downstream breaker, for pausing.
    ``poison`` lists the exception types dead-lettered at once (default :data:`DEFAULT_POISON`).
    ``fetch_timeout`` (seconds) is the longest a fetch waits, so :meth:`stop` takes effect within it.
    ``shutdown_grace`` (seconds, default 10) is how long :meth:`stop` lets handlers in flight finish.
    Handlers running longer than a third of the broker's ``ack_deadline`` get their lease extended every third of it
    (see the module's docstring); ``stats.extended`` counts those in-progress acks.

    ``hooks`` receive the consumer's events (:class:`~integration_kit.queues.events.MessageReceived`, ``MessageAcked``,
    ``DuplicateSuppressed``, ``MessageRetried``, ``MessageDeadLettered``, ``MessageRequeued``, ``ConsumerPaused``,
    ``ConsumerResumed``), with ``name`` as their integration (default: the topology's name); none are built
    without hooks.
    """

    def __init__(
        self,
        broker: Broker,
        handler: Handler,
        *,
        inbox: Inbox | None = None,
        concurrency: int = 8,
        breaker: CircuitBreaker | None = None,
        poison: Iterable[type[BaseException]] = DEFAULT_POISON,
        fetch_timeout: float = 1.0,
        shutdown_grace: float = 10.0,
        pause_poll: float = 0.05,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        name: str | None = None,
        hooks: Iterable[Hook] = (),
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"Consumer.concurrency must be >= 1, got {concurrency!r}")
        self.broker = broker
        self.handler = handler
        self.inbox = inbox
        self.concurrency = concurrency
        self.breaker = breaker
        self.poison = tuple(poison)
        self.fetch_timeout = fetch_timeout
        self.shutdown_grace = shutdown_grace
        self.pause_poll = pause_poll
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.name = name or broker.topology.name
        self.hooks: list[Hook] = list(hooks)
        self.stats = ConsumerStats()
        self.paused = False
        self._paused_at = 0.0
        self._stopping = asyncio.Event()
        self._in_flight: dict[asyncio.Task[None], _InFlight] = {}
        self._failures = 0
        self._delay: float | None = None
        self._min_batch = max(1, concurrency // 4)
        self._room = asyncio.Event()  # set whenever a handler finishes

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to stop fetching and shut down gracefully."""
        self._stopping.set()

    def install_signal_handlers(self, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
        """Make SIGTERM and SIGINT call :meth:`stop` (on the running event loop)."""
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)

    async def run(self, *, max_messages: int | None = None) -> ConsumerStats:
        """Consume until :meth:`stop` (or until ``max_messages`` deliveries were settled); return the stats."""
        self._stopping.clear()
        self._failures, self._delay = 0, None
        deadline = self.broker.ack_deadline
        if deadline is not None and not deadline > 0:
            raise ValueError(f"{self.broker!r}.ack_deadline must be positive seconds or None, got {deadline!r}")
        leases = None if deadline is None else asyncio.create_task(self._keep_leases(deadline))
        try:
            while not self._stopping.is_set():
                if max_messages is not None and self._settled() >= max_messages:
                    break
                room = await self._admit(max(0, self.concurrency - len(self._in_flight)))
                if room is None:
                    continue  # paused: _admit waited
                if max_messages is not None:
                    room = min(room, max_messages - self._settled() - len(self._in_flight))
                if room <= 0 or (self._in_flight and room < self._min_batch):
                    await self._wait_for_room()  # fetch in batches, not one message per finished handler
                    continue
                await self._fetch(room)
        finally:
            try:
                await self._drain()  # handlers finishing in the grace still get their leases extended
            finally:
                if leases is not None:
                    leases.cancel()
                    await asyncio.wait([leases])
        return self.stats

    async def _fetch(self, room: int) -> None:
        """Fetch up to ``room`` deliveries and start a handler for each; back off while the broker is down."""
        try:
            deliveries = await self.broker.fetch(room, timeout=self.fetch_timeout)
        except QueueError as exc:
            self._failures += 1
            self.stats.broker_errors += 1
            self._delay = backoff_delay(RECONNECT, self._failures, self.rng, self._delay)
            logger.warning("consumer %s: %s; trying again in %.2fs", self.broker.destination, exc, self._delay)
            await self._sleep(self._delay)
            return
        self._failures, self._delay = 0, None
        received = self.clock.now()
        if self.hooks:
            destination = self.broker.destination
            for delivery in deliveries:
                m = delivery.message
                emit(
                    self.hooks,
                    MessageReceived(received, self.name, 0, destination, m.message_id, m.attempt, delivery.redelivered),
                )
        if self._stopping.is_set():
            for delivery in deliveries:
                await self._settle(delivery, "requeue", received, reason="shutdown")
            return
        since = asyncio.get_running_loop().time()
        for delivery in deliveries:
            in_flight = _InFlight(delivery, since)
            task = start_eagerly(self._handle(in_flight, received))  # a handler that never waits needs no task
            if task is not None:
                self._in_flight[task] = in_flight
                task.add_done_callback(self._finished)

    def _settled(self) -> int:
        s = self.stats
        return s.handled + s.duplicates + s.retried + s.dead_lettered

    async def _admit(self, room: int) -> int | None:
        """How many deliveries the breaker lets the consumer fetch now; ``None`` after a pause (loop again)."""
        breaker = self.breaker
        if breaker is None:
            return room
        state = breaker.state
        if state is CircuitState.OPEN or state is CircuitState.FORCED_OPEN:
            if not self.paused:
                self.paused = True
                self.stats.pauses += 1
                self._paused_at = now = self.clock.now()
                logger.info("consumer %s: paused, breaker %r is %s", self.broker.destination, breaker.name, state.value)
                if self.hooks:
                    emit(self.hooks, ConsumerPaused(now, self.name, 0, self.broker.destination, breaker.name))
            await self._sleep(self.pause_poll)
            return None
        if state is CircuitState.HALF_OPEN:
            return 1 if not self._in_flight else 0  # one message as the probe
        if self.paused:
            self.paused = False
            logger.info("consumer %s: resumed, breaker %r closed", self.broker.destination, breaker.name)
            if self.hooks:
                now = self.clock.now()
                event = ConsumerResumed(now, self.name, 0, self.broker.destination, breaker.name, now - self._paused_at)
                emit(self.hooks, event)
        return room

    async def _wait_for_room(self) -> None:
        if self._in_flight:
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), self.fetch_timeout)
        else:
            await self._sleep(self.pause_poll)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._room.set()

    async def _keep_leases(self, deadline: float) -> None:
        """Every third of the broker's ack ``deadline`` (seconds), send an in-progress ack for each delivery whose
        handler has been running at least that long; runs until cancelled (at the end of :meth:`run`).

        The broker's timer runs in real time, so this reads the event loop's clock, not the consumer's ``clock``
        (which stamps events and may be a test's manual clock).
        """
        period = deadline / 3
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            due = loop.time() - period
            for in_flight in list(self._in_flight.values()):
                if not in_flight.settling and in_flight.since <= due:  # settling may begin during an earlier send
                    await self._extend(in_flight.delivery)

    async def _extend(self, delivery: Delivery) -> None:
        """Send one in-progress ack; a failure is logged and counted (the broker may then redeliver), never raised:
        the beats for the other deliveries go on."""
        destination = self.broker.destination
        try:
            await self.broker.in_progress(delivery)
        except QueueError as exc:
            self.stats.lease_errors += 1
            logger.warning("consumer %s: could not extend the lease of %r: %s", destination, delivery, exc)
            return
        except Exception:  # an adapter's defect: keep beating for the other deliveries, and say so loudly
            self.stats.lease_errors += 1
            logger.exception("consumer %s: extending the lease of %r failed", destination, delivery)
            return
        self.stats.extended += 1

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _drain(self) -> None:
        """Let handlers in flight finish for ``shutdown_grace`` seconds, then cancel (and requeue) the rest."""
        if self._in_flight:
            _, pending = await asyncio.wait(set(self._in_flight), timeout=self.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    # -- one delivery -------------------------------------------------------------------------------------------

    async def _handle(self, in_flight: _InFlight, received: float) -> None:
        delivery = in_flight.delivery
        message = delivery.message
        try:
            try:
                if self.inbox is not None:
                    ran = await self.inbox.process(message, self.handler)
                else:
                    await self.handler(message)
                    ran = True
            finally:
                in_flight.settling = True  # from here on the delivery is settled below: its lease needs no more
        except asyncio.CancelledError:
            await asyncio.shield(self._settle(delivery, "requeue", received, reason="shutdown"))
            raise
        except CircuitOpenError as exc:
            if self.breaker is not None and exc.breaker == self.breaker.name:  # the loop pauses on it: no attempt
                await self._settle(delivery, "requeue", received, reason="circuit_open")
            else:  # an open breaker the consumer does not watch (it would not pause): an ordinary failed attempt
                await self._failed(delivery, received, exc)
        except RequestInFlight as exc:
            reason = "in flight in another consumer"
            await self._settle(delivery, "retry", received, delay=exc.retry_after, reason=reason)
        except self.poison as exc:
            await self._settle(delivery, "dead", received, reason=f"poison: {_reason(exc)}")
        except Exception as exc:  # the handler's failure is this attempt's outcome
            await self._failed(delivery, received, exc)
        else:
            await self._settle(delivery, "ack", received, duplicate=not ran)

    async def _failed(self, delivery: Delivery, received: float, exc: Exception) -> None:
        """A failed attempt: redeliver after the topology's delay, or dead-letter once attempts are used up.

        A failure that leaves the watched breaker open (it tripped the breaker, or it was the failed half-open
        probe) is the downstream's, not the message's: the delivery is requeued without using an attempt, as one
        that met the open breaker. Otherwise a long outage would spend a probe message's attempts one probe at a
        time (JetStream redelivers the same message first) and dead-letter good messages despite the pause.
        """
        breaker = self.breaker
        if breaker is not None and breaker.state in (CircuitState.OPEN, CircuitState.FORCED_OPEN):
            await self._settle(delivery, "requeue", received, reason="circuit_open")
            return
        topology = self.broker.topology
        attempt = delivery.message.attempt
        if attempt >= topology.max_attempts:
            await self._settle(delivery, "dead", received, reason=f"attempts exhausted ({attempt}): {_reason(exc)}")
        else:
            await self._settle(delivery, "retry", received, delay=topology.delay_after(attempt), reason=_reason(exc))

    async def _settle(
        self,
        delivery: Delivery,
        how: _Settlement,
        received: float,
        *,
        delay: float = 0.0,
        reason: str = "",
        duplicate: bool = False,
    ) -> None:
        """Settle ``delivery`` one way (``received``: when it was fetched), count it and emit its event."""
        broker = self.broker
        try:
            if how == "ack":
                await broker.ack(delivery)
            elif how == "requeue":
                await broker.requeue(delivery)
            elif how == "retry":
                await broker.retry(delivery, delay=delay, reason=reason, now=self.clock.now())
            else:
                await broker.dead_letter(delivery, reason=reason, now=self.clock.now())
        except QueueError as exc:
            # The broker redelivers an unsettled message; the inbox suppresses it if its effect happened.
            self.stats.settle_errors += 1
            logger.warning("consumer %s: could not %s %r: %s", broker.destination, how, delivery, exc)
            return
        stats = self.stats
        if how == "ack":
            if duplicate:
                stats.duplicates += 1
            else:
                stats.handled += 1
        elif how == "requeue":
            stats.requeued += 1
        elif how == "retry":
            stats.retried += 1
        else:
            stats.dead_lettered += 1
        if self.hooks:
            emit(self.hooks, self._settled_event(delivery, how, received, delay, reason, duplicate))

    def _settled_event(
        self, delivery: Delivery, how: _Settlement, received: float, delay: float, reason: str, duplicate: bool
    ) -> MessageAcked | DuplicateSuppressed | MessageRequeued | MessageRetried | MessageDeadLettered:
        m = delivery.message
        now = self.clock.now()
        head = (now, self.name, 0, self.broker.destination, m.message_id, m.attempt)
        if how == "ack":
            return DuplicateSuppressed(*head) if duplicate else MessageAcked(*head, now - received)
        if how == "requeue":
            return MessageRequeued(*head, reason)
        if how == "retry":
            return MessageRetried(*head, delay, reason)
        return MessageDeadLettered(*head, reason)


_Settlement = Literal["ack", "requeue", "retry", "dead"]


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
