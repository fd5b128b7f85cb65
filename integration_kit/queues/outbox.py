"""The transactional outbox: a message is written in the same database transaction as the business data.

The application calls :meth:`Outbox.add` with its own open connection, inside its own transaction; if that
transaction commits, the message will be published, and if it rolls back, it never existed. A relay
(:mod:`~integration_kit.queues.relay`) then claims unsent rows, publishes them with confirms and marks them sent.

Claiming takes a *lease*: the rows belong to one relay (``owner``) until ``lease_until``; a relay that dies gives
its rows back when the lease lapses, so a relay killed between publish and mark publishes them again (consumers
deduplicate by message id), and nothing is lost.

**Per-key order.** Rows with the same non-empty key are published in the order they were added: a claim takes a
row only if every earlier unsent row of its key is in the same claim (never one leased by another relay, never
one skipped). Rows without a key are unordered.

Two backends, one contract (``tests/queues/test_queue_outbox.py``): :class:`SQLiteOutbox` (embedded, the default; claims
under SQLite's write lock, ``BEGIN IMMEDIATE``) and :class:`PostgresOutbox` (several relays on several hosts; psycopg
3, claims with ``FOR UPDATE SKIP LOCKED`` so relays never wait on each other's rows).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration_kit.clock import Clock, SystemClock
from integration_kit.errors import ConfigurationError, StoreUnavailable
from integration_kit.queues.message import Message

__all__ = ["Outbox", "OutboxRow", "PostgresOutbox", "SQLiteOutbox", "in_key_order"]

_IDENT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One claimed row: its sequence number (the order it was added in) and the message."""

    seq: int
    message: Message


class Outbox(ABC):
    """A table of messages to publish, written in the application's transactions and drained by relays."""

    table: str

    @abstractmethod
    def add(self, connection: Any, message: Message) -> None:
        """Insert ``message`` using the application's open ``connection`` (do not commit: the caller does)."""

    @abstractmethod
    def claim(self, owner: str, limit: int, lease: float) -> list[OutboxRow]:
        """Lease up to ``limit`` unsent rows to ``owner`` for ``lease`` seconds, oldest first, keeping key order."""

    @abstractmethod
    def mark_sent(self, owner: str, seqs: Sequence[int]) -> int:
        """Record the rows as sent (confirmed by the broker); return how many were marked."""

    @abstractmethod
    def release(self, owner: str, seqs: Sequence[int]) -> None:
        """Give rows back unsent (the publish failed), counting a failed attempt on each."""

    @abstractmethod
    def pending(self) -> int:
        """How many rows are not sent yet."""

    @abstractmethod
    def purge(self, older_than: float) -> int:
        """Delete rows sent more than ``older_than`` seconds ago; return how many."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the outbox's own connection."""


def in_key_order(candidates: Sequence[tuple[int, str]], unsent: Iterable[tuple[int, str]]) -> list[int]:
    """Which of the ``candidates`` (seq, key) may be claimed without overtaking an earlier row of the same key.

    ``unsent`` lists every unsent (seq, key) of the candidates' keys up to the last candidate, in seq order. A
    keyed candidate is kept only if every earlier unsent row of its key is kept too.
    """
    chosen = {seq for seq, _ in candidates}
    blocked: set[str] = set()
    kept: list[int] = []
    for seq, key in unsent:
        if key in blocked:
            continue
        if seq in chosen:
            kept.append(seq)
        else:
            blocked.add(key)
    keyless = [seq for seq, key in candidates if not key]
    return sorted(set(kept) | set(keyless))


def _encode_headers(message: Message) -> str:
    return json.dumps(message.wire_headers(), separators=(",", ":"))


def _row(seq: int, key: str, body: bytes, headers: str) -> OutboxRow:
    return OutboxRow(seq, Message.from_wire(bytes(body), json.loads(headers), key=key))


def _check_table(name: str) -> str:
    if not name or not set(name) <= _IDENT or name[0].isdigit():
        raise ConfigurationError(f"outbox table name must be lower-case letters, digits and _, got {name!r}")
    return name


class SQLiteOutbox(Outbox):
    """The outbox in a SQLite file (the application's own database file).

    ``table`` defaults to ``ik_outbox``; ``timeout`` (seconds, default 30) is how long a claim waits for SQLite's
    write lock. Times come from ``clock`` (default the wall clock).
    """

    def __init__(
        self, path: str | Path, *, table: str = "ik_outbox", timeout: float = 30.0, clock: Clock | None = None
    ) -> None:
        self.path = Path(path)
        self.table = _check_table(table)
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self.create(self._db)
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc

    def create(self, connection: sqlite3.Connection) -> None:
        """Create the table and its index if missing."""
        t = self.table
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, "
            "key TEXT NOT NULL, body BLOB NOT NULL, headers TEXT NOT NULL, created REAL NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_until REAL, sent_at REAL)"
        )
        connection.execute(f"CREATE INDEX IF NOT EXISTS {t}_unsent ON {t} (sent_at, seq)")

    def _error(self, exc: sqlite3.Error, operation: str) -> StoreUnavailable:
        return StoreUnavailable(str(exc), store=f"sqlite:{self.path}", operation=f"outbox {operation}")

    def add(self, connection: sqlite3.Connection, message: Message) -> None:
        """Insert ``message`` with the application's ``connection``, in its open transaction."""
        connection.execute(
            f"INSERT INTO {self.table} (message_id, key, body, headers, created) VALUES (?, ?, ?, ?, ?)",  # noqa: S608 - checked name
            (message.message_id, message.key, message.body, _encode_headers(message), self.clock.now()),
        )

    def claim(self, owner: str, limit: int, lease: float) -> list[OutboxRow]:
        """Lease rows under SQLite's write lock (``BEGIN IMMEDIATE``)."""
        t = self.table
        now = self.clock.now()
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    rows = db.execute(
                        f"SELECT seq, key, body, headers FROM {t} WHERE sent_at IS NULL "  # noqa: S608 - checked name
                        "AND (lease_until IS NULL OR lease_until < ?) ORDER BY seq LIMIT ?",
                        (now, limit),
                    ).fetchall()
                    if not rows:
                        db.execute("COMMIT")
                        return []
                    keys = sorted({r[1] for r in rows if r[1]})
                    unsent: list[tuple[int, str]] = []
                    if keys:
                        marks = ",".join("?" * len(keys))
                        unsent = db.execute(
                            f"SELECT seq, key FROM {t} WHERE sent_at IS NULL AND key IN ({marks}) "  # noqa: S608
                            "AND seq <= ? ORDER BY seq",
                            (*keys, rows[-1][0]),
                        ).fetchall()
                    kept = set(in_key_order([(r[0], r[1]) for r in rows], unsent))
                    if kept:
                        marks = ",".join("?" * len(kept))
                        db.execute(
                            f"UPDATE {t} SET lease_owner = ?, lease_until = ? WHERE seq IN ({marks})",  # noqa: S608
                            (owner, now + lease, *kept),
                        )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._error(exc, "claim") from exc
        return [_row(*r) for r in rows if r[0] in kept]

    def mark_sent(self, owner: str, seqs: Sequence[int]) -> int:
        """Set ``sent_at`` on the rows."""
        return self._update("sent_at = ?, lease_owner = NULL, lease_until = NULL", (self.clock.now(),), seqs, "mark")

    def release(self, owner: str, seqs: Sequence[int]) -> None:
        """Clear the rows' lease (only this owner's) and count a failed attempt."""
        self._update("attempts = attempts + 1, lease_owner = NULL, lease_until = NULL", (), seqs, "release", owner)

    def _update(
        self, assignments: str, values: tuple[object, ...], seqs: Sequence[int], op: str, owner: str = ""
    ) -> int:
        if not seqs:
            return 0
        marks = ",".join("?" * len(seqs))
        where = f"seq IN ({marks})" + (" AND lease_owner = ?" if owner else "")
        params = (*values, *seqs, *((owner,) if owner else ()))
        with self._lock:
            try:
                return self._db.execute(f"UPDATE {self.table} SET {assignments} WHERE {where}", params).rowcount  # noqa: S608
            except sqlite3.Error as exc:
                raise self._error(exc, op) from exc

    def pending(self) -> int:
        """Rows not sent yet."""
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM {self.table} WHERE sent_at IS NULL").fetchone()[0])  # noqa: S608

    def purge(self, older_than: float) -> int:
        """Delete rows sent before ``now - older_than``."""
        cutoff = self.clock.now() - older_than
        with self._lock:
            return self._db.execute(f"DELETE FROM {self.table} WHERE sent_at < ?", (cutoff,)).rowcount  # noqa: S608

    def close(self) -> None:
        """Close the outbox's own connection."""
        self._db.close()


class PostgresOutbox(Outbox):
    """The outbox in PostgreSQL, for several relays (psycopg 3).

    ``dsn`` is a libpq connection string (no secret is ever logged: errors name only the table). ``schema``
    (default ``public``) and ``table`` (default ``ik_outbox``) must be plain identifiers. A claim selects unsent,
    unleased rows ``FOR UPDATE SKIP LOCKED`` (rows another relay is claiming are skipped, not waited for), keeps
    key order, and sets the lease in the same transaction.
    """

    def __init__(self, dsn: str, *, schema: str = "public", table: str = "ik_outbox", clock: Clock | None = None):
        import psycopg

        self._psycopg = psycopg
        self.schema = _check_table(schema)
        self.table = f"{self.schema}.{_check_table(table)}"
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(dsn, autocommit=True)
            self.create(self._db)
        except psycopg.Error as exc:
            raise self._error(exc, "open") from exc

    def _error(self, exc: Exception, operation: str) -> StoreUnavailable:
        return StoreUnavailable(type(exc).__name__, store=f"postgresql:{self.table}", operation=f"outbox {operation}")

    def create(self, connection: Any) -> None:
        """Create the table and its index if missing."""
        t = self.table
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (seq BIGSERIAL PRIMARY KEY, message_id TEXT NOT NULL, "
            "key TEXT NOT NULL, body BYTEA NOT NULL, headers TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_until DOUBLE PRECISION, "
            "sent_at DOUBLE PRECISION)"
        )
        connection.execute(f"CREATE INDEX IF NOT EXISTS {t.split('.')[-1]}_unsent ON {t} (seq) WHERE sent_at IS NULL")

    def add(self, connection: Any, message: Message) -> None:
        """Insert ``message`` with the application's psycopg ``connection`` (or cursor), in its transaction."""
        connection.execute(
            f"INSERT INTO {self.table} (message_id, key, body, headers, created) VALUES (%s, %s, %s, %s, %s)",  # noqa: S608
            (message.message_id, message.key, message.body, _encode_headers(message), self.clock.now()),
        )

    def claim(self, owner: str, limit: int, lease: float) -> list[OutboxRow]:
        """Lease rows with ``FOR UPDATE SKIP LOCKED``."""
        t = self.table
        now = self.clock.now()
        with self._lock:
            try:
                with self._db.transaction():
                    rows = self._db.execute(
                        f"SELECT seq, key, body, headers FROM {t} WHERE sent_at IS NULL "  # noqa: S608
                        "AND (lease_until IS NULL OR lease_until < %s) ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED",
                        (now, limit),
                    ).fetchall()
                    if not rows:
                        return []
                    keys = sorted({r[1] for r in rows if r[1]})
                    unsent = []
                    if keys:
                        unsent = self._db.execute(
                            f"SELECT seq, key FROM {t} WHERE sent_at IS NULL AND key = ANY(%s) AND seq <= %s "  # noqa: S608
                            "ORDER BY seq",
                            (keys, rows[-1][0]),
                        ).fetchall()
                    kept = in_key_order([(r[0], r[1]) for r in rows], unsent)
                    if kept:
                        self._db.execute(
                            f"UPDATE {t} SET lease_owner = %s, lease_until = %s WHERE seq = ANY(%s)",  # noqa: S608
                            (owner, now + lease, kept),
                        )
            except self._psycopg.Error as exc:
                raise self._error(exc, "claim") from exc
        chosen = set(kept)
        return [_row(*r) for r in rows if r[0] in chosen]

    def mark_sent(self, owner: str, seqs: Sequence[int]) -> int:
        """Set ``sent_at`` on the rows."""
        return self._update("sent_at = %s, lease_owner = NULL, lease_until = NULL", (self.clock.now(),), seqs, "")

    def release(self, owner: str, seqs: Sequence[int]) -> None:
        """Clear the rows' lease (only this owner's) and count a failed attempt."""
        self._update("attempts = attempts + 1, lease_owner = NULL, lease_until = NULL", (), seqs, owner)

    def _update(self, assignments: str, values: tuple[object, ...], seqs: Sequence[int], owner: str) -> int:
        if not seqs:
            return 0
        where = "seq = ANY(%s)" + (" AND lease_owner = %s" if owner else "")
        params = (*values, list(seqs), *((owner,) if owner else ()))
        with self._lock:
            try:
                return self._db.execute(f"UPDATE {self.table} SET {assignments} WHERE {where}", params).rowcount  # noqa: S608
            except self._psycopg.Error as exc:
                raise self._error(exc, "update") from exc

    def pending(self) -> int:
        """Rows not sent yet."""
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM {self.table} WHERE sent_at IS NULL").fetchone()  # noqa: S608
        return int(row[0]) if row else 0

    def purge(self, older_than: float) -> int:
        """Delete rows sent before ``now - older_than``."""
        cutoff = self.clock.now() - older_than
        with self._lock:
            return self._db.execute(f"DELETE FROM {self.table} WHERE sent_at < %s", (cutoff,)).rowcount  # noqa: S608

    def close(self) -> None:
        """Close the outbox's own connection."""
        self._db.close()
