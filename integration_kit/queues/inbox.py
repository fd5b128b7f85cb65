"""The inbox: a consumer records the ids of processed messages, so a redelivered or republished one has its effect
once.

Two inboxes, by where the handler's effect lives:

- :class:`StoreInbox`, on any :class:`~integration_kit.stores.Store` (memory, SQLite, Redis), through the server
  side's :class:`~integration_kit.server.idempotency.IdempotencyGuard`: claim the id (a lease), run the handler,
  record it as done. Duplicates that arrive after it is done are acknowledged without running the handler. The
  one gap: a process that dies after the effect and before the record leaves only the lease, and after it lapses
  the message runs again. Use it for effects that are themselves idempotent or outside any database.
- :class:`SQLiteInbox`, transactional: the id is inserted in the same SQLite transaction as the handler's own
  writes (the handler writes through :attr:`SQLiteInbox.connection`), so the effect and the record commit
  together or not at all: exactly once, whatever crashes.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

from integration_kit.clock import Clock, SystemClock
from integration_kit.errors import StoreUnavailable
from integration_kit.queues.message import Message
from integration_kit.server.idempotency import Claim, IdempotencyGuard
from integration_kit.stores.base import Store

__all__ = ["DEFAULT_INBOX_TTL", "Handler", "Inbox", "SQLiteInbox", "StoreInbox"]

Handler = Callable[[Message], Awaitable[None]]
_T = TypeVar("_T")

#: How long a processed id is remembered (seconds): 7 days, longer than any broker keeps a redelivery around.
DEFAULT_INBOX_TTL = 7 * 24 * 3600.0


class Inbox(Protocol):
    """Runs a handler at most once per message id (per consumer name)."""

    async def process(self, message: Message, handler: Handler) -> bool:
        """Run ``handler(message)`` unless this message id was processed; return whether it ran.

        Raises what the handler raises (the id is then not recorded), or
        :class:`~integration_kit.errors.RequestInFlight` while another consumer holds the id.
        """
        ...


class StoreInbox:
    """An inbox on a :class:`~integration_kit.stores.Store`, keyed ``inbox:<consumer>:<message id>``.

    ``lease`` (seconds, default 60) must exceed the longest handler run; ``ttl`` is how long a processed id is
    remembered (default :data:`DEFAULT_INBOX_TTL`). A message id seen again with another body raises
    :class:`~integration_kit.errors.IdempotencyKeyReused` (the consumer dead-letters it).
    """

    def __init__(
        self,
        store: Store,
        *,
        consumer: str = "default",
        lease: float = 60.0,
        ttl: float = DEFAULT_INBOX_TTL,
        clock: Clock | None = None,
    ) -> None:
        self.guard = IdempotencyGuard(store, ttl=ttl, lease=lease, clock=clock, namespace=f"inbox:{consumer}:")
        self._blocking = store.blocking

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        return await asyncio.to_thread(fn, *args) if self._blocking else fn(*args)

    async def process(self, message: Message, handler: Handler) -> bool:
        """Claim the id, run the handler, record the id as processed (see the module docstring)."""
        fingerprint = hashlib.sha256(message.body).hexdigest()
        begun = await self._run(self.guard.begin, message.message_id, fingerprint)
        if not isinstance(begun, Claim):
            return False  # completed before: a duplicate
        try:
            await handler(message)
        except BaseException:
            await asyncio.shield(self._run(self.guard.release, begun))
            raise
        await self._run(self.guard.complete, begun, b"")
        return True


_current: contextvars.ContextVar[sqlite3.Connection] = contextvars.ContextVar("ik_sqlite_inbox")


class SQLiteInbox:
    """A transactional inbox in a SQLite file: the processed id and the handler's writes commit together.

    Inside the handler, :attr:`connection` is the open transaction's connection: write the effect through it and
    do not commit. Transactions on one inbox run one at a time (SQLite has one writer); ``timeout`` (seconds,
    default 30) is how long a transaction waits for another process's lock. The table is ``ik_inbox``.
    """

    def __init__(
        self, path: str | Path, *, consumer: str = "default", timeout: float = 30.0, clock: Clock | None = None
    ) -> None:
        self.path = Path(path)
        self.consumer = consumer
        self.clock: Clock = clock or SystemClock()
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS ik_inbox (consumer TEXT NOT NULL, message_id TEXT NOT NULL, "
                "processed_at REAL NOT NULL, PRIMARY KEY (consumer, message_id))"
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(str(exc), store=f"sqlite:{self.path}", operation="open") from exc
        self._lock = asyncio.Lock()

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection of the transaction a handler runs in (``LookupError`` outside a handler)."""
        return _current.get()

    async def process(self, message: Message, handler: Handler) -> bool:
        """Insert the id and run the handler in one transaction; a duplicate id rolls back and returns ``False``."""
        async with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(str(exc), store=f"sqlite:{self.path}", operation="begin") from exc
            committed = False
            try:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO ik_inbox (consumer, message_id, processed_at) VALUES (?, ?, ?)",
                    (self.consumer, message.message_id, self.clock.now()),
                ).rowcount
                if not inserted:
                    return False
                token = _current.set(db)
                try:
                    await handler(message)
                finally:
                    _current.reset(token)
                db.execute("COMMIT")
                committed = True
                return True
            finally:
                if not committed:
                    db.execute("ROLLBACK")

    def seen(self, message_id: str) -> bool:
        """Whether ``message_id`` was processed by this consumer."""
        row = self._db.execute(
            "SELECT 1 FROM ik_inbox WHERE consumer = ? AND message_id = ?", (self.consumer, message_id)
        ).fetchone()
        return row is not None

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()
