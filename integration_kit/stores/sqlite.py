"""A :class:`~integration_kit.stores.Store` in one SQLite file: the embedded default, shared by a host's processes.

The database runs in WAL mode (readers never wait for the writer) with ``synchronous=NORMAL`` and a busy timeout.
Each read-modify-write operation (claim, compare-and-set, increment, ...) is one ``BEGIN IMMEDIATE`` transaction,
which takes SQLite's write lock before reading, so two processes can never both see a key as absent and both
claim it. Each thread gets its own connection; a process that forks opens fresh ones.

Expiry is decided on the injected clock, by default the wall clock (:class:`~integration_kit.stores.base.WallClock`),
because records outlive processes and reboots; every process writing the file must use the same kind of clock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from integration_kit.clock import Clock
from integration_kit.errors import StoreUnavailable
from integration_kit.stores.base import Store, WallClock, check_ttl, clamp

__all__ = ["SQLiteStore"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL) WITHOUT ROWID"


class SQLiteStore(Store):
    """Shared state in the SQLite database at ``path``, safe across the threads and processes of one host.

    ``busy_timeout`` (seconds) is how long an operation waits for another process's write lock before raising
    :class:`~integration_kit.errors.StoreUnavailable`. Expired rows are deleted every ``purge_every`` writes.
    Not for network file systems, where SQLite's locks are unreliable: use Redis across hosts.
    """

    blocking: ClassVar[bool] = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        busy_timeout: float = 5.0,
        purge_every: int = 1000,
    ) -> None:
        self._path = os.fspath(path)
        self._clock: Clock = clock if clock is not None else WallClock()
        self._busy_timeout = busy_timeout
        self._purge_every = max(1, purge_every)
        self._writes = 0
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        with self._operation("open"):
            self._connection().execute(_SCHEMA)

    @property
    def name(self) -> str:
        """``"sqlite:<path>"``."""
        return f"sqlite:{self._path}"

    @property
    def path(self) -> Path:
        """The database file."""
        return Path(self._path)

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or ``None`` when absent or expired."""
        with self._operation("get"):
            row = self._connection().execute("SELECT value, expires_at FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= self._clock.now()):
            return None
        return bytes(row[0])

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, expiring after ``ttl`` seconds."""
        check_ttl(ttl)
        with self._transaction("set") as db:
            self._write(db, key, value, ttl)

    def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent or expired (one ``BEGIN IMMEDIATE`` transaction)."""
        check_ttl(ttl)
        with self._transaction("add") as db:
            if self._read(db, key) is not None:
                return False
            self._write(db, key, value, ttl)
            return True

    def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, *, ttl: float | None = None
    ) -> bool:
        """Replace (or delete, ``value=None``) ``key`` only if its value is ``expected`` (``None``: absent)."""
        check_ttl(ttl)
        with self._transaction("compare_and_set") as db:
            if self._read(db, key) != expected:
                return False
            if value is None:
                db.execute("DELETE FROM kv WHERE key = ?", (key,))
            else:
                self._write(db, key, value, ttl)
            return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was present."""
        with self._transaction("delete") as db:
            present = self._read(db, key) is not None
            db.execute("DELETE FROM kv WHERE key = ?", (key,))
            return present

    def expire(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new ``ttl``; return whether it was present."""
        check_ttl(ttl)
        with self._transaction("expire") as db:
            if self._read(db, key) is None:
                return False
            expires_at = None if ttl is None else self._clock.now() + ttl
            db.execute("UPDATE kv SET expires_at = ? WHERE key = ?", (expires_at, key))
            return True

    def _increment(
        self, key: str, delta: int, initial: int, minimum: int | None, maximum: int | None, ttl: float | None
    ) -> int:
        """Add ``delta`` to the counter ``key``, clamped; ``ttl`` applies when the counter is created."""
        with self._transaction("increment") as db:
            current = self._read(db, key)
            if current is None:
                new = clamp(initial + delta, minimum, maximum)
                self._write(db, key, str(new).encode(), ttl)
            else:
                new = clamp(int(current) + delta, minimum, maximum)
                db.execute("UPDATE kv SET value = ? WHERE key = ?", (str(new).encode(), key))
            return new

    def purge(self) -> int:
        """Delete every expired row now; return how many."""
        with self._transaction("purge") as db:
            return db.execute("DELETE FROM kv WHERE expires_at <= ?", (self._clock.now(),)).rowcount

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._connections_lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()

    # -- helpers ----------------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (again after a fork)."""
        local = self._local
        db: sqlite3.Connection | None = getattr(local, "db", None)
        if db is not None and local.pid == os.getpid():
            return db
        if self._closed:
            raise sqlite3.ProgrammingError("the store is closed")
        db = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        local.db = db
        local.pid = os.getpid()
        with self._connections_lock:
            self._connections.append(db)
        return db

    @contextmanager
    def _operation(self, operation: str) -> Iterator[None]:
        """Translate SQLite's errors into :class:`StoreUnavailable` (the one boundary)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreUnavailable(str(exc), store=self.name, operation=operation) from exc

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock is held from the first read to the commit."""
        with self._operation(operation):
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            committed = False
            try:
                yield db
                db.execute("COMMIT")
                committed = True
            finally:
                if not committed:
                    db.execute("ROLLBACK")

    def _read(self, db: sqlite3.Connection, key: str) -> bytes | None:
        row = db.execute("SELECT value, expires_at FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= self._clock.now()):
            return None
        return bytes(row[0])

    def _write(self, db: sqlite3.Connection, key: str, value: bytes, ttl: float | None) -> None:
        now = self._clock.now()
        expires_at = None if ttl is None else now + ttl
        db.execute(
            "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)", (key, bytes(value), expires_at)
        )
        self._writes += 1
        if self._writes % self._purge_every == 0:
            db.execute("DELETE FROM kv WHERE expires_at <= ?", (now,))
