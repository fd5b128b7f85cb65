"""Where outgoing webhooks wait: messages, one delivery per (message, endpoint) with its schedule, the attempt log.

Everything the sender knows lives here, so deliveries survive restarts: a process that dies mid-schedule leaves each
delivery with its attempt count and its next due time, and whichever worker runs next carries on. A delivery is
claimed for a lease before its attempt (two workers never send it at once; a worker that dies releases it when the
lease lapses, and the attempt is made again with the same ``webhook-id``, which receivers deduplicate).

:class:`SQLiteDeliveryStore` keeps its tables in the file of a :class:`~integration_kit.stores.SQLiteStore` (the
workers of one host). Errors are raised as :class:`~integration_kit.errors.StoreUnavailable`.

Delivery states: ``pending`` (due at ``next_attempt_at``), ``delivered``, ``failed`` (the schedule ran out),
``disabled`` (its endpoint was disabled; re-enabling the endpoint makes them pending again).
"""

from __future__ import annotations

import os
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from integration_kit.clock import Clock, WallClock
from integration_kit.stores.sqlite import SQLiteStore

__all__ = [
    "AttemptLogEntry",
    "DeliveryStore",
    "DueDelivery",
    "EndpointState",
    "SQLiteDeliveryStore",
    "record_parameters",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_messages (
    id TEXT PRIMARY KEY, event_type TEXT NOT NULL, payload BLOB NOT NULL, created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    message_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL, claimed_until REAL NOT NULL DEFAULT 0, last_status INTEGER, last_error TEXT,
    finished_at REAL, PRIMARY KEY (message_id, endpoint_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS webhook_attempt_log (
    message_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, attempt INTEGER NOT NULL, at REAL NOT NULL,
    status INTEGER, latency REAL NOT NULL, outcome TEXT NOT NULL, error TEXT
);
CREATE INDEX IF NOT EXISTS webhook_attempt_log_message ON webhook_attempt_log (message_id, endpoint_id);
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id TEXT PRIMARY KEY, enabled INTEGER NOT NULL DEFAULT 1, disabled_reason TEXT, failing_since REAL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery: the message, its endpoint, how many attempts were made before this one."""

    message_id: str
    endpoint_id: str
    event_type: str
    payload: bytes
    attempts: int
    created_at: float


@dataclass(frozen=True, slots=True)
class AttemptLogEntry:
    """One attempt in the delivery log: when (epoch seconds), the HTTP status if any, latency (seconds), outcome.

    ``outcome`` is ``delivered``, ``retry``, ``failed``, ``disabled`` or ``refused`` (SSRF guard, breaker);
    ``error`` names the error class and a redacted message, never a secret.
    """

    message_id: str
    endpoint_id: str
    attempt: int
    at: float
    status: int | None
    latency: float
    outcome: str
    error: str | None


@dataclass(frozen=True, slots=True)
class EndpointState:
    """Whether an endpoint receives deliveries, why not, and since when it has been failing (epoch seconds)."""

    id: str
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: float | None = None


class DeliveryStore(ABC):
    """The sender's durable state: messages, deliveries with their schedule, endpoint states, the attempt log.

    Every method is atomic across the workers sharing the store; times are epoch seconds on :attr:`clock`.
    Implementations: :class:`SQLiteDeliveryStore` (one host) and
    :class:`~integration_kit.webhooks.postgres_store.PostgresDeliveryStore` (workers on many hosts); one contract
    suite runs against both.
    """

    clock: Clock

    @abstractmethod
    def enqueue(self, message_id: str, event_type: str, payload: bytes, endpoint_ids: Sequence[str]) -> bool:
        """Store a message and one delivery per endpoint, due now (parked for a disabled endpoint); ``False`` if
        the id was already sent."""

    @abstractmethod
    def claim_due(self, *, lease: float, limit: int = 100) -> list[DueDelivery]:
        """Take up to ``limit`` pending deliveries that are due, oldest first, for ``lease`` seconds."""

    @abstractmethod
    def record(self, entry: AttemptLogEntry, *, next_attempt_at: float | None = None, counted: bool = True) -> None:
        """Log an attempt and move its delivery on (``counted=False``: reschedule without counting an attempt)."""

    @abstractmethod
    def endpoint(self, endpoint_id: str) -> EndpointState:
        """The endpoint's state (enabled, and not failing, when never seen)."""

    @abstractmethod
    def set_failing(self, endpoint_id: str, since: float | None) -> float | None:
        """Record failing since ``since`` (kept if already failing) or recovered (``None``); return the time kept."""

    @abstractmethod
    def disable(self, endpoint_id: str, reason: str) -> bool:
        """Disable the endpoint and park its pending deliveries; return whether it was enabled until now."""

    @abstractmethod
    def enable(self, endpoint_id: str) -> int:
        """Enable the endpoint again; its parked deliveries become due now; return how many."""

    @abstractmethod
    def log(
        self, *, message_id: str | None = None, endpoint_id: str | None = None, limit: int = 1000
    ) -> list[AttemptLogEntry]:
        """The attempt log, oldest first, filtered by message and/or endpoint."""

    @abstractmethod
    def next_due(self) -> float | None:
        """When the earliest pending delivery is due, or ``None``."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """How many deliveries are in each state (pending, delivered, failed, disabled)."""

    @abstractmethod
    def delivery(self, message_id: str, endpoint_id: str) -> dict[str, Any] | None:
        """One delivery's row (state, attempts, next_attempt_at, last_status, last_error), or ``None``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class SQLiteDeliveryStore(DeliveryStore):
    """The sender's durable state in the SQLite database at ``path`` (or in ``store``'s file)."""

    def __init__(self, path: str | os.PathLike[str] | SQLiteStore, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else WallClock()
        self._owned = not isinstance(path, SQLiteStore)
        self.store = path if isinstance(path, SQLiteStore) else SQLiteStore(path, clock=self.clock)
        with self._transaction("open", durable=False) as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def enqueue(self, message_id: str, event_type: str, payload: bytes, endpoint_ids: Sequence[str]) -> bool:
        """Store a message and one delivery per endpoint, due now (parked for a disabled endpoint); ``False`` if the
        id was already sent."""
        now = self.clock.now()
        with self._transaction("webhooks.enqueue") as db:
            if not db.execute(
                "INSERT OR IGNORE INTO webhook_messages (id, event_type, payload, created_at) VALUES (?, ?, ?, ?)",
                (message_id, event_type, payload, now),
            ).rowcount:
                return False
            db.executemany(
                "INSERT INTO webhook_deliveries (message_id, endpoint_id, state, next_attempt_at) VALUES (?, ?, "
                "CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ? AND enabled = 0) "
                "THEN 'disabled' ELSE 'pending' END, ?)",
                [(message_id, e, e, now) for e in endpoint_ids],
            )
        return True

    def claim_due(self, *, lease: float, limit: int = 100) -> list[DueDelivery]:
        """Take up to ``limit`` pending deliveries that are due, oldest first, for ``lease`` seconds."""
        now = self.clock.now()
        with self._transaction("webhooks.claim", durable=False) as db:
            rows = db.execute(
                "SELECT d.message_id, d.endpoint_id, m.event_type, m.payload, d.attempts, m.created_at "
                "FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id "
                "WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND d.claimed_until <= ? "
                "ORDER BY d.next_attempt_at LIMIT ?",
                (now, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE webhook_deliveries SET claimed_until = ? WHERE message_id = ? AND endpoint_id = ?",
                [(now + lease, r[0], r[1]) for r in rows],
            )
        return [DueDelivery(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in rows]

    def record(self, entry: AttemptLogEntry, *, next_attempt_at: float | None = None, counted: bool = True) -> None:
        """Log an attempt and move its delivery on: ``retry`` (due at ``next_attempt_at``), ``delivered``, ...

        ``counted=False`` reschedules without counting an attempt (a breaker or bulkhead refused it locally).
        """
        log_row, update_row = record_parameters(entry, next_attempt_at=next_attempt_at, counted=counted)
        with self._transaction("webhooks.record") as db:
            if counted:
                db.execute("INSERT INTO webhook_attempt_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", log_row)
            db.execute(
                "UPDATE webhook_deliveries SET state = ?, attempts = attempts + ?, next_attempt_at = ?, "
                "claimed_until = 0, last_status = ?, last_error = ?, finished_at = ? "
                "WHERE message_id = ? AND endpoint_id = ?",
                update_row,
            )

    def endpoint(self, endpoint_id: str) -> EndpointState:
        """The endpoint's state (enabled, and not failing, when never seen)."""
        with self._transaction("webhooks.endpoint", durable=False) as db:
            row = db.execute(
                "SELECT enabled, disabled_reason, failing_since FROM webhook_endpoints WHERE id = ?", (endpoint_id,)
            ).fetchone()
        return EndpointState(endpoint_id) if row is None else EndpointState(endpoint_id, bool(row[0]), row[1], row[2])

    def set_failing(self, endpoint_id: str, since: float | None) -> float | None:
        """Record that the endpoint has been failing since ``since`` (kept if already failing), or recovered
        (``None``); return the failing-since time now recorded."""
        with self._transaction("webhooks.set_failing") as db:
            db.execute("INSERT OR IGNORE INTO webhook_endpoints (id) VALUES (?)", (endpoint_id,))
            if since is None:
                db.execute("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?", (endpoint_id,))
                return None
            db.execute(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?) WHERE id = ?",
                (since, endpoint_id),
            )
            row = db.execute("SELECT failing_since FROM webhook_endpoints WHERE id = ?", (endpoint_id,)).fetchone()
        return float(row[0])

    def disable(self, endpoint_id: str, reason: str) -> bool:
        """Disable the endpoint and park its pending deliveries; return whether it was enabled until now."""
        with self._transaction("webhooks.disable") as db:
            db.execute("INSERT OR IGNORE INTO webhook_endpoints (id) VALUES (?)", (endpoint_id,))
            changed = db.execute(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ? WHERE id = ? AND enabled = 1",
                (reason, endpoint_id),
            ).rowcount
            db.execute(
                "UPDATE webhook_deliveries SET state = 'disabled', finished_at = ? "
                "WHERE endpoint_id = ? AND state = 'pending'",
                (self.clock.now(), endpoint_id),
            )
        return bool(changed)

    def enable(self, endpoint_id: str) -> int:
        """Enable the endpoint again; its parked deliveries become due now; return how many."""
        with self._transaction("webhooks.enable") as db:
            db.execute(
                "UPDATE webhook_endpoints SET enabled = 1, disabled_reason = NULL, failing_since = NULL WHERE id = ?",
                (endpoint_id,),
            )
            return db.execute(
                "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?, finished_at = NULL "
                "WHERE endpoint_id = ? AND state = 'disabled'",
                (self.clock.now(), endpoint_id),
            ).rowcount

    def log(
        self, *, message_id: str | None = None, endpoint_id: str | None = None, limit: int = 1000
    ) -> list[AttemptLogEntry]:
        """The attempt log, oldest first, filtered by message and/or endpoint."""
        query = (
            "SELECT * FROM webhook_attempt_log WHERE (? IS NULL OR message_id = ?) AND (? IS NULL OR endpoint_id = ?)"
        )
        with self._transaction("webhooks.log", durable=False) as db:
            rows = db.execute(
                query + " ORDER BY at, attempt LIMIT ?", (message_id, message_id, endpoint_id, endpoint_id, limit)
            ).fetchall()
        return [AttemptLogEntry(*row) for row in rows]

    def next_due(self) -> float | None:
        """When the earliest pending delivery is due (epoch seconds), or ``None`` when none is pending."""
        with self._transaction("webhooks.next_due", durable=False) as db:
            row = db.execute("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE state = 'pending'").fetchone()
        return None if row[0] is None else float(row[0])

    def counts(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        with self._transaction("webhooks.counts", durable=False) as db:
            rows = db.execute("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state").fetchall()
        found = dict(rows)
        return {state: int(found.get(state, 0)) for state in ("pending", "delivered", "failed", "disabled")}

    def delivery(self, message_id: str, endpoint_id: str) -> dict[str, Any] | None:
        """One delivery's row (state, attempts, next_attempt_at, last_status, last_error), or ``None``."""
        with self._transaction("webhooks.delivery", durable=False) as db:
            cursor = db.execute(
                "SELECT state, attempts, next_attempt_at, last_status, last_error FROM webhook_deliveries "
                "WHERE message_id = ? AND endpoint_id = ?",
                (message_id, endpoint_id),
            )
            row = cursor.fetchone()
            names = [c[0] for c in cursor.description]
        return None if row is None else dict(zip(names, row, strict=True))

    def close(self) -> None:
        """Close the store's connections when this object opened it."""
        if self._owned:
            self.store.close()

    @contextmanager
    def _transaction(self, operation: str, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """The store's ``BEGIN IMMEDIATE`` transaction; ``durable`` commits with ``synchronous=FULL``."""
        store = self.store
        with store._operation(operation):
            store._connection().execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        with store._transaction(operation) as db:
            yield db

    def __repr__(self) -> str:
        return f"SQLiteDeliveryStore({self.store.name!r})"


def record_parameters(
    entry: AttemptLogEntry, *, next_attempt_at: float | None, counted: bool
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The parameters of :meth:`DeliveryStore.record`'s two statements, for every backend alike: the attempt-log
    row, and the delivery update (state, attempts added, next attempt, last status and error, finished at, key)."""
    state = {"delivered": "delivered", "failed": "failed", "disabled": "disabled"}.get(entry.outcome, "pending")
    log_row = (
        entry.message_id,
        entry.endpoint_id,
        entry.attempt,
        entry.at,
        entry.status,
        entry.latency,
        entry.outcome,
        entry.error,
    )
    update_row = (
        state,
        int(counted),
        next_attempt_at if next_attempt_at is not None else entry.at,
        entry.status,
        entry.error,
        None if state == "pending" else entry.at,
        entry.message_id,
        entry.endpoint_id,
    )
    return log_row, update_row
