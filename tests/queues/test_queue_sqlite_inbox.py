"""The transactional SQLite inbox's set-up and records, on real database files: the row it writes (consumer,
message id, the clock's time), consumers sharing a file, the lock wait it is given, a connection usable from the
thread that runs the consumer, the error when the file cannot be opened or a lock cannot be had, and closing.

What its transaction spans and its exactly-once effects are in ``test_queue_inbox.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from integration_kit.clock import ManualClock
from integration_kit.errors import StoreUnavailable
from integration_kit.queues.inbox import SQLiteInbox
from integration_kit.queues.message import Message

pytestmark = pytest.mark.queues


def records(path: Path) -> list[tuple[str, str, float]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT consumer, message_id, processed_at FROM ik_inbox ORDER BY rowid"))


async def noop(message: Message) -> None:
    return None


@pytest.mark.parametrize("transaction", ["handler", "effect"])
def test_the_record_names_the_consumer_the_message_and_the_clocks_time(tmp_path: Path, transaction: str) -> None:
    path = tmp_path / "inbox.db"
    default = SQLiteInbox(path, clock=ManualClock(1234.5), transaction=transaction)  # type: ignore[arg-type]
    billing = SQLiteInbox(path, consumer="billing", clock=ManualClock(99.0))
    message = Message(b"m", message_id="order-1")
    assert asyncio.run(default.process(message, noop)) is True
    assert not billing.seen("order-1")  # another consumer: its own record
    assert asyncio.run(billing.process(message, noop)) is True
    assert records(path) == [("default", "order-1", 1234.5), ("billing", "order-1", 99.0)]
    assert default.seen("order-1")
    assert not default.seen("order-2")
    assert (default.path, default.consumer, default.transaction) == (path, "default", transaction)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    default.close()
    billing.close()


def test_the_lock_wait_is_the_timeout_given(tmp_path: Path) -> None:
    def wait_of(inbox: SQLiteInbox) -> int:
        waits: list[int] = []

        async def handler(message: Message) -> None:
            waits.append(inbox.connection.execute("PRAGMA busy_timeout").fetchone()[0])

        asyncio.run(inbox.process(Message(b"x"), handler))
        inbox.close()
        return waits[0]

    assert wait_of(SQLiteInbox(tmp_path / "a.db")) == 30000  # milliseconds: 30 s by default
    assert wait_of(SQLiteInbox(tmp_path / "b.db", timeout=0.25)) == 250


def test_a_lock_held_by_another_process_is_a_store_outage(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", timeout=0.05)
    other = sqlite3.connect(tmp_path / "inbox.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            asyncio.run(inbox.process(Message(b"x"), noop))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (caught.value.store, caught.value.operation) == (f"sqlite:{tmp_path / 'inbox.db'}", "begin")
    assert "locked" in str(caught.value)
    assert asyncio.run(inbox.process(Message(b"x"), noop)) is True  # the lock is gone: it works again
    inbox.close()


def test_a_file_that_cannot_be_opened_is_a_store_outage(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        SQLiteInbox(tmp_path)  # a directory
    assert (caught.value.store, caught.value.operation) == (f"sqlite:{tmp_path}", "open")
    assert str(caught.value) == f"store sqlite:{tmp_path} unavailable during open: unable to open database file"
    assert isinstance(caught.value.__cause__, sqlite3.Error)


def test_an_inbox_made_on_one_thread_serves_a_consumer_on_another(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db", transaction="effect")
    results: list[bool] = []
    errors: list[BaseException] = []

    async def handler(message: Message) -> None:
        async with inbox.effect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS effects (id TEXT)")

    def consumer() -> None:
        try:
            results.append(asyncio.run(inbox.process(Message(b"x", message_id="t-1"), handler)))
            results.append(inbox.seen("t-1"))
        except BaseException as exc:  # the test thread reports it
            errors.append(exc)

    thread = threading.Thread(target=consumer)
    thread.start()
    thread.join(10)
    assert errors == []
    assert results == [True, True]
    inbox.close()


def test_close_closes_the_connection(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.db")
    inbox.close()
    with pytest.raises(sqlite3.ProgrammingError):
        inbox.seen("x")
