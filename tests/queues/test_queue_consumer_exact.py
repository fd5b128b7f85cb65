"""The consumer's own logic, exactly, against a scripted in-memory broker and a manual clock (milliseconds a test).

Proves, for :class:`~integration_kit.queues.consumer.Consumer`: how each outcome of a handler settles its delivery
(ack, a duplicate's ack, a delayed retry with the topology's delay and the error as reason, a dead letter for poison
or attempts used up, a requeue for an open breaker or a shutdown) with the exact broker call, count and event; a
settle the broker refuses is counted and emits nothing; the fetch sizes (concurrency, batches, ``max_messages``,
one probe while half-open); the reconnect backoff; the pause and resume on a breaker with their events; the lease
keeper for slow handlers; the graceful shutdown and the cancellation of handlers past the grace; the constructor's
checks and defaults. The real-broker tests (``test_queue_consumer*.py``) stay the end-to-end proof.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from integration_kit.clock import ManualClock, SystemClock
from integration_kit.errors import CircuitOpenError, PermanentError
from integration_kit.events import CircuitState
from integration_kit.policies.retry import backoff_delay
from integration_kit.queues.broker import Delivery, Topology
from integration_kit.queues.consumer import DEFAULT_POISON, RECONNECT, Consumer, ConsumerStats, _InFlight
from integration_kit.queues.errors import BrokerUnavailable, QueueError
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
from integration_kit.queues.message import Message
from integration_kit.server.errors import IdempotencyKeyReused, RequestInFlight

DEST = "mem://work"


class FakeBroker:
    """A scripted broker: ``queue`` is what fetches hand out; every call is recorded in ``calls``; ``fail`` maps an
    operation to the error its next call raises; ``after`` runs after every settle (to stop the consumer)."""

    def __init__(self, topology: Topology | None = None, *, ack_deadline: float | None = None) -> None:
        self.topology = topology or Topology("work", retry_delays=(1.0, 5.0, 30.0), max_attempts=4)
        self._deadline = ack_deadline
        self.queue: list[Delivery] = []
        self.calls: list[tuple[Any, ...]] = []
        self.fetches: list[tuple[int, float]] = []
        self.fail: dict[str, BaseException] = {}
        self.repeat: dict[str, int] = {}  # how many calls in a row raise fail[op] (default 1)
        self.after: Callable[[str], None] | None = None
        self.on_fetch: Callable[[], None] | None = None
        self.ack_wait = 0.0

    @property
    def destination(self) -> str:
        return DEST

    @property
    def ack_deadline(self) -> float | None:
        return self._deadline

    def _maybe_fail(self, op: str) -> None:
        if op in self.fail:
            times = self.repeat.get(op, 1)
            self.repeat[op] = times - 1
            raise self.fail.pop(op) if times <= 1 else self.fail[op]

    async def fetch(self, max_messages: int, *, timeout: float) -> list[Delivery]:
        self.fetches.append((max_messages, timeout))
        if self.on_fetch is not None:
            self.on_fetch()
        self._maybe_fail("fetch")
        out, self.queue = self.queue[:max_messages], self.queue[max_messages:]
        await asyncio.sleep(0)
        return out

    async def in_progress(self, delivery: Delivery) -> None:
        self.calls.append(("in_progress", delivery.message.message_id))
        self._maybe_fail("in_progress")

    async def _settle(self, op: str, delivery: Delivery, *rest: Any) -> None:
        self.calls.append((op, delivery.message.message_id, *rest))
        self._maybe_fail(op)
        if self.after is not None:
            self.after(op)

    async def ack(self, delivery: Delivery) -> None:
        if self.ack_wait:
            self.calls.append(("acking", delivery.message.message_id))
            await asyncio.sleep(self.ack_wait)
        await self._settle("ack", delivery)

    async def requeue(self, delivery: Delivery) -> None:
        await self._settle("requeue", delivery)

    async def retry(self, delivery: Delivery, *, delay: float, reason: str, now: float) -> None:
        await self._settle("retry", delivery, delay, reason, now)

    async def dead_letter(self, delivery: Delivery, *, reason: str, now: float) -> None:
        await self._settle("dead", delivery, reason, now)


class StubBreaker:
    """What the consumer reads of a breaker: ``name`` and ``state`` (scripted: each read takes the next state of
    ``states``, the last repeating, and advances ``clock`` by ``tick``)."""

    def __init__(self, *states: CircuitState, clock: ManualClock | None = None, tick: float = 0.0) -> None:
        self.name = "downstream"
        self.states = list(states)
        self.clock = clock
        self.tick = tick
        self.reads = 0

    @property
    def state(self) -> CircuitState:
        self.reads += 1
        if self.clock is not None and self.tick:
            self.clock.advance(self.tick)
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def delivery(mid: str, *, attempt: int = 1, redelivered: bool = False) -> Delivery:
    return Delivery(Message(mid.encode(), message_id=mid, attempt=attempt), raw=None, redelivered=redelivered)


def make(
    handler: Callable[[Message], Awaitable[None]],
    *deliveries: Delivery,
    broker: FakeBroker | None = None,
    clock: ManualClock | None = None,
    **options: Any,
) -> tuple[Consumer, FakeBroker, list[object], ManualClock]:
    broker = broker or FakeBroker()
    broker.queue.extend(deliveries)
    clock = clock or ManualClock(100.0)
    events: list[object] = []
    options.setdefault("fetch_timeout", 0.5)
    options.setdefault("pause_poll", 0.001)
    consumer = Consumer(broker, handler, clock=clock, hooks=[events.append], **options)  # type: ignore[arg-type]
    return consumer, broker, events, clock


def run(coro: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, 5)

    return asyncio.run(bounded())


def head(clock_now: float, mid: str, attempt: int = 1, name: str = "work") -> tuple[Any, ...]:
    return (clock_now, name, 0, DEST, mid, attempt)


def stats(**counts: int) -> ConsumerStats:
    return ConsumerStats(**counts)


# -- settling ---------------------------------------------------------------------------------------------------


def test_a_handled_delivery_is_acked_with_its_duration() -> None:
    seen: list[Message] = []

    async def handler(message: Message) -> None:
        seen.append(message)
        clock.advance(2.5)

    consumer, broker, events, clock = make(handler, delivery("a", redelivered=True))
    result = run(consumer.run(max_messages=1))
    assert result is consumer.stats
    assert result == stats(handled=1)
    assert [m.message_id for m in seen] == ["a"]
    assert broker.calls == [("ack", "a")]
    assert broker.fetches == [(1, 0.5)]
    assert events == [MessageReceived(*head(100.0, "a"), True), MessageAcked(*head(102.5, "a"), 2.5)]


def test_a_failed_attempt_is_retried_after_the_topologys_delay_for_it() -> None:
    async def handler(message: Message) -> None:
        clock.advance(1.0)
        raise ValueError("boom")

    consumer, broker, events, clock = make(handler, delivery("a", attempt=2))
    assert run(consumer.run(max_messages=1)) == stats(retried=1)
    assert broker.calls == [("retry", "a", 5.0, "ValueError: boom", 101.0)]
    assert events == [
        MessageReceived(*head(100.0, "a", 2), False),
        MessageRetried(*head(101.0, "a", 2), 5.0, "ValueError: boom"),
    ]


@pytest.mark.parametrize(("attempt", "delay"), [(1, 1.0), (3, 30.0)])
def test_each_attempt_before_the_last_is_retried_with_its_delay(attempt: int, delay: float) -> None:
    async def handler(message: Message) -> None:
        raise KeyError()

    consumer, broker, _, _ = make(handler, delivery("a", attempt=attempt))
    run(consumer.run(max_messages=1))
    assert broker.calls == [("retry", "a", delay, "KeyError", 100.0)]


@pytest.mark.parametrize("attempt", [4, 5])
def test_the_last_attempt_is_dead_lettered_with_the_count_and_the_error(attempt: int) -> None:
    async def handler(message: Message) -> None:
        clock.advance(3.0)
        raise RuntimeError("still down")

    consumer, broker, events, clock = make(handler, delivery("a", attempt=attempt))
    assert run(consumer.run(max_messages=1)) == stats(dead_lettered=1)
    reason = f"attempts exhausted ({attempt}): RuntimeError: still down"
    assert broker.calls == [("dead", "a", reason, 103.0)]
    assert events[1] == MessageDeadLettered(*head(103.0, "a", attempt), reason)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermanentError("bad input"), "poison: PermanentError: bad input"),
        (IdempotencyKeyReused("other body", key="k"), "poison: IdempotencyKeyReused: other body"),
        (
            json.JSONDecodeError("Expecting value", "x", 0),
            "poison: JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
        ),
        (
            UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
            "poison: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: bad",
        ),
    ],
)
def test_poison_is_dead_lettered_at_once(error: Exception, reason: str) -> None:
    async def handler(message: Message) -> None:
        raise error

    consumer, broker, events, _ = make(handler, delivery("a"))
    assert run(consumer.run(max_messages=1)) == stats(dead_lettered=1)
    assert broker.calls == [("dead", "a", reason, 100.0)]
    assert events[1] == MessageDeadLettered(*head(100.0, "a"), reason)


def test_the_poison_list_is_the_one_given() -> None:
    assert (PermanentError, IdempotencyKeyReused, UnicodeDecodeError, json.JSONDecodeError) == DEFAULT_POISON

    async def handler(message: Message) -> None:
        raise LookupError() if message.attempt == 1 else PermanentError("x")

    consumer, broker, _, _ = make(handler, delivery("a"), delivery("b", attempt=2), poison=[LookupError])
    run(consumer.run(max_messages=2))
    assert broker.calls == [
        ("dead", "a", "poison: LookupError", 100.0),
        ("retry", "b", 5.0, "PermanentError: x", 100.0),
    ]


def test_a_message_in_flight_in_another_consumer_is_retried_after_its_retry_after() -> None:
    async def handler(message: Message) -> None:
        raise RequestInFlight("busy", key="a", retry_after=2.5)

    consumer, broker, events, _ = make(handler, delivery("a", attempt=4))  # the last attempt: still a retry
    assert run(consumer.run(max_messages=1)) == stats(retried=1)
    assert broker.calls == [("retry", "a", 2.5, "in flight in another consumer", 100.0)]
    assert events[1] == MessageRetried(*head(100.0, "a", 4), 2.5, "in flight in another consumer")


def test_an_open_breaker_the_consumer_watches_requeues_without_an_attempt() -> None:
    breaker = StubBreaker(CircuitState.CLOSED)
    error = CircuitOpenError(breaker="downstream", state=CircuitState.OPEN, opened_at=1.0, retry_at=2.0)

    async def handler(message: Message) -> None:
        if message.message_id == "a":
            raise error

    consumer, broker, events, _ = make(handler, delivery("a", attempt=4), delivery("b"), breaker=breaker)
    assert run(consumer.run(max_messages=1)) == stats(requeued=1, handled=1)  # a requeue is not "settled"
    assert broker.calls == [("requeue", "a"), ("ack", "b")]
    assert events[1] == MessageRequeued(*head(100.0, "a", 4), "circuit_open")


def test_an_open_breaker_the_consumer_does_not_watch_is_a_failed_attempt() -> None:
    error = CircuitOpenError(breaker="other", state=CircuitState.OPEN, opened_at=1.0, retry_at=2.0)

    async def handler(message: Message) -> None:
        raise error

    consumer, broker, _, _ = make(handler, delivery("a", attempt=2), delivery("b", attempt=4))
    run(consumer.run(max_messages=2))
    assert broker.calls == [
        ("retry", "a", 5.0, f"CircuitOpenError: {error}", 100.0),
        ("dead", "b", f"attempts exhausted (4): CircuitOpenError: {error}", 100.0),
    ]


def test_an_open_breaker_other_than_the_watched_one_is_a_failed_attempt_not_a_requeue() -> None:
    """The bug: any CircuitOpenError was requeued once the consumer watched a breaker, even another breaker's. The
    consumer does not pause for that one (its own stays closed), so the message came straight back, again and
    again, as fast as the broker could redeliver it, for as long as the other breaker stayed open."""
    breaker = StubBreaker(CircuitState.CLOSED)
    error = CircuitOpenError(breaker="warehouse", state=CircuitState.OPEN, opened_at=1.0, retry_at=2.0)

    async def handler(message: Message) -> None:
        raise error

    consumer, broker, events, _ = make(handler, delivery("a", attempt=2), breaker=breaker)
    assert run(consumer.run(max_messages=1)) == stats(retried=1)
    assert broker.calls == [("retry", "a", 5.0, f"CircuitOpenError: {error}", 100.0)]
    assert events[1] == MessageRetried(*head(100.0, "a", 2), 5.0, f"CircuitOpenError: {error}")


@pytest.mark.parametrize("state", [CircuitState.OPEN, CircuitState.FORCED_OPEN])
def test_a_failure_that_leaves_the_breaker_open_requeues(state: CircuitState) -> None:
    breaker = StubBreaker(CircuitState.CLOSED)

    async def handler(message: Message) -> None:
        breaker.states = [state]
        raise ValueError("down")

    consumer, broker, events, _ = make(handler, delivery("a", attempt=4), breaker=breaker)
    broker.after = lambda op: consumer.stop()
    assert run(consumer.run()) == stats(requeued=1)
    assert broker.calls == [("requeue", "a")]
    assert events[1] == MessageRequeued(*head(100.0, "a", 4), "circuit_open")


@pytest.mark.parametrize("state", [CircuitState.CLOSED, CircuitState.HALF_OPEN, CircuitState.DISABLED])
def test_a_failure_that_leaves_the_breaker_not_open_uses_an_attempt(state: CircuitState) -> None:
    breaker = StubBreaker(CircuitState.CLOSED)

    async def handler(message: Message) -> None:
        breaker.states = [state]
        raise ValueError("down")

    consumer, broker, _, _ = make(handler, delivery("a"), breaker=breaker)
    broker.after = lambda op: consumer.stop()
    run(consumer.run())
    assert broker.calls == [("retry", "a", 1.0, "ValueError: down", 100.0)]


class FakeInbox:
    def __init__(self, ran: bool) -> None:
        self.ran = ran
        self.calls: list[tuple[str, object]] = []

    async def process(self, message: Message, handler: Callable[[Message], Awaitable[None]]) -> bool:
        self.calls.append((message.message_id, handler))
        if self.ran:
            await handler(message)
        return self.ran


def test_the_inbox_runs_the_handler_and_a_duplicate_is_acked_as_suppressed() -> None:
    async def handler(message: Message) -> None:
        clock.advance(1.0)

    inbox = FakeInbox(ran=False)
    consumer, broker, events, clock = make(handler, delivery("a"), inbox=inbox)
    assert run(consumer.run(max_messages=1)) == stats(duplicates=1)
    assert inbox.calls == [("a", handler)]
    assert broker.calls == [("ack", "a")]
    assert events == [MessageReceived(*head(100.0, "a"), False), DuplicateSuppressed(*head(100.0, "a"))]

    inbox = FakeInbox(ran=True)
    consumer, broker, events, clock = make(handler, delivery("b"), inbox=inbox)
    assert run(consumer.run(max_messages=1)) == stats(handled=1)
    assert events[1] == MessageAcked(*head(101.0, "b"), 1.0)


@pytest.mark.parametrize(("op", "error"), [("ack", None), ("retry", ValueError("x")), ("dead", PermanentError("p"))])
def test_a_settle_the_broker_refuses_is_counted_and_emits_nothing(
    op: str, error: Exception | None, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(message: Message) -> None:
        if error is not None:
            raise error

    consumer, broker, events, _ = make(handler, delivery("a"), delivery("b"))
    broker.fail[op] = BrokerUnavailable("connection lost", destination=DEST)
    with caplog.at_level(logging.WARNING, logger="integration_kit.queues"):
        result = run(consumer.run(max_messages=1))
    assert result.settle_errors == 1
    assert sum((result.handled, result.retried, result.dead_lettered)) == 1  # only b's settle counted
    assert [c[1] for c in broker.calls] == ["a", "b"]
    assert [type(e).__name__ for e in events].count("MessageReceived") == 2
    assert len(events) == 3
    how = {"dead": "dead"}.get(op, op)
    assert f"consumer {DEST}: could not {how} <Delivery a attempt=1>: connection lost" in caplog.messages


def test_a_requeue_the_broker_refuses_is_counted() -> None:
    breaker = StubBreaker(CircuitState.CLOSED)

    async def handler(message: Message) -> None:
        raise CircuitOpenError(breaker="downstream", state=CircuitState.OPEN, opened_at=None, retry_at=None)

    consumer, broker, events, _ = make(handler, delivery("a"), breaker=breaker)
    broker.fail["requeue"] = QueueError("gone")
    broker.after = lambda op: consumer.stop()
    broker.on_fetch = lambda: consumer.stop() if broker.calls else None
    assert run(consumer.run()) == stats(settle_errors=1)
    assert len(events) == 1


def test_every_count_adds_up() -> None:
    class Inbox:
        async def process(self, message: Message, handler: Callable[[Message], Awaitable[None]]) -> bool:
            if message.message_id.startswith("dup"):
                return False
            await handler(message)
            return True

    async def handler(message: Message) -> None:
        kind = message.message_id[:-1]
        if kind == "retry":
            raise ValueError("x")
        if kind == "dead":
            raise PermanentError("p")
        if kind == "open":
            raise CircuitOpenError(breaker="downstream", state=CircuitState.OPEN, opened_at=None, retry_at=None)

    order = ("lost", "open", "ok", "dup", "retry", "dead")  # the first two acks fail
    todo = [delivery(f"{kind}{n}") for kind in order for n in (1, 2)]
    consumer, broker, _, _ = make(handler, *todo, inbox=Inbox(), breaker=StubBreaker(CircuitState.CLOSED))
    broker.fail["ack"] = QueueError("lost")
    broker.repeat["ack"] = 2
    assert run(consumer.run(max_messages=8)) == stats(
        handled=2, duplicates=2, retried=2, dead_lettered=2, requeued=2, settle_errors=2
    )


def test_no_events_are_built_without_hooks() -> None:
    async def handler(message: Message) -> None:
        pass

    broker = FakeBroker()
    broker.queue.append(delivery("a"))
    consumer = Consumer(broker, handler, clock=ManualClock())  # type: ignore[arg-type]
    assert consumer.hooks == []
    assert run(consumer.run(max_messages=1)) == stats(handled=1)


# -- fetching ---------------------------------------------------------------------------------------------------


def test_fetch_asks_for_the_room_left_bounded_by_max_messages() -> None:
    async def handler(message: Message) -> None:
        pass

    consumer, broker, _, _ = make(handler, *(delivery(str(i)) for i in range(5)), concurrency=3, fetch_timeout=0.25)
    assert run(consumer.run(max_messages=4)) == stats(handled=4)
    assert broker.fetches == [(3, 0.25), (1, 0.25)]
    assert [c[1] for c in broker.calls] == ["0", "1", "2", "3"]


def test_handlers_in_flight_are_counted_and_fetches_come_in_batches() -> None:
    gates: dict[str, asyncio.Event] = {}

    async def handler(message: Message) -> None:
        gate = gates.setdefault(message.message_id, asyncio.Event())
        await gate.wait()

    async def body() -> None:
        consumer, broker, _, _ = make(handler, *(delivery(str(i)) for i in range(12)), concurrency=8)
        task = asyncio.create_task(consumer.run(max_messages=12))
        for _ in range(20):
            await asyncio.sleep(0)
        assert broker.fetches == [(8, 0.5)]  # 8 in flight: no room
        gates["0"].set()
        for _ in range(20):
            await asyncio.sleep(0)
        assert broker.fetches == [(8, 0.5)]  # room for 1 < a batch of 2 (concurrency // 4)
        gates["1"].set()
        for _ in range(20):
            await asyncio.sleep(0)
        assert broker.fetches == [(8, 0.5), (2, 0.5)]
        for i in range(12):
            gates.setdefault(str(i), asyncio.Event()).set()
        assert await task == stats(handled=12)
        assert broker.fetches[2:] == [(2, 0.5)]

    run(body())


def test_a_concurrency_below_four_fetches_one_at_a_time_and_max_messages_counts_those_in_flight() -> None:
    gate = asyncio.Event()

    async def handler(message: Message) -> None:
        await gate.wait()

    async def body() -> None:
        consumer, broker, _, _ = make(handler, *(delivery(str(i)) for i in range(6)), concurrency=3)
        task = asyncio.create_task(consumer.run(max_messages=4))
        for _ in range(20):
            await asyncio.sleep(0)
        assert broker.fetches == [(3, 0.5)]
        gate.set()
        assert await task == stats(handled=4)
        assert broker.fetches == [(3, 0.5), (1, 0.5)]

    run(body())


def test_max_messages_leaves_room_for_the_handlers_in_flight() -> None:
    gate = asyncio.Event()

    async def handler(message: Message) -> None:
        await gate.wait()

    async def body() -> None:
        consumer, broker, _, _ = make(handler, delivery("a"), delivery("b"), concurrency=8)
        task = asyncio.create_task(consumer.run(max_messages=4))
        for _ in range(10):
            await asyncio.sleep(0)
        assert broker.fetches[0] == (4, 0.5)
        assert set(broker.fetches[1:]) == {(2, 0.5)}  # 4 - 0 settled - 2 in flight
        broker.queue += [delivery("c"), delivery("d")]
        gate.set()
        assert await task == stats(handled=4)

    run(body())


def test_the_batch_is_a_quarter_of_the_concurrency_rounded_down() -> None:
    gates: dict[str, asyncio.Event] = {}

    async def handler(message: Message) -> None:
        await gates.setdefault(message.message_id, asyncio.Event()).wait()

    async def body() -> None:
        consumer, broker, _, _ = make(handler, *(delivery(str(i)) for i in range(7)), concurrency=5)
        task = asyncio.create_task(consumer.run(max_messages=7))
        for _ in range(10):
            await asyncio.sleep(0)
        assert broker.fetches == [(5, 0.5)]
        gates.setdefault("0", asyncio.Event()).set()
        for _ in range(10):
            await asyncio.sleep(0)
        assert broker.fetches == [(5, 0.5), (1, 0.5)]  # a batch of 5 // 4 == 1
        for i in range(7):
            gates.setdefault(str(i), asyncio.Event()).set()
        assert await task == stats(handled=7)

    run(body())


def test_a_broker_that_fails_is_retried_with_the_reconnect_backoff(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(message: Message) -> None:
        pass

    consumer, broker, _, _ = make(handler, rng=random.Random(7))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    consumer._sleep = sleep  # type: ignore[method-assign]
    script = iter(["fail", "fail", "fail", "ok", "fail", "ok"])

    def on_fetch() -> None:
        step = next(script, "stop")
        if step == "fail":
            broker.fail["fetch"] = BrokerUnavailable("refused", destination=DEST)
        elif step == "ok" and len(sleeps) == 3:
            broker.queue.append(delivery("a"))
        elif step == "stop":
            consumer.stop()

    broker.on_fetch = on_fetch
    with caplog.at_level(logging.WARNING, logger="integration_kit.queues"):
        result = run(consumer.run())
    assert result.broker_errors == 4
    assert result.handled == 1
    rng = random.Random(7)
    expected, previous = [], None
    for n in (1, 2, 3):
        previous = backoff_delay(RECONNECT, n, rng, previous)
        expected.append(previous)
    expected.append(backoff_delay(RECONNECT, 1, rng, None))  # the success in between started over
    assert sleeps == expected
    assert RECONNECT.base_delay == 0.1
    assert RECONNECT.max_delay == 5.0
    assert RECONNECT.max_attempts == 1_000_000
    assert f"consumer {DEST}: refused; trying again in {expected[0]:.2f}s" in caplog.messages
    assert consumer._failures == 0
    assert consumer._delay is None


def test_run_starts_the_backoff_afresh() -> None:
    async def handler(message: Message) -> None:
        pass

    consumer, broker, _, _ = make(handler, delivery("a"))
    consumer._failures, consumer._delay = 9, 4.0
    seen: list[tuple[int, float | None]] = []
    broker.on_fetch = lambda: seen.append((consumer._failures, consumer._delay))
    run(consumer.run(max_messages=1))
    assert seen == [(0, None)]


# -- the breaker's pause -----------------------------------------------------------------------------------------


def test_the_consumer_pauses_while_the_breaker_is_open_and_resumes_when_it_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(message: Message) -> None:
        pass

    clock = ManualClock(100.0)
    breaker = StubBreaker(CircuitState.OPEN, CircuitState.FORCED_OPEN, CircuitState.CLOSED, clock=clock, tick=1.0)
    consumer, broker, events, _ = make(handler, delivery("a"), clock=clock, breaker=breaker, pause_poll=0.02)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        assert broker.fetches == []
        assert consumer.paused

    consumer._sleep = sleep  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="integration_kit.queues"):
        result = run(consumer.run(max_messages=1))
    assert result == stats(pauses=1, handled=1)
    assert sleeps == [0.02, 0.02]
    assert consumer.paused is False
    assert events[:2] == [
        ConsumerPaused(101.0, "work", 0, DEST, "downstream"),
        ConsumerResumed(103.0, "work", 0, DEST, "downstream", 2.0),
    ]
    assert isinstance(events[2], MessageReceived)
    assert f"consumer {DEST}: paused, breaker 'downstream' is open" in caplog.messages
    assert f"consumer {DEST}: resumed, breaker 'downstream' closed" in caplog.messages


def test_a_pause_is_counted_once_per_outage() -> None:
    async def handler(message: Message) -> None:
        pass

    clock = ManualClock(0.0)
    states = [CircuitState.OPEN, CircuitState.CLOSED, CircuitState.OPEN, CircuitState.CLOSED]
    breaker = StubBreaker(*states, clock=clock, tick=1.0)
    consumer, _broker, events, _ = make(
        handler, delivery("a"), delivery("b"), clock=clock, breaker=breaker, concurrency=1
    )
    consumer._sleep = lambda s: asyncio.sleep(0)  # type: ignore[method-assign,assignment]
    assert run(consumer.run(max_messages=2)).pauses == 2
    kinds = [(type(e).__name__, getattr(e, "paused_for", None)) for e in events]
    assert kinds == [
        ("ConsumerPaused", None),
        ("ConsumerResumed", 1.0),
        ("MessageReceived", None),
        ("MessageAcked", None),
        ("ConsumerPaused", None),
        ("ConsumerResumed", 1.0),
        ("MessageReceived", None),
        ("MessageAcked", None),
    ]
    assert events[4].time == 3.0
    assert events[5].time == 4.0


def test_a_half_open_breaker_lets_one_probe_through_at_a_time() -> None:
    gate = asyncio.Event()

    async def handler(message: Message) -> None:
        await gate.wait()

    async def body() -> None:
        breaker = StubBreaker(CircuitState.HALF_OPEN)
        consumer, broker, events, _ = make(
            handler, delivery("a"), delivery("b"), breaker=breaker, pause_poll=0.001, concurrency=2
        )  # room for a second, and a batch of one: only the half-open rule holds it back
        task = asyncio.create_task(consumer.run(max_messages=2))
        for _ in range(20):
            await asyncio.sleep(0)
        assert broker.fetches == [(1, 0.5)]
        gate.set()
        assert await task == stats(handled=2)
        assert broker.fetches == [(1, 0.5), (1, 0.5)]
        assert not any(isinstance(e, (ConsumerPaused, ConsumerResumed)) for e in events)

    run(body())


def test_without_a_pause_a_closed_breaker_emits_no_resume() -> None:
    async def handler(message: Message) -> None:
        pass

    consumer, _broker, events, _ = make(handler, delivery("a"), breaker=StubBreaker(CircuitState.CLOSED))
    run(consumer.run(max_messages=1))
    assert [type(e) for e in events] == [MessageReceived, MessageAcked]


def test_waiting_for_room_with_nothing_in_flight_sleeps_the_pause_poll() -> None:
    async def handler(message: Message) -> None:
        pass

    consumer, broker, _, _ = make(handler, pause_poll=0.03)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        consumer.stop()

    consumer._sleep = sleep  # type: ignore[method-assign]
    consumer.concurrency = 0  # no room, and nothing in flight
    assert run(consumer.run()) == stats()
    assert sleeps == [0.03]
    assert broker.fetches == []


def test_the_sleep_ends_early_on_stop() -> None:
    async def handler(message: Message) -> None:
        pass

    async def body() -> float:
        consumer, _, _, _ = make(handler)
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, consumer.stop)
        start = loop.time()
        await consumer._sleep(3.0)
        return loop.time() - start

    assert run(body()) < 1.0


# -- shutdown -----------------------------------------------------------------------------------------------------


def test_deliveries_fetched_while_stopping_are_requeued_unhandled() -> None:
    async def handler(message: Message) -> None:
        raise AssertionError("not run")

    consumer, broker, events, _ = make(handler, delivery("a", attempt=2), delivery("b"))
    broker.on_fetch = consumer.stop
    assert run(consumer.run()) == stats(requeued=2)
    assert broker.calls == [("requeue", "a"), ("requeue", "b")]
    assert events[2:] == [
        MessageRequeued(*head(100.0, "a", 2), "shutdown"),
        MessageRequeued(*head(100.0, "b"), "shutdown"),
    ]
    assert [type(e) for e in events[:2]] == [MessageReceived, MessageReceived]


def test_stop_lets_handlers_in_flight_finish_within_the_grace() -> None:
    async def handler(message: Message) -> None:
        consumer.stop()
        await asyncio.sleep(0.01)

    consumer, broker, _, _ = make(handler, delivery("a"), shutdown_grace=2.0)
    assert run(consumer.run()) == stats(handled=1)
    assert broker.calls == [("ack", "a")]


def test_handlers_past_the_grace_are_cancelled_and_requeued() -> None:
    cancelled: list[str] = []

    async def handler(message: Message) -> None:
        consumer.stop()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(message.message_id)
            raise

    async def body() -> tuple[ConsumerStats, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        result = await consumer.run()
        return result, loop.time() - start

    consumer, broker, events, _ = make(handler, delivery("a"), shutdown_grace=0.05)
    result, took = run(body())
    assert result == stats(requeued=1)
    assert cancelled == ["a"]
    assert broker.calls == [("requeue", "a")]
    assert events[-1] == MessageRequeued(*head(100.0, "a"), "shutdown")
    assert 0.04 < took < 1.0
    assert consumer._in_flight == {}


def test_stop_and_signal_handlers() -> None:
    async def handler(message: Message) -> None:
        pass

    async def body() -> None:
        consumer, _, _, _ = make(handler)
        loop = asyncio.get_running_loop()
        added: list[tuple[object, ...]] = []
        loop.add_signal_handler = lambda sig, cb, *args: added.append((sig, cb))  # type: ignore[method-assign]
        consumer.install_signal_handlers()
        assert added == [(signal.SIGTERM, consumer.stop), (signal.SIGINT, consumer.stop)]
        consumer.install_signal_handlers([signal.SIGUSR1])
        assert added[-1] == (signal.SIGUSR1, consumer.stop)
        assert not consumer._stopping.is_set()
        consumer.stop()
        assert consumer._stopping.is_set()

    run(body())


def test_a_consumer_stopped_once_runs_again() -> None:
    async def handler(message: Message) -> None:
        pass

    consumer, broker, _, _ = make(handler, delivery("a"))
    broker.on_fetch = consumer.stop
    assert run(consumer.run()) == stats(requeued=1)
    broker.on_fetch = None
    broker.queue.append(delivery("b"))
    assert run(consumer.run(max_messages=1)) == stats(requeued=1, handled=1)


# -- leases -------------------------------------------------------------------------------------------------------


def test_a_slow_handler_has_its_lease_extended_every_third_of_the_deadline() -> None:
    async def handler(message: Message) -> None:
        await asyncio.sleep(0.25)

    broker = FakeBroker(ack_deadline=0.15)  # a beat every 0.05 s
    consumer, _, _, _ = make(handler, delivery("a"), broker=broker)
    result = run(consumer.run(max_messages=1))
    beats = [c for c in broker.calls if c[0] == "in_progress"]
    assert 3 <= len(beats) <= 5
    assert result.extended == len(beats)
    assert result.lease_errors == 0
    assert broker.calls[-1] == ("ack", "a")


def test_a_handler_faster_than_a_third_of_the_deadline_is_never_extended() -> None:
    async def handler(message: Message) -> None:
        await asyncio.sleep(0.01)

    broker = FakeBroker(ack_deadline=0.3)
    consumer, _, _, _ = make(handler, delivery("a"), broker=broker)
    assert run(consumer.run(max_messages=1)) == stats(handled=1)
    assert broker.calls == [("ack", "a")]


@pytest.mark.parametrize(("deadline", "started"), [(None, []), (0.3, [0.3])])
def test_a_lease_keeper_only_with_an_ack_deadline(deadline: float | None, started: list[float]) -> None:
    async def handler(message: Message) -> None:
        pass

    consumer, _, _, _ = make(handler, delivery("a"), broker=FakeBroker(ack_deadline=deadline))
    seen: list[float | None] = []

    async def keep_leases(period: float | None) -> None:
        seen.append(period)

    consumer._keep_leases = keep_leases  # type: ignore[method-assign,assignment]
    assert run(consumer.run(max_messages=1)) == stats(handled=1)
    assert seen == started


def test_a_handler_younger_than_a_period_is_not_extended_yet() -> None:
    async def handler(message: Message) -> None:
        await asyncio.sleep(0.3 if message.message_id == "old" else 0.07)

    async def body() -> FakeBroker:
        broker = FakeBroker(ack_deadline=0.3)  # a beat every 0.1 s, for handlers running since a period or more
        consumer, _, _, _ = make(handler, delivery("old"), broker=broker, concurrency=1)
        task = asyncio.create_task(consumer.run(max_messages=2))
        await asyncio.sleep(0.15)  # one beat for "old" at 0.1
        broker.queue.append(delivery("new"))
        consumer.concurrency = 2
        await task
        return broker

    calls = run(body()).calls
    assert ("in_progress", "old") in calls
    assert ("in_progress", "new") not in calls


def test_no_extension_while_the_delivery_is_being_settled() -> None:
    async def handler(message: Message) -> None:
        await asyncio.sleep(0.07)

    broker = FakeBroker(ack_deadline=0.06)  # a beat every 0.02 s
    broker.ack_wait = 0.1
    consumer, _, _, _ = make(handler, delivery("a"), broker=broker)
    result = run(consumer.run(max_messages=1))
    acking = broker.calls.index(("acking", "a"))
    assert all(c[0] == "in_progress" for c in broker.calls[:acking])
    assert acking >= 2
    assert broker.calls[acking + 1 :] == [("ack", "a")]
    assert result.extended == acking


@pytest.mark.parametrize("error", [BrokerUnavailable("gone", destination=DEST), RuntimeError("adapter bug")])
def test_a_lease_extension_that_fails_is_counted_and_the_beats_go_on(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(message: Message) -> None:
        await asyncio.sleep(0.2)

    broker = FakeBroker(ack_deadline=0.09)  # a beat every 0.03 s
    broker.fail["in_progress"] = error
    broker.repeat["in_progress"] = 2
    consumer, _, _, _ = make(handler, delivery("a"), broker=broker)
    with caplog.at_level(logging.WARNING, logger="integration_kit.queues"):
        result = run(consumer.run(max_messages=1))
    beats = [c for c in broker.calls if c[0] == "in_progress"]
    assert len(beats) >= 3
    assert result.lease_errors == 2
    assert result.extended == len(beats) - 2
    assert result.handled == 1
    if isinstance(error, QueueError):
        assert f"consumer {DEST}: could not extend the lease of <Delivery a attempt=1>: gone" in caplog.messages
    else:
        assert f"consumer {DEST}: extending the lease of <Delivery a attempt=1> failed" in caplog.messages
        assert "adapter bug" in caplog.text  # with the traceback


def test_the_lease_keeper_beats_each_handler_running_a_period_or_more(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the event loop's clock (frozen here, moved by the keeper's own sleeps): every third of the deadline, an
    in-progress ack for each delivery in flight since a period ago or earlier (exactly a period counts), none for
    one being settled."""

    async def handler(message: Message) -> None:
        pass

    async def body() -> tuple[list[float], list[tuple[Any, ...]], int]:
        consumer, broker, _, _ = make(handler, broker=FakeBroker(ack_deadline=3.0))
        loop = asyncio.get_running_loop()
        now = [100.0]
        sleeps: list[float] = []
        owner = threading.get_ident()
        real_sleep = asyncio.sleep

        async def sleep(seconds: float) -> None:
            if threading.get_ident() != owner:  # asyncio.sleep is the process's: other threads' loops sleep for real
                await real_sleep(seconds)
                return
            sleeps.append(seconds)
            if len(sleeps) == 3:
                raise asyncio.CancelledError
            now[0] += seconds

        monkeypatch.setattr(loop, "time", lambda: now[0])
        monkeypatch.setattr(asyncio, "sleep", sleep)
        consumer._in_flight = {  # type: ignore[dict-item]
            "t1": _InFlight(delivery("old"), 100.0),
            "t2": _InFlight(delivery("new"), 100.5),
            "t3": _InFlight(delivery("settling"), 99.0, settling=True),
        }
        try:
            await consumer._keep_leases(3.0)
        except asyncio.CancelledError:
            pass
        finally:
            monkeypatch.undo()
        return sleeps, broker.calls, consumer.stats.extended

    sleeps, calls, extended = run(body())
    assert sleeps == [1.0, 1.0, 1.0]
    assert calls == [("in_progress", "old"), ("in_progress", "old"), ("in_progress", "new")]
    assert extended == 3


def test_stop_takes_effect_within_the_fetch_timeout_while_every_handler_is_busy() -> None:
    async def handler(message: Message) -> None:
        await asyncio.sleep(10)

    async def body() -> tuple[ConsumerStats, float]:
        consumer, _, _, _ = make(handler, delivery("a"), concurrency=1, fetch_timeout=0.05, shutdown_grace=0.02)
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(consumer.run())
        await asyncio.sleep(0.01)
        start = loop.time()
        consumer.stop()
        result = await task
        return result, loop.time() - start

    result, took = run(body())
    assert result == stats(requeued=1)
    assert took < 1.0


@pytest.mark.parametrize("deadline", [0.0, -1.0])
def test_an_ack_deadline_that_is_not_positive_is_refused(deadline: float) -> None:
    async def handler(message: Message) -> None:
        pass

    consumer, broker, _, _ = make(handler, broker=FakeBroker(ack_deadline=deadline))
    with pytest.raises(ValueError, match=r"\.ack_deadline must be positive seconds or None, got "):
        run(consumer.run())
    assert broker.fetches == []


def test_the_lease_keeper_is_cancelled_at_the_end_of_run() -> None:
    async def handler(message: Message) -> None:
        pass

    async def body() -> int:
        consumer, _, _, _ = make(handler, delivery("a"), broker=FakeBroker(ack_deadline=0.03))
        await consumer.run(max_messages=1)
        return len([t for t in asyncio.all_tasks() if "_keep_leases" in repr(t.get_coro())])

    assert run(body()) == 0


# -- construction --------------------------------------------------------------------------------------------------


def test_the_constructors_defaults_and_checks() -> None:
    async def handler(message: Message) -> None:
        pass

    broker = FakeBroker(Topology("orders"))
    consumer = Consumer(broker, handler)  # type: ignore[arg-type]
    assert consumer.broker is broker
    assert consumer.handler is handler
    assert consumer.inbox is None
    assert consumer.concurrency == 8
    assert consumer.breaker is None
    assert consumer.poison == DEFAULT_POISON
    assert consumer.fetch_timeout == 1.0
    assert consumer.shutdown_grace == 10.0
    assert consumer.pause_poll == 0.05
    assert isinstance(consumer.clock, SystemClock)
    assert isinstance(consumer.rng, random.Random)
    assert consumer.name == "orders"
    assert consumer.hooks == []
    assert consumer.stats == ConsumerStats()
    assert consumer.paused is False
    assert consumer._paused_at == 0.0
    assert consumer._in_flight == {}
    assert consumer._failures == 0
    assert consumer._delay is None
    assert consumer._min_batch == 2
    assert not consumer._stopping.is_set()
    assert not consumer._room.is_set()
    assert Consumer(broker, handler, concurrency=1)._min_batch == 1  # type: ignore[arg-type]
    assert Consumer(broker, handler, concurrency=16)._min_batch == 4  # type: ignore[arg-type]
    named = Consumer(broker, handler, name="billing", poison=iter([KeyError]))  # type: ignore[arg-type]
    assert named.name == "billing"
    assert named.poison == (KeyError,)
    with pytest.raises(ValueError, match=r"^Consumer\.concurrency must be >= 1, got 0$"):
        Consumer(broker, handler, concurrency=0)  # type: ignore[arg-type]


def test_events_carry_the_consumers_name() -> None:
    async def handler(message: Message) -> None:
        pass

    consumer, _, events, _ = make(handler, delivery("a"), name="billing")
    run(consumer.run(max_messages=1))
    assert events == [
        MessageReceived(*head(100.0, "a", name="billing"), False),
        MessageAcked(*head(100.0, "a", name="billing"), 0.0),
    ]


def test_a_stats_record_starts_at_zero() -> None:
    fields: Sequence[str] = ConsumerStats.__slots__  # type: ignore[assignment]
    assert all(getattr(ConsumerStats(), f) == 0 for f in fields)
    assert len(fields) == 10
