"""The durable webhook inbox: verified deliveries are written here before the sender gets its 2xx.

The inbox is also the deduplication record: an event id is stored once, in the same transaction that makes it
durable, and kept (processed or not) for ``dedup_window`` seconds, so a redelivery within the window is answered
2xx and never stored or processed again. Rows move through::

    put -> PENDING --claim (lease)--> handler ok --> DONE   (kept for the dedup window, then purged)
                         |  lease lapsed (process died): claimable again (at-least-once)
                         +-- handler gave up, or claimed max_claims times --> DEAD --replay--> PENDING

:class:`SQLiteInbox` keeps its table in the database file of a :class:`~integration_kit.stores.SQLiteStore` (one
host, many processes; each write is one ``BEGIN IMMEDIATE`` transaction; inserts commit with ``synchronous=FULL``,
so an acknowledged event survives a crash of the process and of the machine, and the receiver commits the events
arriving together in one transaction, one fsync for all). Errors reaching the database are raised as
:class:`~integration_kit.errors.StoreUnavailable`, and the receiver then answers 503 so the sender retries.

The default dedup window is 3 days: Svix's retry schedule spans about 28 hours and GitHub lets a delivery be
redelivered by hand for 3 days, so a retry never outlives the record that recognises it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from integration_kit.clock import Clock, WallClock
from integration_kit.stores.sqlite import SQLiteStore

__all__ = ["DEFAULT_DEDUP_WINDOW", "Inbox", "InboxEvent", "InboxState", "SQLiteInbox"]

#: How long an event id is remembered after it arrived (seconds): 3 days (see the module docstring).
DEFAULT_DEDUP_WINDOW = 3 * 24 * 3600.0


class InboxState(Enum):
    """Where an event stands in the inbox."""

    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"
    STALE = "stale"  # dropped by the ordering guard: older than an event already processed for its key


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """One received event: its ``id``, the ``source`` (receiver name), arrival time (epoch seconds), raw ``body``.

    ``meta`` holds the non-secret headers kept for the handler (content type, event type); ``claims`` is how often
    processing started, ``deliveries`` how often the sender delivered it (duplicates included).
    """

    id: str
    source: str
    received_at: float
    body: bytes
    state: InboxState = InboxState.PENDING
    meta: dict[str, str] = field(default_factory=dict)
    claims: int = 0
    deliveries: int = 1
    last_error: str | None = None

    def json(self) -> object:
        """The body parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return json.loads(self.body)


class Inbox(ABC):
    """Where received events wait to be processed. Every method is atomic across the processes sharing it."""

    clock: Clock

    @abstractmethod
    def put(self, event: InboxEvent) -> bool:
        """Store ``event`` durably unless its id is already known (then count the delivery); return whether new."""

    def put_many(self, events: Sequence[InboxEvent]) -> list[bool]:
        """:meth:`put` for several events at once, made durable together; one answer per event."""
        return [self.put(event) for event in events]

    @abstractmethod
    def claim(self, *, lease: float, limit: int = 1, max_claims: int = 10) -> list[InboxEvent]:
        """Take up to ``limit`` pending events for ``lease`` seconds, oldest first.

        An event already claimed ``max_claims`` times (a poison message that kills its process) goes to DEAD.
        """

    @abstractmethod
    def finish(self, event_id: str, state: InboxState, error: str | None = None) -> None:
        """Record the end of processing: DONE, STALE or DEAD (with the last error's description)."""

    @abstractmethod
    def dead_letters(self, limit: int = 100) -> list[InboxEvent]:
        """The dead events, oldest first."""

    @abstractmethod
    def replay(self, ids: Sequence[str] | None = None) -> int:
        """Move dead events (``ids``, or all) back to PENDING with their claim count reset; return how many."""

    @abstractmethod
    def counts(self) -> dict[InboxState, int]:
        """How many events are in each state."""

    @abstractmethod
    def get(self, event_id: str) -> InboxEvent | None:
        """One event by id, or ``None``."""

    @abstractmethod
    def purge(self) -> int:
        """Delete finished events older than the dedup window; return how many."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_inbox (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, received_at REAL NOT NULL, body BLOB NOT NULL, meta TEXT NOT NULL,
    state TEXT NOT NULL, claimed_until REAL NOT NULL DEFAULT 0, claims INTEGER NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 1, last_error TEXT, finished_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhook_inbox_due ON webhook_inbox (state, claimed_until, received_at);
"""
_COLUMNS = "id, source, received_at, body, meta, state, claims, deliveries, last_error"


class SQLiteInbox(Inbox):
    """An inbox in the SQLite database at ``path`` (or inside ``store``'s file), shared by the host's processes.

    ``namespace`` separates receivers sharing a file (an id is unique per namespace); ``dedup_window`` is in
    seconds; ``clock`` gives epoch seconds (the wall clock by default, because rows outlive processes).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | SQLiteStore,
        *,
        namespace: str = "",
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock if clock is not None else WallClock()
        self._owned = not isinstance(path, SQLiteStore)
        self.store = path if isinstance(path, SQLiteStore) else SQLiteStore(path, clock=self.clock)
        self.namespace = namespace
        self.dedup_window = dedup_window
        with self._transaction("open") as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    @property
    def name(self) -> str:
        """``"sqlite:<path>"``."""
        return self.store.name

    def put(self, event: InboxEvent) -> bool:
        """Insert the event, or count one more delivery of a known id (one durable transaction)."""
        return self.put_many([event])[0]

    def put_many(self, events: Sequence[InboxEvent]) -> list[bool]:
        """Insert several events in one durable transaction (one fsync: the receiver's group commit)."""
        results = []
        with self._transaction("inbox.put", durable=True) as db:
            for event in events:
                key = self.namespace + event.id
                inserted = db.execute(
                    "INSERT OR IGNORE INTO webhook_inbox (id, source, received_at, body, meta, state) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key, event.source, event.received_at, event.body, json.dumps(event.meta), "pending"),
                ).rowcount
                if not inserted:
                    db.execute("UPDATE webhook_inbox SET deliveries = deliveries + 1 WHERE id = ?", (key,))
                results.append(bool(inserted))
        return results

    def claim(self, *, lease: float, limit: int = 1, max_claims: int = 10) -> list[InboxEvent]:
        """Take the oldest due pending events (a lapsed lease makes an event due again)."""
        now = self.clock.now()
        with self._transaction("inbox.claim") as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM webhook_inbox WHERE state = 'pending' AND claimed_until <= ? "  # noqa: S608
                "AND id >= ? AND id < ? ORDER BY received_at LIMIT ?",
                (now, self.namespace, self.namespace + "\U0010ffff", limit),
            ).fetchall()
            claimed = []
            for row in rows:
                if row[6] >= max_claims:
                    db.execute(
                        "UPDATE webhook_inbox SET state = 'dead', last_error = ?, finished_at = ? WHERE id = ?",
                        (f"claimed {row[6]} times without finishing", now, row[0]),
                    )
                    continue
                db.execute(
                    "UPDATE webhook_inbox SET claimed_until = ?, claims = claims + 1 WHERE id = ?",
                    (now + lease, row[0]),
                )
                claimed.append(self._event(row, claims=row[6] + 1))
        return claimed

    def finish(self, event_id: str, state: InboxState, error: str | None = None) -> None:
        """Mark the event DONE, STALE or DEAD."""
        with self._transaction("inbox.finish") as db:
            db.execute(
                "UPDATE webhook_inbox SET state = ?, last_error = ?, finished_at = ? WHERE id = ?",
                (state.value, error, self.clock.now(), self.namespace + event_id),
            )

    def dead_letters(self, limit: int = 100) -> list[InboxEvent]:
        """The dead events of this namespace, oldest first."""
        with self._transaction("inbox.dead_letters") as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM webhook_inbox WHERE state = 'dead' AND id >= ? AND id < ? "  # noqa: S608
                "ORDER BY received_at LIMIT ?",
                (self.namespace, self.namespace + "\U0010ffff", limit),
            ).fetchall()
        return [self._event(row) for row in rows]

    def replay(self, ids: Sequence[str] | None = None) -> int:
        """Move dead events back to PENDING (``ids`` or every dead one)."""
        with self._transaction("inbox.replay") as db:
            if ids is None:
                return db.execute(
                    "UPDATE webhook_inbox SET state = 'pending', claims = 0, claimed_until = 0, finished_at = NULL "
                    "WHERE state = 'dead' AND id >= ? AND id < ?",
                    (self.namespace, self.namespace + "\U0010ffff"),
                ).rowcount
            return sum(
                db.execute(
                    "UPDATE webhook_inbox SET state = 'pending', claims = 0, claimed_until = 0, finished_at = NULL "
                    "WHERE state = 'dead' AND id = ?",
                    (self.namespace + i,),
                ).rowcount
                for i in ids
            )

    def counts(self) -> dict[InboxState, int]:
        """How many events of this namespace are in each state."""
        with self._transaction("inbox.counts") as db:
            rows = db.execute(
                "SELECT state, COUNT(*) FROM webhook_inbox WHERE id >= ? AND id < ? GROUP BY state",
                (self.namespace, self.namespace + "\U0010ffff"),
            ).fetchall()
        found = {InboxState(state): count for state, count in rows}
        return {state: found.get(state, 0) for state in InboxState}

    def get(self, event_id: str) -> InboxEvent | None:
        """One event by id."""
        with self._transaction("inbox.get") as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM webhook_inbox WHERE id = ?",  # noqa: S608
                (self.namespace + event_id,),
            ).fetchone()
        return None if row is None else self._event(row)

    def purge(self) -> int:
        """Delete DONE and STALE events that arrived more than the dedup window ago."""
        with self._transaction("inbox.purge") as db:
            return db.execute(
                "DELETE FROM webhook_inbox WHERE state IN ('done', 'stale') AND received_at < ?",
                (self.clock.now() - self.dedup_window,),
            ).rowcount

    def close(self) -> None:
        """Close the store's connections when this inbox opened it."""
        if self._owned:
            self.store.close()

    @contextmanager
    def _transaction(self, operation: str, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """The store's ``BEGIN IMMEDIATE`` transaction (per-thread connection, write lock, StoreUnavailable
        translation). ``durable`` commits with ``synchronous=FULL``, so an acknowledged event survives a power cut
        too; the other writes (claims, ends of processing) may be lost to a power cut only, which at worst
        processes an event again."""
        store = self.store
        with store._operation(operation):
            store._connection().execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        with store._transaction(operation) as db:
            yield db

    def _event(self, row: tuple[Any, ...], claims: int | None = None) -> InboxEvent:
        event_id, source, received_at, body, meta, state, row_claims, deliveries, last_error = row
        return InboxEvent(
            id=str(event_id)[len(self.namespace) :],
            source=str(source),
            received_at=float(received_at),
            body=bytes(body),
            state=InboxState(state),
            meta=json.loads(str(meta)),
            claims=int(row_claims) if claims is None else claims,
            deliveries=int(deliveries),
            last_error=None if last_error is None else str(last_error),
        )

    def __repr__(self) -> str:
        return f"SQLiteInbox({self.store.name!r}, namespace={self.namespace!r})"
