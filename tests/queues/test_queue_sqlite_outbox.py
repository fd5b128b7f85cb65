"""The SQLite outbox's own rules, on real database files and a :class:`ManualClock`: the table it makes, the row
``add`` writes, the lease a claim sets and its boundary, what marking and releasing change (only the owner's rows),
the purge's boundary, the names it accepts, and the operation named when the database fails; and the key-order
rule on its own.

The contract shared with PostgreSQL and the relay are in ``test_queue_outbox.py``.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from integration_kit.clock import ManualClock
from integration_kit.errors import ConfigurationError, StoreUnavailable
from integration_kit.queues.message import Message
from integration_kit.queues.outbox import SQLiteOutbox, in_key_order

pytestmark = pytest.mark.queues

T0 = 1000.0


def rows(path: Path, table: str = "ik_outbox") -> list[dict[str, Any]]:
    with sqlite3.connect(path) as db:
        cursor = db.execute(f"SELECT * FROM {table} ORDER BY seq")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def write(outbox: SQLiteOutbox, *messages: Message) -> None:
    connection = sqlite3.connect(outbox.path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        for message in messages:
            outbox.add(connection, message)
        connection.execute("COMMIT")
    finally:
        connection.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def outbox(tmp_path: Path, clock: ManualClock) -> SQLiteOutbox:
    return SQLiteOutbox(tmp_path / "app.db", clock=clock)


def test_the_table_the_row_and_the_defaults(outbox: SQLiteOutbox, tmp_path: Path) -> None:
    assert outbox.table == "ik_outbox"
    with sqlite3.connect(tmp_path / "app.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"ik_outbox", "ik_outbox_unsent"} <= names
    assert outbox._db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000  # 30 s for the write lock
    message = Message(b"\x00body", key="order-7", message_id="m-1", headers={"tenant": "acme"})
    write(outbox, message)
    [row] = rows(tmp_path / "app.db")
    assert {k: row[k] for k in ("message_id", "key", "body", "created", "attempts", "lease_owner", "sent_at")} == {
        "message_id": "m-1",
        "key": "order-7",
        "body": b"\x00body",
        "created": T0,
        "attempts": 0,
        "lease_owner": None,
        "sent_at": None,
    }
    assert row["headers"] == json.dumps(message.wire_headers(), separators=(",", ":"))
    [claimed] = outbox.claim("relay", 10, lease=5)
    assert (claimed.message.message_id, claimed.message.key, claimed.message.body) == ("m-1", "order-7", b"\x00body")
    assert claimed.message.headers == {"tenant": "acme"}


def test_a_table_of_its_own_and_a_lock_wait_of_its_own(tmp_path: Path) -> None:
    outbox = SQLiteOutbox(tmp_path / "app.db", table="events_2", timeout=0.5)
    write(outbox, Message(b"x"))
    assert len(rows(tmp_path / "app.db", "events_2")) == 1
    assert outbox._db.execute("PRAGMA busy_timeout").fetchone()[0] == 500
    outbox.close()


@pytest.mark.parametrize("name", ["", "2events", "Events", "events-2", "events 2", "ik_outbox;"])
def test_table_names_are_plain_lower_case_identifiers(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigurationError, match="outbox table name must be lower-case letters, digits and _"):
        SQLiteOutbox(tmp_path / "app.db", table=name)


def test_a_claim_leases_rows_to_its_owner_until_the_lease_ends(
    outbox: SQLiteOutbox, clock: ManualClock, tmp_path: Path
) -> None:
    write(outbox, Message(b"1"), Message(b"2"), Message(b"3"))
    assert [r.message.body for r in outbox.claim("a", 2, lease=30)] == [b"1", b"2"]
    leased = rows(tmp_path / "app.db")
    assert [(r["lease_owner"], r["lease_until"]) for r in leased] == [("a", T0 + 30), ("a", T0 + 30), (None, None)]
    clock.advance(30)  # exactly at the end of the lease: still a's
    assert [r.message.body for r in outbox.claim("b", 10, lease=30)] == [b"3"]
    clock.advance(0.5)
    assert [r.message.body for r in outbox.claim("b", 10, lease=30)] == [b"1", b"2"]
    assert outbox.claim("c", 10, lease=30) == []


def test_marking_sent_stamps_the_time_and_counts_the_rows(
    outbox: SQLiteOutbox, clock: ManualClock, tmp_path: Path
) -> None:
    write(outbox, Message(b"1"), Message(b"2"))
    seqs = [r.seq for r in outbox.claim("a", 10, lease=30)]
    clock.advance(3)
    assert outbox.mark_sent("a", []) == 0
    assert outbox.mark_sent("a", seqs) == 2
    assert [(r["sent_at"], r["lease_owner"], r["lease_until"]) for r in rows(tmp_path / "app.db")] == [
        (T0 + 3, None, None)
    ] * 2
    assert outbox.pending() == 0


def test_a_release_counts_an_attempt_on_the_owners_rows_only(outbox: SQLiteOutbox, tmp_path: Path) -> None:
    write(outbox, Message(b"1"), Message(b"2"))
    [one] = outbox.claim("a", 1, lease=30)
    [two] = outbox.claim("b", 1, lease=30)
    outbox.release("a", [one.seq, two.seq])
    outbox.release("a", [])
    got = rows(tmp_path / "app.db")
    assert [(r["attempts"], r["lease_owner"], r["lease_until"]) for r in got] == [(1, None, None), (0, "b", T0 + 30)]


def test_the_purge_keeps_rows_sent_exactly_at_the_cutoff(outbox: SQLiteOutbox, clock: ManualClock) -> None:
    write(outbox, Message(b"1"), Message(b"2"))
    [first, second] = outbox.claim("a", 10, lease=30)
    outbox.mark_sent("a", [first.seq])
    clock.advance(10)
    outbox.mark_sent("a", [second.seq])
    clock.advance(50)
    assert outbox.purge(older_than=50) == 1  # sent 60 s ago; the other exactly 50 s ago stays
    assert outbox.purge(older_than=49) == 1


def test_each_operation_names_itself_when_the_database_fails(outbox: SQLiteOutbox, tmp_path: Path) -> None:
    write(outbox, Message(b"1"))
    outbox.close()
    for operation, call in {
        "outbox claim": lambda: outbox.claim("a", 1, lease=1),
        "outbox mark": lambda: outbox.mark_sent("a", [1]),
        "outbox release": lambda: outbox.release("a", [1]),
    }.items():
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert (caught.value.store, caught.value.operation) == (f"sqlite:{tmp_path / 'app.db'}", operation)
        assert str(caught.value).endswith("Cannot operate on a closed database.")
    with pytest.raises(StoreUnavailable) as opening:
        SQLiteOutbox(tmp_path)  # a directory
    assert (opening.value.store, opening.value.operation) == (f"sqlite:{tmp_path}", "outbox open")
    assert str(opening.value).endswith("unable to open database file")


def test_a_claim_that_cannot_take_the_write_lock_rolls_back_and_says_so(outbox: SQLiteOutbox, tmp_path: Path) -> None:
    write(outbox, Message(b"1"))
    holder = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    outbox._db.execute("PRAGMA busy_timeout = 10")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            outbox.claim("a", 10, lease=30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [r.message.body for r in outbox.claim("a", 10, lease=30)] == [b"1"]  # no transaction left open


def test_in_key_order() -> None:
    assert in_key_order([], []) == []
    assert in_key_order([(2, ""), (1, "")], []) == [1, 2]  # keyless rows are unordered, returned by seq
    assert in_key_order([(1, "a"), (2, "a")], [(1, "a"), (2, "a")]) == [1, 2]
    assert in_key_order([(2, "a"), (3, "b")], [(1, "a"), (2, "a"), (3, "b")]) == [3]  # 1 is leased elsewhere
    assert in_key_order([(1, "a"), (3, "a")], [(1, "a"), (2, "a"), (3, "a")]) == [1]  # 2 skipped: 3 waits
    assert in_key_order([(5, "a"), (1, "a")], [(1, "a"), (5, "a")]) == [1, 5]


def test_a_claim_failing_inside_its_transaction_rolls_it_back(outbox: SQLiteOutbox, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "app.db") as other:
        other.execute("DROP TABLE ik_outbox")  # the claim's SELECT fails after its BEGIN IMMEDIATE
    with pytest.raises(StoreUnavailable, match="no such table") as caught:
        outbox.claim("a", 10, lease=30)
    assert caught.value.operation == "outbox claim"
    outbox.create(outbox._db)
    assert outbox.claim("a", 10, lease=30) == []  # no transaction was left open
    write(outbox, Message(b"1"))
    assert [r.message.body for r in outbox.claim("a", 10, lease=30)] == [b"1"]


@pytest.mark.parametrize("name", ["a", "a1", "_", "abcdefghijklmnopqrstuvwxyz0123456789_"])
def test_every_plain_name_is_accepted(tmp_path: Path, name: str) -> None:
    outbox = SQLiteOutbox(tmp_path / "app.db", table=name)
    write(outbox, Message(b"x"))
    assert outbox.pending() == 1
    outbox.close()


def test_a_keyed_message_with_an_empty_body_is_claimed(outbox: SQLiteOutbox) -> None:
    write(outbox, Message(b"", key="k"), Message(b"", key="k"), Message(b""))
    assert [(r.message.key, r.message.body) for r in outbox.claim("a", 10, lease=30)] == [
        ("k", b""),
        ("k", b""),
        ("", b""),
    ]
