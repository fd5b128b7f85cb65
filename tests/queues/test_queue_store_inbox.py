"""The store inbox (:class:`StoreInbox`) on its own, no broker: how it keys, stamps and keeps its records, what it
does when a handler fails or outlives its claim, and how its claim is renewed while a handler runs.

Records and TTLs are judged on a :class:`ManualClock` driving the store; the renewals run on the event loop's own
timers, so those tests use short leases and assert only what a timer guarantees (it never fires early) and what
the store ends up holding.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from integration_kit.clock import ManualClock
from integration_kit.errors import StoreUnavailable
from integration_kit.queues.inbox import DEFAULT_INBOX_TTL, StoreInbox
from integration_kit.queues.message import Message
from integration_kit.server.errors import IdempotencyKeyReused, RequestInFlight
from integration_kit.server.idempotency import IdempotencyRecord, RecordState
from integration_kit.stores import MemoryStore, SQLiteStore

pytestmark = pytest.mark.queues

WEEK = 7 * 24 * 3600.0


def record(store: MemoryStore | SQLiteStore, key: str) -> IdempotencyRecord | None:
    data = store.get(key)
    return None if data is None else IdempotencyRecord.decode(data)


async def noop(message: Message) -> None:
    return None


class RenewalLog(MemoryStore):
    """A memory store that notes when (event-loop time) each renewal of an in-flight claim reaches it, and can
    fail the first ``fail`` of them."""

    def __init__(self, clock: ManualClock | None = None, fail: int = 0) -> None:
        super().__init__(clock=clock)
        self.renewals: list[float] = []
        self.results: list[bool] = []
        self.fail = fail
        self.threads: set[int] = set()

    def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        self.threads.add(threading.get_ident())
        return super().add(key, value, ttl=ttl)

    def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, *, ttl: float | None = None
    ) -> bool:
        if value is not None and IdempotencyRecord.decode(value).state is RecordState.IN_FLIGHT:
            self.renewals.append(asyncio.get_running_loop().time())
            if self.fail:
                self.fail -= 1
                raise StoreUnavailable("renewal refused", store="memory", operation="compare_and_set")
            ok = super().compare_and_set(key, expected, value, ttl=ttl)
            self.results.append(ok)
            return ok
        return super().compare_and_set(key, expected, value, ttl=ttl)


async def until(condition: object, limit: float = 10.0) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    async with asyncio.timeout(limit):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def test_records_are_keyed_by_consumer_stamped_on_the_clock_and_kept_a_week() -> None:
    assert DEFAULT_INBOX_TTL == WEEK
    clock = ManualClock(start=1000.0)
    store = MemoryStore(clock=clock)
    inbox = StoreInbox(store, clock=clock)
    assert (inbox.guard.lease, inbox.guard.ttl) == (60.0, WEEK)
    message = Message(b"order 1")
    claimed: list[IdempotencyRecord | None] = []

    async def handler(m: Message) -> None:
        claimed.append(record(store, f"inbox:default:{m.message_id}"))

    assert asyncio.run(inbox.process(message, handler)) is True
    held = claimed[0]
    assert held is not None
    assert held.state is RecordState.IN_FLIGHT
    assert (held.created, held.expires) == (1000.0, 1060.0)  # the claim: a lease of 60 s on the given clock
    done = record(store, f"inbox:default:{message.message_id}")
    assert done is not None
    assert done.state is RecordState.COMPLETED
    assert done.fingerprint == hashlib.sha256(b"order 1").hexdigest()
    assert done.result == b""  # an inbox keeps no result, only the fact
    assert (done.created, done.expires) == (1000.0, 1000.0 + WEEK)
    other = StoreInbox(store, consumer="billing", clock=clock)  # another consumer: its own record, its own run
    assert asyncio.run(other.process(message, noop)) is True
    assert record(store, f"inbox:billing:{message.message_id}") is not None
    clock.advance(WEEK - 1)
    assert asyncio.run(inbox.process(message, handler)) is False  # still remembered
    clock.advance(2)
    assert asyncio.run(inbox.process(message, handler)) is True  # forgotten after the TTL: runs again
    assert len(claimed) == 2


def test_a_custom_lease_and_ttl_reach_the_records() -> None:
    clock = ManualClock(start=50.0)
    store = MemoryStore(clock=clock)
    inbox = StoreInbox(store, consumer="c", lease=30.0, ttl=100.0, clock=clock)
    message = Message(b"x")
    seen: list[IdempotencyRecord | None] = []

    async def handler(m: Message) -> None:
        seen.append(record(store, f"inbox:c:{m.message_id}"))

    assert asyncio.run(inbox.process(message, handler)) is True
    assert seen[0] is not None
    assert seen[0].expires == 80.0
    done = record(store, f"inbox:c:{message.message_id}")
    assert done is not None
    assert done.expires == 150.0


def test_a_message_id_seen_with_another_body_is_refused() -> None:
    inbox = StoreInbox(MemoryStore())
    asyncio.run(inbox.process(Message(b"first", message_id="m-1"), noop))
    with pytest.raises(IdempotencyKeyReused):
        asyncio.run(inbox.process(Message(b"second", message_id="m-1"), noop))
    assert asyncio.run(inbox.process(Message(b"first", message_id="m-1"), noop)) is False


def test_a_claim_is_held_for_its_lease_on_the_store_clock() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    inbox = StoreInbox(store, clock=clock)  # lease 60 s: the renewal timer (20 s of loop time) never fires here
    message = Message(b"held")
    outcomes: list[str] = []

    async def second(m: Message) -> None:
        outcomes.append("second ran")

    async def first(m: Message) -> None:
        clock.advance(59)
        with pytest.raises(RequestInFlight):
            await inbox.process(m, second)
        clock.advance(2)  # 61 s: the claim lapsed, another delivery takes the message
        assert await inbox.process(m, second) is True

    assert asyncio.run(inbox.process(message, first)) is True
    assert outcomes == ["second ran"]


def test_a_failing_handler_releases_its_claim_and_the_next_delivery_runs(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    inbox = StoreInbox(store, consumer="c")
    message = Message(b"flaky")
    runs: list[int] = []

    async def handler(m: Message) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise ConnectionError("downstream down")

    with pytest.raises(ConnectionError):
        asyncio.run(inbox.process(message, handler))
    assert store.get(f"inbox:c:{message.message_id}") is None  # released at once, not left to lapse
    assert asyncio.run(inbox.process(message, handler)) is True
    assert asyncio.run(inbox.process(message, handler)) is False
    assert runs == [1, 1]


def test_a_handler_that_outlives_its_claim_is_logged_and_not_recorded(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    inbox = StoreInbox(MemoryStore(clock=clock), clock=clock)
    message = Message(b"too slow")
    runs: list[int] = []

    async def handler(m: Message) -> None:
        runs.append(1)
        clock.advance(61)  # past the lease, with no renewal (its timer is 20 s of loop time away)

    with caplog.at_level(logging.WARNING, logger="integration_kit.queues"):
        assert asyncio.run(inbox.process(message, handler)) is True
    assert [r.getMessage() for r in caplog.records] == [
        f"inbox: the claim on {message.message_id} lapsed before its handler finished"
    ]
    assert asyncio.run(inbox.process(message, handler)) is True  # not recorded: a redelivery runs again
    assert runs == [1, 1]


def test_a_blocking_store_is_called_from_a_worker_thread_and_a_memory_store_inline(tmp_path: Path) -> None:
    class Threads(SQLiteStore):
        threads: ClassVar[set[int]] = set()

        def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
            self.threads.add(threading.get_ident())
            return super().add(key, value, ttl=ttl)

    blocking = Threads(tmp_path / "store.db")
    inline = RenewalLog()
    asyncio.run(StoreInbox(blocking).process(Message(b"a"), noop))
    asyncio.run(StoreInbox(inline).process(Message(b"b"), noop))
    assert threading.get_ident() not in blocking.threads
    assert inline.threads == {threading.get_ident()}


def test_a_claim_is_renewed_every_third_of_the_lease_never_sooner() -> None:
    store = RenewalLog()
    inbox = StoreInbox(store, lease=0.3)
    message = Message(b"slow")
    started: list[float] = []

    async def handler(m: Message) -> None:
        started.append(asyncio.get_running_loop().time())
        await until(lambda: len(store.renewals) >= 3)

    assert asyncio.run(inbox.process(message, handler)) is True
    first, second, third = store.renewals[:3]
    slack = 0.005  # the loop's clock resolution; a timer never fires earlier than that
    assert first - started[0] >= 0.1 - slack
    assert second - first >= 0.1 - slack
    assert third - second >= 0.1 - slack
    assert store.results[:3] == [True, True, True]  # each renewal renews the claim the previous one stored
    done = record(store, f"inbox:default:{message.message_id}")
    assert done is not None
    assert done.state is RecordState.COMPLETED


def test_a_renewal_the_store_refuses_is_logged_and_the_next_one_keeps_the_claim(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RenewalLog(fail=1)
    inbox = StoreInbox(store, lease=0.3)
    message = Message(b"outage")

    async def handler(m: Message) -> None:
        await until(lambda: len(store.results) >= 2)

    with caplog.at_level(logging.WARNING, logger="integration_kit.queues"):
        assert asyncio.run(inbox.process(message, handler)) is True
    assert [r.getMessage() for r in caplog.records] == [
        f"inbox: could not renew the claim on {message.message_id}: "
        "store memory unavailable during compare_and_set: renewal refused"
    ]
    assert store.results[:2] == [True, True]
    done = record(store, f"inbox:default:{message.message_id}")
    assert done is not None
    assert done.state is RecordState.COMPLETED


def test_a_claim_found_lapsed_at_renewal_is_logged_once_and_no_longer_renewed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    store = RenewalLog(clock=clock)
    inbox = StoreInbox(store, lease=0.3, clock=clock)
    message = Message(b"lapsed")

    async def handler(m: Message) -> None:
        clock.advance(1.0)  # the store drops the claim before its first renewal
        await until(lambda: len(store.renewals) >= 1)
        await asyncio.sleep(0.35)  # room for three more renewals, had the loop gone on

    with caplog.at_level(logging.WARNING, logger="integration_kit.queues"):
        assert asyncio.run(inbox.process(message, handler)) is True
    assert store.results == [False]
    assert [r.getMessage() for r in caplog.records] == [
        f"inbox: the claim on {message.message_id} lapsed while its handler ran",
        f"inbox: the claim on {message.message_id} lapsed before its handler finished",
    ]


def test_a_handler_finishing_during_a_renewal_completes_with_the_renewed_claim(tmp_path: Path) -> None:
    class SlowRenewal(SQLiteStore):
        """A renewal that reaches the store waits there until the test lets it through; the completion waits
        until that renewal is written (at once when the inbox waited for it, as it must)."""

        entered = threading.Event()
        gate = threading.Event()
        renewed = threading.Event()

        def compare_and_set(
            self, key: str, expected: bytes | None, value: bytes | None, *, ttl: float | None = None
        ) -> bool:
            state = None if value is None else IdempotencyRecord.decode(value).state
            if state is RecordState.IN_FLIGHT:
                self.entered.set()
                self.gate.wait(10)
                try:
                    return super().compare_and_set(key, expected, value, ttl=ttl)
                finally:
                    self.renewed.set()
            if state is RecordState.COMPLETED:
                self.renewed.wait(10)
            return super().compare_and_set(key, expected, value, ttl=ttl)

    store = SlowRenewal(tmp_path / "store.db")
    inbox = StoreInbox(store, lease=0.3)
    message = Message(b"racing")

    async def handler(m: Message) -> None:
        assert await asyncio.to_thread(store.entered.wait, 10)
        asyncio.get_running_loop().call_soon(store.gate.set)  # once the inbox is stopping the renewal

    async def body() -> bool:
        return await inbox.process(message, handler)

    assert asyncio.run(body()) is True
    done = record(store, f"inbox:default:{message.message_id}")
    assert done is not None
    assert done.state is RecordState.COMPLETED
    assert asyncio.run(inbox.process(message, noop)) is False


class SteppedLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock the test can move forward (timers due by then fire at once)."""

    offset = 0.0

    def time(self) -> float:
        return super().time() + self.offset


def test_a_handler_returning_between_renewals_does_not_wait_for_the_next_one() -> None:
    store = RenewalLog()
    inbox = StoreInbox(store, lease=600.0)  # renewals every 200 s of loop time

    jumped = asyncio.Event()

    async def handler(m: Message) -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, SteppedLoop)
        loop.offset += 200.0  # the first renewal is due
        jumped.set()
        await until(lambda: store.results == [True])  # renewed; the next renewal is 200 s away

    async def body() -> bool:
        task = asyncio.ensure_future(inbox.process(Message(b"between"), handler))
        await jumped.wait()
        # the stepped clock moves no further: a stop that waited for the next renewal would not return
        done, _ = await asyncio.wait({task}, timeout=10)
        finished = task in done
        if not finished:
            asyncio.get_running_loop().offset += 200.0  # type: ignore[attr-defined]  # let it end, then fail
        return await task and finished

    with asyncio.Runner(loop_factory=SteppedLoop) as runner:
        assert runner.run(body()) is True
    assert store.results == [True]


class _HeldRenewal(SQLiteStore):
    """A renewal that reaches the store waits there until the test lets it through."""

    entered = threading.Event()
    gate = threading.Event()

    def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, *, ttl: float | None = None
    ) -> bool:
        if value is not None and IdempotencyRecord.decode(value).state is RecordState.IN_FLIGHT:
            self.entered.set()
            self.gate.wait(10)
        return super().compare_and_set(key, expected, value, ttl=ttl)


@pytest.mark.parametrize("handled", [True, False], ids=["handler-succeeded", "handler-failed"])
def test_a_caller_cancelled_while_the_inbox_waits_for_a_renewal_is_cancelled_and_the_outcome_still_written(
    tmp_path: Path, handled: bool
) -> None:
    """A consumer shutting down cancels process() while the inbox waits for a renewal at the store: the
    cancellation reaches the caller (it was once swallowed, and process() returned True as if nothing had happened),
    and the handler's outcome is still written: completed after a success, released after a failure."""
    store = _HeldRenewal(tmp_path / "store.db")
    store.entered, store.gate = threading.Event(), threading.Event()
    inbox = StoreInbox(store, lease=0.3)
    message = Message(b"cancelled")
    returned = asyncio.Event()

    async def handler(m: Message) -> None:
        assert await asyncio.to_thread(store.entered.wait, 10)  # a renewal is at the store
        returned.set()
        if not handled:
            raise RuntimeError("the downstream failed")

    async def body() -> None:
        task = asyncio.create_task(inbox.process(message, handler))
        await returned.wait()  # the handler has returned: process() now waits for the renewal to finish
        await asyncio.sleep(0)
        task.cancel()
        store.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the settling goes on, shielded, after the caller has its CancelledError: wait for it to end
        await asyncio.gather(*(asyncio.all_tasks() - {asyncio.current_task()}))

    asyncio.run(body())
    stored = record(store, f"inbox:default:{message.message_id}")
    if handled:
        assert stored is not None
        assert stored.state is RecordState.COMPLETED
        assert asyncio.run(inbox.process(message, noop)) is False  # a redelivery is a duplicate
    else:
        assert stored is None  # released: a redelivery runs the handler again
