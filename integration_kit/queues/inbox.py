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

SQLite has one writer, so a transaction that spans a whole handler makes handlers run one at a time: a consumer
with ``concurrency=16`` whose handler waits 100 ms on a downstream call applies 10 messages a second, not 160.
``SQLiteInbox(transaction="effect")`` keeps the transaction to the effect: handlers run concurrently, the slow
part (a downstream call, made idempotent with the message id as its idempotency key) runs outside it, and only
``async with inbox.effect() as db:`` is the transaction that records the id with the handler's writes::

    inbox = SQLiteInbox("app.db", consumer="fulfilment", transaction="effect")

    async def handle(message: Message) -> None:
        reservation = await warehouse.reserve(message)        # concurrent; repeated at most on a redelivery
        async with inbox.effect() as db:                     # one at a time, milliseconds
            db.execute("INSERT INTO reservations VALUES (?, ?)", (message.message_id, reservation))
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from integration_kit.clock import Clock, SystemClock
from integration_kit.errors import StoreUnavailable
from integration_kit.queues.message import Message
from integration_kit.server.idempotency import Claim, IdempotencyGuard
from integration_kit.stores.base import Store

__all__ = ["DEFAULT_INBOX_TTL", "Handler", "Inbox", "SQLiteInbox", "StoreInbox"]

Handler = Callable[[Message], Awaitable[None]]
_T = TypeVar("_T")

logger = logging.getLogger("integration_kit.queues")

#: How long a processed id is remembered (seconds): 7 days, longer than any broker keeps a redelivery around.
DEFAULT_INBOX_TTL = 7 * 24 * 3600.0


class Inbox(Protocol):
    """Runs a handler at most once per message id (per consumer name)."""

    async def process(self, message: Message, handler: Handler) -> bool:
        """Run ``handler(message)`` unless this message id was processed; return whether it ran.

        Raises what the handler raises (the id is then not recorded), or
        :class:`~integration_kit.server.errors.RequestInFlight` while another consumer holds the id.
        """
        ...


class StoreInbox:
    """An inbox on a :class:`~integration_kit.stores.Store`, keyed ``inbox:<consumer>:<message id>``.

    ``lease`` (seconds, default 60) is how long a claim outlives a process that died holding it; while a handler
    runs, its claim is renewed every third of the lease, so a handler slower than the lease still keeps other
    consumers off its message. ``ttl`` is how long a processed id is remembered (default
    :data:`DEFAULT_INBOX_TTL`). A message id seen again with another body raises
    :class:`~integration_kit.server.errors.IdempotencyKeyReused` (the consumer dead-letters it).
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
        """Claim the id, run the handler (renewing the claim), record the id as processed (see the module
        docstring). Raises what the handler raises (the claim is released),
        :class:`~integration_kit.server.errors.RequestInFlight` while another consumer holds the id, or
        :class:`~integration_kit.errors.StoreUnavailable`."""
        fingerprint = hashlib.sha256(message.body).hexdigest()
        begun = await self._run(self.guard.begin, message.message_id, fingerprint)
        if not isinstance(begun, Claim):
            return False  # completed before: a duplicate
        renewal = _Renewal(self, begun, message.message_id)  # a timer: a handler that never waits costs no task
        try:
            await handler(message)
        except BaseException:
            await asyncio.shield(self._settle(renewal, handled=False))
            raise
        try:
            await renewal.stop()
        except asyncio.CancelledError:  # the caller is being cancelled: the handler's success is written all the same
            await asyncio.shield(self._settle(renewal, handled=True))
            raise
        return await self._settle(renewal, handled=True)

    async def _settle(self, renewal: _Renewal, *, handled: bool) -> bool:
        """Stop renewing (at once if stopped already), then record the id as processed (``handled``) or release
        the claim; whether it was recorded. :meth:`process` shields it when its caller is cancelled meanwhile: the
        caller gets its ``CancelledError`` at once (never swallowed), and the handler's outcome is still written."""
        await renewal.stop()
        if not handled:
            await self._run(self.guard.release, renewal.claim)
            return False
        if not await self._run(self.guard.complete, renewal.claim, b""):
            logger.warning("inbox: the claim on %s lapsed before its handler finished", renewal.message_id)
        return True


class _Renewal:
    """Renews a :class:`StoreInbox` claim every third of the lease while its handler runs; :attr:`claim` is the
    latest. The first renewal is a timer, so a handler that finishes sooner costs neither a task nor a wait."""

    __slots__ = ("busy", "claim", "handle", "inbox", "message_id", "stopped", "task")

    def __init__(self, inbox: StoreInbox, claim: Claim, message_id: str) -> None:
        self.inbox = inbox
        self.claim = claim
        self.message_id = message_id
        self.task: asyncio.Task[None] | None = None
        self.busy = False  # a renewal is at the store: let it finish, or the claim read after it may be stale
        self.stopped = False
        self.handle = asyncio.get_running_loop().call_later(inbox.guard.lease / 3, self._start)

    def _start(self) -> None:
        self.task = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        guard = self.inbox.guard
        while not self.stopped:
            self.busy = True
            try:
                renewed = await self.inbox._run(guard.renew, self.claim)
            except StoreUnavailable as exc:
                logger.warning("inbox: could not renew the claim on %s: %s", self.message_id, exc)
            else:
                if renewed is None:
                    logger.warning("inbox: the claim on %s lapsed while its handler ran", self.message_id)
                    return
                self.claim = renewed
            finally:
                self.busy = False
            if not self.stopped:
                await asyncio.sleep(guard.lease / 3)

    async def stop(self) -> None:
        """Stop renewing (waiting for a renewal under way, so :attr:`claim` is the stored one)."""
        self.stopped = True
        self.handle.cancel()
        if self.task is None:
            return
        if not self.busy:
            self.task.cancel()
        try:
            await asyncio.shield(self.task)  # a caller cancelled meanwhile leaves a renewal under way to finish
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller itself is being cancelled: never swallow that


_current: contextvars.ContextVar[sqlite3.Connection] = contextvars.ContextVar("ik_sqlite_inbox")
_pending: contextvars.ContextVar[_Pending] = contextvars.ContextVar("ik_sqlite_inbox_pending")


class _Pending:
    """One message a handler runs for in ``transaction="effect"`` mode, and whether its id was recorded."""

    __slots__ = ("duplicate", "inbox", "message", "recorded")

    def __init__(self, inbox: SQLiteInbox, message: Message) -> None:
        self.inbox = inbox
        self.message = message
        self.recorded = False
        self.duplicate = False


class _AlreadyProcessed(BaseException):  # control flow, like CancelledError: a handler must not catch it
    """Raised by :meth:`SQLiteInbox.effect` when another delivery of the message committed first."""


class SQLiteInbox:
    """A transactional inbox in a SQLite file: the processed id and the handler's writes commit together.

    ``transaction`` says what the transaction spans:

    - ``"handler"`` (the default): the whole handler. Inside it, :attr:`connection` is the open transaction's
      connection: write the effect through it and do not commit. Handlers run one at a time (SQLite has one
      writer), however many the consumer runs concurrently.
    - ``"effect"``: only the handler's ``async with inbox.effect() as db:`` block, which inserts the id and
      commits with the writes made through ``db``. Handlers run concurrently; a duplicate already recorded is
      skipped before its handler runs, and one that races another delivery of the same id is found at
      :meth:`effect` (its block does not run). The part of a handler before :meth:`effect` may run more than once
      for one message (a redelivery after a crash): make it idempotent. A handler that never calls :meth:`effect`
      has its id recorded when it returns.

    ``timeout`` (seconds, default 30) is how long a transaction waits for another process's lock. The table is
    ``ik_inbox``. Raises :class:`~integration_kit.errors.StoreUnavailable` when the file cannot be opened and
    ``ValueError`` for another ``transaction``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        consumer: str = "default",
        timeout: float = 30.0,
        clock: Clock | None = None,
        transaction: Literal["handler", "effect"] = "handler",
    ) -> None:
        if transaction not in ("handler", "effect"):
            raise ValueError(f"SQLiteInbox.transaction must be 'handler' or 'effect', got {transaction!r}")
        self.path = Path(path)
        self.consumer = consumer
        self.transaction = transaction
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
        """The connection of the open transaction (``LookupError`` outside one)."""
        return _current.get()

    async def process(self, message: Message, handler: Handler) -> bool:
        """Run ``handler(message)`` unless the id was processed, recording the id in the handler's transaction.

        Returns whether the handler's effect was committed (``False``: a duplicate). Raises what the handler
        raises (nothing is committed), or :class:`~integration_kit.errors.StoreUnavailable`.
        """
        if self.transaction == "handler":
            async with self._recording(message) as recorded:
                if recorded:
                    await handler(message)
            return recorded
        async with self._lock:
            if self.seen(message.message_id):
                return False
        pending = _Pending(self, message)
        token = _pending.set(pending)
        try:
            await handler(message)
            if not pending.recorded:
                async with self.effect():
                    pass
        except _AlreadyProcessed:
            return False
        finally:
            _pending.reset(token)
        return not pending.duplicate

    @contextlib.asynccontextmanager
    async def effect(self) -> AsyncIterator[sqlite3.Connection]:
        """The transaction that records the message's id with the writes made through the connection it yields
        (``transaction="effect"`` mode, once per message, inside the handler).

        When another delivery of the message committed first, the block does not run and the handler stops
        (the consumer acknowledges the delivery as a duplicate). Raises ``RuntimeError`` outside a handler run by
        :meth:`process` in ``"effect"`` mode or on a second call, and
        :class:`~integration_kit.errors.StoreUnavailable`.
        """
        pending = _pending.get(None)
        if pending is None or pending.inbox is not self:
            raise RuntimeError("SQLiteInbox.effect() is for a handler run by this inbox with transaction='effect'")
        if pending.recorded:
            raise RuntimeError("SQLiteInbox.effect() records a message once: call it once per handler run")
        pending.recorded = True
        async with self._recording(pending.message) as recorded:
            if not recorded:
                pending.duplicate = True
                raise _AlreadyProcessed
            yield self._db

    @contextlib.asynccontextmanager
    async def _recording(self, message: Message) -> AsyncIterator[bool]:
        """One transaction that inserts the id (yields whether it was new) and commits unless the body raises."""
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
                token = _current.set(db)
                try:
                    yield bool(inserted)
                finally:
                    _current.reset(token)
                if inserted:
                    db.execute("COMMIT")
                    committed = True
            finally:
                if not committed:
                    db.execute("ROLLBACK")

    def seen(self, message_id: str) -> bool:
        """Whether ``message_id`` was processed by this consumer (committed)."""
        row = self._db.execute(
            "SELECT 1 FROM ik_inbox WHERE consumer = ? AND message_id = ?", (self.consumer, message_id)
        ).fetchone()
        return row is not None

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()
