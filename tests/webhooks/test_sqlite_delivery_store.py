"""The SQLite delivery store's own rules, on real database files and a :class:`ManualClock`: what enqueue, claim
and record write (due times, leases, attempt counts, finish times, the log), the boundaries of "due" and of a
lease, which deliveries disabling and enabling an endpoint move, the log's filters and order, the durability of
each write, and who closes the file.

The behaviour shared with the PostgreSQL store is in ``test_delivery_store_contract.py``; this file pins what that
suite leaves open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from store_operations import delivery_store_operations

from integration_kit.clock import ManualClock
from integration_kit.errors import StoreUnavailable
from integration_kit.stores import SQLiteStore
from integration_kit.webhooks.delivery_store import (
    AttemptLogEntry,
    DueDelivery,
    EndpointState,
    SQLiteDeliveryStore,
    record_parameters,
)

T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


@pytest.fixture
def store(path: Path, clock: ManualClock) -> SQLiteDeliveryStore:
    return SQLiteDeliveryStore(path, clock=clock)


def row(path: Path, message_id: str, endpoint_id: str) -> dict[str, Any]:
    with sqlite3.connect(path) as db:
        cursor = db.execute(
            "SELECT * FROM webhook_deliveries WHERE message_id = ? AND endpoint_id = ?", (message_id, endpoint_id)
        )
        values = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], values, strict=True))


def entry(message_id: str, attempt: int, at: float, outcome: str, status: int | None = 500) -> AttemptLogEntry:
    return AttemptLogEntry(message_id, "a", attempt, at, status, 0.25, outcome, None if status == 200 else "err")


def test_enqueue_writes_the_message_and_due_deliveries(
    store: SQLiteDeliveryStore, path: Path, clock: ManualClock
) -> None:
    store.set_failing("known", 5.0)  # an endpoint row that is enabled
    assert store.enqueue("m1", "order.paid", b"\x00{}", ["a", "known"])
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT * FROM webhook_messages").fetchall() == [("m1", "order.paid", b"\x00{}", T0)]
    assert row(path, "m1", "known")["state"] == "pending"
    assert row(path, "m1", "a") == {
        "message_id": "m1",
        "endpoint_id": "a",
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": T0,
        "claimed_until": 0,
        "last_status": None,
        "last_error": None,
        "finished_at": None,
    }
    assert store.claim_due(lease=10) == [
        DueDelivery("m1", "a", "order.paid", b"\x00{}", 0, T0),
        DueDelivery("m1", "known", "order.paid", b"\x00{}", 0, T0),
    ]
    assert row(path, "m1", "a")["claimed_until"] == T0 + 10
    assert repr(store) == f"SQLiteDeliveryStore('sqlite:{path}')"


def test_claims_take_the_earliest_due_first_and_respect_the_boundaries(
    store: SQLiteDeliveryStore, clock: ManualClock
) -> None:
    for name in ("m1", "m2", "m3"):
        store.enqueue(name, "t", b"{}", ["a"])
    store.record(entry("m1", 1, T0, "retry"), next_attempt_at=T0 + 20)
    store.record(entry("m2", 1, T0, "retry"), next_attempt_at=T0 + 10)
    assert [d.message_id for d in store.claim_due(lease=100)] == ["m3"]
    clock.advance(10)  # m2 is due exactly now
    assert [d.message_id for d in store.claim_due(lease=5)] == ["m2"]
    assert store.claim_due(lease=5) == []
    clock.advance(5)  # m2's lease ends exactly now
    assert [d.message_id for d in store.claim_due(lease=5)] == ["m2"]
    clock.advance(5)  # m1 is due, m2's second lease ends
    assert [(d.message_id, d.attempts) for d in store.claim_due(lease=5)] == [("m2", 1), ("m1", 1)]


def test_a_claim_takes_a_hundred_by_default(store: SQLiteDeliveryStore) -> None:
    for i in range(101):
        store.enqueue(f"m{i}", "t", b"{}", ["a"])
    assert len(store.claim_due(lease=5)) == 100
    assert len(store.claim_due(lease=5)) == 1


def test_record_moves_each_outcome_to_its_state(store: SQLiteDeliveryStore, path: Path, clock: ManualClock) -> None:
    outcomes = {"delivered": "delivered", "failed": "failed", "disabled": "disabled", "retry": "pending"}
    for n, outcome in enumerate(outcomes):
        store.enqueue(f"m{n}", "t", b"{}", ["a"])
        store.claim_due(lease=100)
        store.record(entry(f"m{n}", 1, T0 + 1, outcome, 200 if outcome == "delivered" else 503))
        got = row(path, f"m{n}", "a")
        assert got["state"] == outcomes[outcome]
        assert (got["attempts"], got["claimed_until"], got["next_attempt_at"]) == (1, 0, T0 + 1)
        assert got["finished_at"] == (None if outcome == "retry" else T0 + 1)
    assert store.counts() == {"pending": 1, "delivered": 1, "failed": 1, "disabled": 1}
    assert row(path, "m1", "a")["last_status"] == 503
    assert row(path, "m1", "a")["last_error"] == "err"
    assert store.delivery("m1", "a") == {
        "state": "failed",
        "attempts": 1,
        "next_attempt_at": T0 + 1,
        "last_status": 503,
        "last_error": "err",
    }
    assert store.delivery("m1", "missing") is None


def test_an_uncounted_record_logs_nothing_and_counts_nothing(store: SQLiteDeliveryStore, path: Path) -> None:
    store.enqueue("m", "t", b"{}", ["a"])
    store.record(entry("m", 1, T0, "refused", None), next_attempt_at=T0 + 7, counted=False)
    assert store.log() == []
    got = row(path, "m", "a")
    assert (got["state"], got["attempts"], got["next_attempt_at"]) == ("pending", 0, T0 + 7)
    assert record_parameters(entry("m", 1, T0, "refused", None), next_attempt_at=None, counted=False)[1] == (
        "pending",
        0,
        T0,
        None,
        "err",
        None,
        "m",
        "a",
    )


def test_the_log_filters_orders_and_limits(store: SQLiteDeliveryStore) -> None:
    for name in ("m1", "m2"):
        store.enqueue(name, "t", b"{}", ["a", "b"])
    store.record(AttemptLogEntry("m1", "b", 1, T0 + 3, 500, 0.1, "retry", "x"), next_attempt_at=T0 + 9)
    store.record(AttemptLogEntry("m1", "a", 2, T0 + 1, 500, 0.1, "retry", "x"), next_attempt_at=T0 + 9)
    store.record(AttemptLogEntry("m1", "a", 1, T0 + 1, 500, 0.1, "retry", "x"), next_attempt_at=T0 + 9)
    store.record(AttemptLogEntry("m2", "a", 1, T0 + 2, 200, 0.2, "delivered", None))
    assert [(e.message_id, e.endpoint_id, e.attempt) for e in store.log()] == [
        ("m1", "a", 1),
        ("m1", "a", 2),
        ("m2", "a", 1),
        ("m1", "b", 1),
    ]
    assert [e.attempt for e in store.log(message_id="m1", endpoint_id="a")] == [1, 2]
    assert [e.message_id for e in store.log(endpoint_id="a")] == ["m1", "m1", "m2"]
    assert [e.endpoint_id for e in store.log(message_id="m1")] == ["a", "a", "b"]
    assert len(store.log(limit=2)) == 2
    assert store.log(message_id="m2") == [AttemptLogEntry("m2", "a", 1, T0 + 2, 200, 0.2, "delivered", None)]


def test_the_log_keeps_a_thousand_by_default(store: SQLiteDeliveryStore) -> None:
    store.enqueue("m", "t", b"{}", ["a"])
    for attempt in range(1001):
        store.record(entry("m", attempt, T0, "retry"), next_attempt_at=T0)
    assert len(store.log()) == 1000


def test_disabling_parks_only_pending_deliveries_and_enabling_makes_them_due_now(
    store: SQLiteDeliveryStore, path: Path, clock: ManualClock
) -> None:
    store.enqueue("done", "t", b"{}", ["a"])
    store.record(entry("done", 1, T0, "delivered", 200))
    store.enqueue("waiting", "t", b"{}", ["a", "b"])
    store.record(entry("waiting", 1, T0, "retry"), next_attempt_at=T0 + 500)
    store.set_failing("a", T0 - 100)
    clock.advance(1)
    assert store.disable("a", "410 Gone") is True
    assert store.endpoint("a") == EndpointState("a", False, "410 Gone", T0 - 100)
    assert (row(path, "waiting", "a")["state"], row(path, "waiting", "a")["finished_at"]) == ("disabled", T0 + 1)
    assert row(path, "done", "a")["state"] == "delivered"
    assert row(path, "waiting", "b")["state"] == "pending"
    clock.advance(1)
    store.enable("b")  # another endpoint: nothing of a's moves
    assert row(path, "waiting", "a")["state"] == "disabled"
    assert store.enable("a") == 1
    assert store.endpoint("a") == EndpointState("a", True, None, None)
    got = row(path, "waiting", "a")
    assert (got["state"], got["next_attempt_at"], got["finished_at"]) == ("pending", T0 + 2, None)
    assert store.enable("a") == 0


def test_next_due_looks_at_pending_deliveries_only(store: SQLiteDeliveryStore, clock: ManualClock) -> None:
    assert store.next_due() is None
    store.enqueue("m1", "t", b"{}", ["a"])
    store.record(entry("m1", 1, T0, "failed"))
    clock.advance(3)
    store.enqueue("m2", "t", b"{}", ["a"])
    assert store.next_due() == T0 + 3
    assert isinstance(store.next_due(), float)


def test_an_endpoint_never_seen_is_enabled_and_not_failing(store: SQLiteDeliveryStore) -> None:
    assert store.endpoint("new") == EndpointState("new")
    assert store.set_failing("new", 7) == 7.0
    assert isinstance(store.set_failing("new", 9), float)
    assert store.endpoint("new") == EndpointState("new", True, None, 7.0)


def test_writes_that_move_deliveries_commit_with_a_full_sync(store: SQLiteDeliveryStore) -> None:
    full, normal = 2, 1

    def synchronous() -> int:
        return int(store.store._connection().execute("PRAGMA synchronous").fetchone()[0])

    reads = [
        lambda: store.claim_due(lease=1.0),
        lambda: store.endpoint("a"),
        store.log,
        store.next_due,
        store.counts,
        lambda: store.delivery("m", "a"),
    ]
    writes = [
        lambda: store.enqueue("m", "t", b"{}", ["a"]),
        lambda: store.record(entry("m", 1, T0, "retry"), next_attempt_at=T0),
        lambda: store.set_failing("a", 1.0),
        lambda: store.disable("a", "x"),
        lambda: store.enable("a"),
    ]
    assert synchronous() == normal  # creating the tables
    for n, write in enumerate(writes):
        write()
        assert synchronous() == full, n
        reads[n]()
        assert synchronous() == normal, n
    reads[-1]()
    assert synchronous() == normal


def test_a_store_closes_only_the_file_it_opened(path: Path, tmp_path: Path) -> None:
    owned = SQLiteDeliveryStore(path)
    owned.enqueue("m", "t", b"{}", ["a"])
    owned.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        owned.counts()
    shared = SQLiteStore(tmp_path / "shared.db")
    borrowed = SQLiteDeliveryStore(shared)
    borrowed.close()
    assert SQLiteDeliveryStore(shared).counts()["pending"] == 0
    shared.close()


def test_each_operation_names_itself_when_the_database_fails(path: Path) -> None:
    shared = SQLiteStore(path)
    store = SQLiteDeliveryStore(shared)
    shared.close()  # every statement now fails as an unreachable database would
    operations = delivery_store_operations(store, "m", entry("m", 1, T0, "retry"))
    calls = {**operations, "open": lambda: SQLiteDeliveryStore(shared)}
    for operation, call in calls.items():
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert caught.value.operation == operation
        assert caught.value.store == f"sqlite:{path}"
