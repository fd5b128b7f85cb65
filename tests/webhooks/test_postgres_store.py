"""What the PostgreSQL delivery store writes and reads, on the shared server in a schema of the test's own.

The contract suite (``test_delivery_store_contract.py``) proves the behaviour shared with SQLite; this file pins
the rest: the schema name check, the connection's settings (autocommit: another store sees each write at once;
the connect timeout), the claim's edges (due at exactly now, lease end, order, limit, the fields returned), each
column ``record``, ``disable`` and ``enable`` write, the log's filters and order, reconnecting after ``close``,
and the operation and schema each driver error names (the transaction rolled back).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from postgres_server import DSN, postgres_or_skip
from redis_server import free_port
from store_operations import delivery_store_operations

from integration_kit.clock import ManualClock, WallClock
from integration_kit.errors import ConfigurationError, StoreUnavailable
from integration_kit.webhooks.delivery_store import AttemptLogEntry, DueDelivery, EndpointState
from integration_kit.webhooks.postgres_store import PostgresDeliveryStore

T0 = 1_700_000_000.25


@pytest.fixture
def made(schema: str) -> Iterator[tuple[PostgresDeliveryStore, ManualClock]]:
    clock = ManualClock(T0)
    store = PostgresDeliveryStore(DSN, schema=schema, clock=clock)
    yield store, clock
    store.close()


def row(schema: str, message_id: str, endpoint_id: str) -> tuple[Any, ...]:
    """The delivery's whole row, read on a connection of this test's own."""
    with psycopg.connect(DSN, autocommit=True) as connection:
        found = connection.execute(
            f"SELECT state, attempts, next_attempt_at, claimed_until, last_status, last_error, finished_at "
            f"FROM {schema}.webhook_deliveries WHERE message_id = %s AND endpoint_id = %s",
            (message_id, endpoint_id),
        ).fetchone()
    assert found is not None
    return tuple(found)


@pytest.mark.parametrize("bad", ["Upper", "1digit", "a-b", "a b", "", "x" * 64, "ok\n", "a;drop"])
def test_schema_must_be_a_plain_name(bad: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        PostgresDeliveryStore(DSN, schema=bad)
    assert str(caught.value) == f"PostgresDeliveryStore: schema must be a plain lower-case name, got {bad!r}"


def test_longest_name_name_repr_and_defaults() -> None:
    postgres_or_skip()
    longest = "z" + uuid.uuid4().hex[:8] + "_" * 53
    store = PostgresDeliveryStore(DSN, schema=longest)
    try:
        assert isinstance(store.clock, WallClock)
        assert store.name == f"postgresql://127.0.0.1:5432/postgres {longest}"
        assert repr(store) == f"PostgresDeliveryStore(schema={longest!r})"
        assert store._connection().info.get_parameters()["connect_timeout"] == "5"
    finally:
        store.close()
        with psycopg.connect(DSN, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {longest} CASCADE")


@pytest.mark.parametrize(("timeout", "sent"), [(2.9, "2"), (0.2, "1")])
def test_connect_timeout_whole_seconds_at_least_one(schema: str, timeout: float, sent: str) -> None:
    store = PostgresDeliveryStore(DSN, schema=schema, connect_timeout=timeout)
    try:
        assert store._connection().info.get_parameters()["connect_timeout"] == sent
    finally:
        store.close()


def test_unreachable_server_fails_opening_with_the_default_schema() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        PostgresDeliveryStore(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", connect_timeout=1)
    assert (caught.value.store, caught.value.operation) == ("postgresql integration_kit", "open")
    assert str(caught.value) == "store postgresql integration_kit unavailable during open: OperationalError"


def test_writes_are_seen_by_another_store_at_once(made: tuple[PostgresDeliveryStore, ManualClock], schema: str) -> None:
    store, clock = made
    other = PostgresDeliveryStore(DSN, schema=schema, clock=clock)
    try:
        assert store.enqueue("m1", "order.paid", b"\x00\xff", ["a"])
        assert other.delivery("m1", "a") == {
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": T0,
            "last_status": None,
            "last_error": None,
        }
        assert not other.enqueue("m1", "x", b"", ["b"])
        assert other.delivery("m1", "b") is None
    finally:
        other.close()


def test_claim_edges_order_limit_and_fields(made: tuple[PostgresDeliveryStore, ManualClock], schema: str) -> None:
    store, clock = made
    earlier = ManualClock(T0 - 2)
    past = PostgresDeliveryStore(DSN, schema=schema, clock=earlier)  # another worker, its clock behind
    try:
        store.enqueue("late", "t.late", b"L", ["a"])  # first in the table, last in time: due exactly now
        past.enqueue("mid", "t.mid", b"M", ["a"])
        earlier.advance(1)
        past.enqueue("early", "t.early", b"E", ["a"])
    finally:
        past.close()
    first = store.claim_due(lease=7.5, limit=2)
    assert first == [
        DueDelivery("mid", "a", "t.mid", b"M", 0, T0 - 2),
        DueDelivery("early", "a", "t.early", b"E", 0, T0 - 1),
    ]
    assert row(schema, "mid", "a")[3] == T0 + 7.5
    assert [d.message_id for d in store.claim_due(lease=7.5)] == ["late"]
    clock.advance(7)
    assert store.claim_due(lease=1) == []
    clock.advance(0.5)  # the lease's end itself is claimable
    assert [d.message_id for d in store.claim_due(lease=1)] == ["mid", "early", "late"]
    store.record(AttemptLogEntry("mid", "a", 1, clock.now(), 503, 0.1, "retry", "HTTP 503"), next_attempt_at=T0 + 8)
    assert row(schema, "mid", "a") == ("pending", 1, T0 + 8, 0.0, 503, "HTTP 503", None)
    clock.advance(0.5)
    [again] = store.claim_due(lease=1)  # released by the record; created when first enqueued, not when due
    assert (again.message_id, again.attempts, again.created_at) == ("mid", 1, T0 - 2)


def test_record_columns_and_the_uncounted_attempt(made: tuple[PostgresDeliveryStore, ManualClock], schema: str) -> None:
    store, _ = made
    store.enqueue("m", "t", b"{}", ["a"])
    store.record(AttemptLogEntry("m", "a", 1, T0, None, 0.0, "refused", "CircuitOpenError"), counted=False)
    assert row(schema, "m", "a") == ("pending", 0, T0, 0.0, None, "CircuitOpenError", None)
    assert store.log() == []
    store.record(AttemptLogEntry("m", "a", 1, T0 + 1, 410, 0.25, "failed", "Gone"))
    assert row(schema, "m", "a") == ("failed", 1, T0 + 1, 0.0, 410, "Gone", T0 + 1)
    assert store.log() == [AttemptLogEntry("m", "a", 1, T0 + 1, 410, 0.25, "failed", "Gone")]
    assert store.counts() == {"pending": 0, "delivered": 0, "failed": 1, "disabled": 0}
    assert store.next_due() is None


def test_log_filters_order_and_limit(made: tuple[PostgresDeliveryStore, ManualClock]) -> None:
    store, _ = made
    store.enqueue("m1", "t", b"{}", ["a", "b"])
    store.enqueue("m2", "t", b"{}", ["a"])
    entries = [
        AttemptLogEntry("m1", "b", 2, T0 + 1, 500, 0.1, "retry", "x"),
        AttemptLogEntry("m1", "a", 1, T0 + 1, 500, 0.1, "retry", "x"),
        AttemptLogEntry("m2", "a", 1, T0, 200, 0.1, "delivered", None),
    ]
    for entry in entries:
        store.record(entry, next_attempt_at=T0 + 10)
    assert store.log() == [entries[2], entries[1], entries[0]]
    assert store.log(message_id="m1") == [entries[1], entries[0]]
    assert store.log(endpoint_id="a") == [entries[2], entries[1]]
    assert store.log(message_id="m1", endpoint_id="a") == [entries[1]]
    assert store.log(limit=1) == [entries[2]]
    assert store.next_due() == T0 + 10


def test_disable_parks_only_pending_and_enable_resets(
    made: tuple[PostgresDeliveryStore, ManualClock], schema: str
) -> None:
    store, clock = made
    assert store.endpoint("a") == EndpointState("a")
    store.enqueue("done", "t", b"{}", ["a"])
    store.record(AttemptLogEntry("done", "a", 1, T0, 200, 0.1, "delivered", None))
    store.enqueue("wait", "t", b"{}", ["a", "b"])
    assert store.set_failing("a", T0 - 50) == T0 - 50
    clock.advance(5)
    assert store.disable("a", "gone for good")
    assert store.endpoint("a") == EndpointState("a", False, "gone for good", T0 - 50)
    assert row(schema, "wait", "a")[0::6] == ("disabled", T0 + 5)
    assert row(schema, "wait", "b")[0] == "pending"
    assert row(schema, "done", "a")[0::6] == ("delivered", T0)
    assert store.disable("b", "other")
    assert store.enable("nobody") == 0
    clock.advance(5)
    assert store.enable("a") == 1
    assert store.endpoint("a") == EndpointState("a", True, None, None)
    assert row(schema, "wait", "a") == ("pending", 0, T0 + 10, 0.0, None, None, None)
    assert store.counts() == {"pending": 1, "delivered": 1, "failed": 0, "disabled": 1}
    assert store.set_failing("fresh", None) is None
    assert store.endpoint("fresh") == EndpointState("fresh", True, None, None)


def test_close_then_use_reconnects(made: tuple[PostgresDeliveryStore, ManualClock]) -> None:
    store, _ = made
    store.enqueue("m", "t", b"{}", ["a"])
    store.close()
    store.close()
    assert store.counts()["pending"] == 1


def test_driver_errors_name_the_operation_and_roll_back(
    made: tuple[PostgresDeliveryStore, ManualClock], schema: str
) -> None:
    store, _ = made
    with pytest.raises(StoreUnavailable) as caught:
        store.enqueue("m", "t", b"{}", ["a", "nul\x00"])
    assert str(caught.value) == f"store postgresql {schema} unavailable during webhooks.enqueue: DataError"
    assert isinstance(caught.value.__cause__, psycopg.DataError)
    assert store.enqueue("m", "t", b"{}", ["a"])  # the failed enqueue left nothing behind
    with psycopg.connect(DSN, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")
    entry = AttemptLogEntry("m", "a", 1, T0, 200, 0.1, "delivered", None)
    steps = delivery_store_operations(store, "n", entry)
    for operation, step in steps.items():
        with pytest.raises(StoreUnavailable) as failed:
            step()
        assert (failed.value.operation, failed.value.store) == (operation, f"postgresql {schema}")


def test_the_defaults_of_claim_and_log(made: tuple[PostgresDeliveryStore, ManualClock]) -> None:
    """A claim takes a hundred deliveries and the log shows a thousand entries, unless told otherwise."""
    store, _ = made
    endpoints = [f"e{i:03d}" for i in range(101)]
    store.enqueue("m", "t", b"{}", endpoints)
    assert len(store.claim_due(lease=10)) == 100
    assert len(store.claim_due(lease=10)) == 1
    for attempt in range(1, 1002):
        store.record(AttemptLogEntry("m", "e000", attempt, T0, 500, 0.1, "retry", None), next_attempt_at=T0 + 60)
    entries = store.log()
    assert len(entries) == 1000
    assert entries[-1].attempt == 1000
