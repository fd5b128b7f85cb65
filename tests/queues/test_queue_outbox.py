"""The outbox contract on SQLite and PostgreSQL, and the relay publishing to both brokers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from queue_brokers import BrokerEnv, amqp_available, broker_env, nats_url, run, session
from queue_servers import pg_dsn, unique_name

from integration_kit.clock import ManualClock
from integration_kit.engine.call import CallEngine
from integration_kit.errors import ConfigurationError
from integration_kit.policies.config import RetryPolicy
from integration_kit.queues.message import Message
from integration_kit.queues.outbox import Outbox, PostgresOutbox, SQLiteOutbox, in_key_order
from integration_kit.queues.publisher import Publisher
from integration_kit.queues.relay import OutboxRelay

pytestmark = pytest.mark.queues
FAST = RetryPolicy(max_attempts=100, base_delay=0.05, max_delay=0.2)
__all__ = ["amqp_available", "broker_env", "nats_url", "pg_dsn"]


class Backend:
    """An outbox plus a way to write business data and outbox rows in one application transaction."""

    def __init__(self, outbox: Outbox, connect: Any) -> None:
        self.outbox = outbox
        self.connect = connect

    def write(self, messages: list[Message], *, commit: bool = True) -> None:
        """One application transaction: a business row per message, and the message in the outbox."""
        connection = self.connect()
        try:
            if isinstance(connection, sqlite3.Connection):
                connection.execute("BEGIN")
            else:
                connection.execute("BEGIN")
            for message in messages:
                connection.execute(f"INSERT INTO {self.orders} (id) VALUES ('{message.message_id}')")
                self.outbox.add(connection, message)
            connection.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            connection.close()

    orders = "orders"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    clock = ManualClock(1000.0)
    if request.param == "sqlite":
        path = tmp_path / "app.db"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        outbox = SQLiteOutbox(path, clock=clock)
        b = Backend(outbox, lambda: sqlite3.connect(path, isolation_level=None))
        b.clock = clock  # type: ignore[attr-defined]
        yield b
        outbox.close()
        return
    import psycopg

    dsn = request.getfixturevalue("pg_dsn")
    schema = unique_name("ikq")
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"CREATE TABLE {schema}.orders (id TEXT PRIMARY KEY)")
    outbox = PostgresOutbox(dsn, schema=schema, clock=clock)
    b = Backend(outbox, lambda: psycopg.connect(dsn, autocommit=True))
    b.orders = f"{schema}.orders"
    b.clock = clock  # type: ignore[attr-defined]
    try:
        yield b
    finally:
        outbox.close()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_only_committed_messages_are_claimed(backend: Backend) -> None:
    kept, dropped = Message(b"kept"), Message(b"dropped")
    backend.write([kept])
    backend.write([dropped], commit=False)
    assert backend.outbox.pending() == 1
    rows = backend.outbox.claim("relay-a", 10, lease=30)
    assert [r.message.message_id for r in rows] == [kept.message_id]
    assert rows[0].message.body == b"kept"


def test_a_lease_keeps_other_relays_off_until_it_lapses(backend: Backend) -> None:
    backend.write([Message(b"x")])
    assert len(backend.outbox.claim("relay-a", 10, lease=30)) == 1
    assert backend.outbox.claim("relay-b", 10, lease=30) == []
    backend.clock.advance(31)  # type: ignore[attr-defined]  # relay-a died: its lease lapses
    assert len(backend.outbox.claim("relay-b", 10, lease=30)) == 1


def test_claims_keep_per_key_order_across_relays(backend: Backend) -> None:
    a1, b1, a2 = Message(b"a1", key="a"), Message(b"b1", key="b"), Message(b"a2", key="a")
    backend.write([a1, b1, a2])
    outbox = backend.outbox
    first = outbox.claim("relay-a", 1, lease=30)
    assert [r.message.body for r in first] == [b"a1"]
    second = outbox.claim("relay-b", 10, lease=30)
    assert [r.message.body for r in second] == [b"b1"]  # a2 must wait for a1
    assert outbox.mark_sent("relay-a", [first[0].seq]) == 1
    third = outbox.claim("relay-b", 10, lease=30)
    assert [r.message.body for r in third] == [b"a2"]


def test_release_counts_an_attempt_and_frees_the_rows(backend: Backend) -> None:
    backend.write([Message(b"x")])
    [row] = backend.outbox.claim("relay-a", 10, lease=30)
    backend.outbox.release("relay-b", [row.seq])  # not its lease: nothing happens
    assert backend.outbox.claim("relay-a", 10, lease=30) == []
    backend.outbox.release("relay-a", [row.seq])
    assert [r.seq for r in backend.outbox.claim("relay-a", 10, lease=30)] == [row.seq]


def test_sent_rows_are_not_pending_and_are_purged_later(backend: Backend) -> None:
    backend.write([Message(b"x"), Message(b"y")])
    rows = backend.outbox.claim("relay-a", 10, lease=30)
    backend.outbox.mark_sent("relay-a", [r.seq for r in rows])
    assert backend.outbox.pending() == 0
    assert backend.outbox.claim("relay-a", 10, lease=30) == []
    assert backend.outbox.purge(older_than=60) == 0
    backend.clock.advance(61)  # type: ignore[attr-defined]
    assert backend.outbox.purge(older_than=60) == 2


def test_in_key_order_keeps_only_unbroken_prefixes() -> None:
    candidates = [(1, "a"), (3, "a"), (4, "b"), (5, "")]
    unsent = [(1, "a"), (2, "a"), (3, "a"), (4, "b")]  # 2 is leased elsewhere: 3 must wait
    assert in_key_order(candidates, unsent) == [1, 4, 5]


def test_table_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteOutbox(tmp_path / "x.db", table="orders; DROP TABLE users")


def test_relay_publishes_everything_in_key_order_through_a_cut(broker_env: BrokerEnv, tmp_path: Path) -> None:
    async def body() -> None:
        path = tmp_path / "app.db"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        backend = Backend(SQLiteOutbox(path), lambda: sqlite3.connect(path, isolation_level=None))
        messages = [Message(f"{k}-{i}".encode(), key=k) for i in range(40) for k in ("a", "b")]
        for start in range(0, len(messages), 10):
            backend.write(messages[start : start + 10])
        topology = broker_env.topology()
        async with session(broker_env, topology) as admin:
            with broker_env.proxy() as proxy:
                broker = broker_env.make(topology, url=broker_env.via(proxy), connect_timeout=1.0)
                engine = CallEngine(name="relay", retry=RetryPolicy(max_attempts=2, base_delay=0.05))
                publisher = Publisher(broker, engine=engine, confirm_timeout=2.0)
                relay = OutboxRelay(backend.outbox, publisher, batch_size=16, backoff=FAST)
                assert await relay.run_once() == 16
                proxy.refuse()
                with pytest.raises(Exception):
                    await relay.run_once()
                assert relay.stats.failed_batches == 1
                proxy.heal()
                stats = await relay.run(until_empty=True)
                await broker.close()
            assert stats.published == len(messages)
            assert backend.outbox.pending() == 0
            seen: list[bytes] = []
            while len(seen) < len(messages):
                batch = await admin.fetch(50, timeout=2.0)
                assert batch, f"only {len(seen)} of {len(messages)} arrived"
                for d in batch:
                    seen.append(d.message.body)
                    await admin.ack(d)
            for key in ("a", "b"):
                order = [int(b.split(b"-")[1]) for b in seen if b.startswith(key.encode())]
                assert order == sorted(order)
                assert len(set(order)) == 40
        backend.outbox.close()

    run(body)
