"""The webhook processor's rules, on a real SQLite inbox and a :class:`ManualClock`: its defaults (retry policy,
deadline, lease, claim limit, name), every failure retried, the dead letter's description, how many events one
pass, a replay and a poll take, an inbox outage survived by the background loop, and the ordering guard's
boundaries.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
from pathlib import Path

import pytest

from integration_kit.clock import ManualClock
from integration_kit.errors import StoreUnavailable
from integration_kit.events import Recorder
from integration_kit.events.kinds import AttemptStarted, CallFinished, RetryScheduled
from integration_kit.policies.config import RetryPolicy
from integration_kit.server.inbox import InboxEvent, InboxState, SQLiteInbox
from integration_kit.server.webhook_processor import DEFAULT_HANDLER_RETRY, OrderingGuard, WebhookProcessor
from integration_kit.stores import MemoryStore

T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def inbox(tmp_path: Path, clock: ManualClock) -> SQLiteInbox:
    return SQLiteInbox(tmp_path / "inbox.db", clock=clock)


def put(inbox: SQLiteInbox, *ids: str, at: float = T0) -> None:
    inbox.put_many([InboxEvent(i, "shop", at + n, b'{"v": 1}') for n, i in enumerate(ids)])


def test_the_defaults(inbox: SQLiteInbox, clock: ManualClock, tmp_path: Path) -> None:
    assert RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=30.0) == DEFAULT_HANDLER_RETRY
    recorder = Recorder()
    leases: list[float] = []

    def handler(event: InboxEvent) -> None:
        with sqlite3.connect(tmp_path / "inbox.db") as db:
            leases.append(db.execute("SELECT claimed_until FROM webhook_inbox").fetchone()[0] - clock.now())
        raise ValueError("any error is worth a retry")

    processor = WebhookProcessor(inbox, handler, clock=clock, hooks=[recorder])
    assert (processor.lease, processor.max_claims, processor.handler) == (300.0, 10, handler)
    assert (processor.processed, processor.dead) == (0, 0)
    put(inbox, "a")
    assert processor.process_due() == 1
    assert leases[0] == 300.0
    started = [e for e in recorder.events if isinstance(e, AttemptStarted)]
    assert len(started) == 5  # five tries
    assert started[0].timeout == 120.0  # the deadline, retries included
    assert {e.integration for e in recorder.events} == {"webhooks"}
    [dead] = inbox.dead_letters()
    assert dead.last_error == "RetriesExhausted: ValueError: any error is worth a retry"


def test_the_lease_must_outlast_the_deadline(inbox: SQLiteInbox) -> None:
    with pytest.raises(ValueError, match=r"lease \(120.0s\) must exceed the handler's deadline \(120.0s\)"):
        WebhookProcessor(inbox, print, lease=120.0)
    with pytest.raises(ValueError, match="must exceed"):
        WebhookProcessor(inbox, print, lease=10.0, deadline=11.0)
    assert WebhookProcessor(inbox, print, lease=121.0).lease == 121.0
    assert WebhookProcessor(inbox, print, lease=1.0, deadline=None).lease == 1.0


def test_a_dead_letter_names_the_handlers_own_error_cut_short(
    inbox: SQLiteInbox, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(event: InboxEvent) -> None:
        if event.id == "long":
            raise RuntimeError("x" * 300)
        try:
            raise KeyError("the row")
        except KeyError as exc:
            raise RuntimeError("could not update") from exc

    recorder = Recorder()
    processor = WebhookProcessor(
        inbox, handler, name="orders", retry=RetryPolicy(max_attempts=2), clock=clock, hooks=[recorder]
    )
    put(inbox, "long", "chained")
    with caplog.at_level(logging.WARNING, logger="integration_kit.webhooks"):
        assert processor.process_due() == 2
    dead = {e.id: e.last_error for e in inbox.dead_letters()}
    assert dead["long"] == "RetriesExhausted: RuntimeError: " + "x" * 200
    assert dead["chained"] == "RetriesExhausted: KeyError: 'the row'"
    assert (processor.dead, processor.processed) == (2, 0)
    assert [r.getMessage() for r in caplog.records] == [
        "webhook long dead after RetriesExhausted",
        "webhook chained dead after RetriesExhausted",
    ]
    assert {e.integration for e in recorder.events if isinstance(e, CallFinished)} == {"orders"}


def test_one_pass_takes_at_most_its_limit_one_claim_at_a_time(inbox: SQLiteInbox, clock: ManualClock) -> None:
    seen: list[str] = []
    processor = WebhookProcessor(inbox, lambda e: seen.append(e.id), clock=clock)
    put(inbox, *(f"e{i:03}" for i in range(103)))
    assert processor.process_due(limit=2) == 2
    assert seen == ["e000", "e001"]
    assert processor.process_due() == 100  # the default limit
    assert processor.process_due() == 1
    assert (processor.processed, inbox.counts()[InboxState.DONE]) == (103, 103)


def test_a_poison_event_goes_dead_after_max_claims(inbox: SQLiteInbox, clock: ManualClock) -> None:
    processor = WebhookProcessor(inbox, print, max_claims=1, clock=clock, lease=200.0)
    put(inbox, "p")
    inbox.claim(lease=10)  # a process took it and died
    clock.advance(10)
    assert processor.process_due() == 0
    assert inbox.counts()[InboxState.DEAD] == 1


def test_a_replay_runs_only_what_it_moved(inbox: SQLiteInbox, clock: ManualClock) -> None:
    seen: list[str] = []
    broken = {"d1", "d2"}

    def handler(event: InboxEvent) -> None:
        if event.id in broken:
            raise RuntimeError("down")
        seen.append(event.id)

    processor = WebhookProcessor(inbox, handler, retry=RetryPolicy(max_attempts=1), clock=clock)
    put(inbox, "d1", "d2")
    processor.process_due()
    broken.clear()
    put(inbox, "fresh", at=T0 + 10)  # pending, newer than the dead letters
    assert processor.replay() == 2
    assert seen == ["d1", "d2"]
    assert processor.replay() == 0  # nothing dead: nothing runs
    broken.add("d3")
    put(inbox, "d3", "d4", at=T0 + 20)
    broken.add("d4")
    processor.process_due()
    broken.clear()
    assert processor.replay(["d4"]) == 1  # only the one named
    assert seen == ["d1", "d2", "fresh", "d4"]
    assert [e.id for e in inbox.dead_letters()] == ["d3"]


class FlakyInbox(SQLiteInbox):
    """Its first claim fails as an unreachable store would."""

    outages = 1

    def claim(self, *, lease: float, limit: int = 1, max_claims: int = 10) -> list[InboxEvent]:
        if self.outages:
            self.outages -= 1
            raise StoreUnavailable("locked", store="sqlite:x", operation="inbox.claim")
        return super().claim(lease=lease, limit=limit, max_claims=max_claims)


def test_the_background_loop_outlives_an_inbox_outage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    inbox = FlakyInbox(tmp_path / "inbox.db")
    done = threading.Event()
    processor = WebhookProcessor(inbox, lambda e: done.set())
    put(inbox, "a")
    with caplog.at_level(logging.WARNING, logger="integration_kit.webhooks"):
        halt = processor.start(poll=0.01)
        try:
            assert done.wait(10)
        finally:
            halt()
    assert processor.processed == 1
    assert [r.getMessage() for r in caplog.records] == ["webhook inbox unavailable; retrying in 0.01s"]
    exc_info = caplog.records[0].exc_info
    assert exc_info
    assert exc_info[0] is StoreUnavailable  # with the store's error and its traceback


def test_after_an_outage_the_loop_waits_its_poll_and_runs_as_a_daemon(tmp_path: Path) -> None:
    class Outage(SQLiteInbox):
        claims = 0
        again = threading.Event()

        def claim(self, *, lease: float, limit: int = 1, max_claims: int = 10) -> list[InboxEvent]:
            self.claims += 1
            if self.claims > 1:
                self.again.set()
            raise StoreUnavailable("locked", store="sqlite:x", operation="inbox.claim")

    inbox = Outage(tmp_path / "inbox.db")
    before = set(threading.enumerate())
    processor = WebhookProcessor(inbox, print)
    halt = processor.start(poll=30.0)
    try:
        [thread] = set(threading.enumerate()) - before
        assert thread.daemon  # never keeps the process alive
        assert not inbox.again.wait(0.5)  # waiting its 30 s poll, not claiming again at once
    finally:
        halt()
    assert inbox.claims == 1


def test_a_seeded_generator_makes_the_backoff_repeatable(inbox: SQLiteInbox, clock: ManualClock) -> None:
    def delays(seed: int) -> list[float]:
        recorder = Recorder()

        def handler(event: InboxEvent) -> None:
            raise RuntimeError("down")

        processor = WebhookProcessor(
            inbox, handler, clock=clock, rng=random.Random(seed), hooks=[recorder], name=f"s{seed}"
        )
        put(inbox, f"e{len(inbox.dead_letters())}")
        processor.process_due()
        return [e.delay for e in recorder.events if isinstance(e, RetryScheduled)]

    first, again = delays(7), delays(7)
    assert len(first) == 4
    assert first == again


def test_the_ordering_guard_drops_only_older_versions(inbox: SQLiteInbox, clock: ManualClock) -> None:
    store = MemoryStore()
    versions = {"a": 2.0, "b": 2.0, "c": 1.5, "d": 3.0}
    guard = OrderingGuard(store, key=lambda e: "order-7", version=lambda e: versions[e.id])
    seen: list[str] = []
    processor = WebhookProcessor(inbox, lambda e: seen.append(e.id), ordering=guard, clock=clock)
    put(inbox, "a", "b", "c", "d")
    processor.process_due()
    assert seen == ["a", "b", "d"]  # an equal version is not stale
    assert store.get("webhook-order:order-7") == b"3.0"
    assert inbox.get("c").state is InboxState.STALE  # type: ignore[union-attr]
    assert (processor.processed, processor.dead) == (3, 0)


def test_the_ordering_guard_never_moves_its_version_back() -> None:
    store = MemoryStore()
    guard = OrderingGuard(store, key=lambda e: e.source, version=lambda e: float(e.body), namespace="v:")
    guard.record(InboxEvent("1", "k", T0, b"5"))
    guard.record(InboxEvent("2", "k", T0, b"4"))
    assert store.get("v:k") == b"5.0"
    guard.record(InboxEvent("3", "k", T0, b"5"))
    guard.record(InboxEvent("4", "k", T0, b"6.5"))
    assert store.get("v:k") == b"6.5"
    assert guard.is_stale(InboxEvent("5", "k", T0, b"6"))
    assert not guard.is_stale(InboxEvent("6", "k", T0, b"6.5"))
    assert not guard.is_stale(InboxEvent("7", "other", T0, b"0"))


class Watched(WebhookProcessor):
    """A processor that notes each pass's limit."""

    def __init__(self, *args: object, **options: object) -> None:
        super().__init__(*args, **options)  # type: ignore[arg-type]
        self.limits: list[int] = []

    def process_due(self, limit: int = 100) -> int:
        self.limits.append(limit)
        return super().process_due(limit)


class OnePoll(threading.Event):
    """A stop event that ends the loop at its first wait, noting how long the loop meant to wait."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        self.set()
        return True


def test_the_loop_takes_batches_of_a_hundred_and_waits_its_poll_when_idle(
    inbox: SQLiteInbox, clock: ManualClock
) -> None:
    processor = Watched(inbox, print, clock=clock)
    put(inbox, *(f"e{i:03}" for i in range(101)))
    stop = OnePoll()
    processor.run(stop)
    assert processor.limits == [100, 100, 100]  # 100, then 1, then none: only then a wait
    assert stop.waits == [0.05]
    flaky = FlakyInbox(inbox.store)
    after_outage = OnePoll()
    WebhookProcessor(flaky, print, clock=clock).run(after_outage, poll=2.5)
    assert after_outage.waits == [2.5]  # an outage is waited out like an idle inbox


def test_start_runs_the_loop_with_its_poll(inbox: SQLiteInbox) -> None:
    polls: list[float] = []

    class Noted(WebhookProcessor):
        def run(self, stop: threading.Event, *, poll: float = 9.0, batch: int = 100) -> None:
            polls.append(poll)

    processor = Noted(inbox, print)
    processor.start()()
    processor.start(poll=0.5)()
    assert polls == [0.05, 0.5]
