"""The webhook sender's store on PostgreSQL, for delivery workers on many hosts sharing one queue.

The same contract as :class:`~integration_kit.webhooks.delivery_store.SQLiteDeliveryStore` (one suite runs
against both). Due deliveries are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` inside the claiming
``UPDATE``, so concurrent workers never take the same delivery and never wait on each other's claims. Tables live
in ``schema`` (created if missing). Each thread gets its own connection; every method is one transaction.
Errors from the driver are raised as :class:`~integration_kit.errors.StoreUnavailable` at one boundary.

Needs the ``postgres`` extra (``psycopg``), imported when a store is built, never by ``import integration_kit``.
The connection string's password never appears in :attr:`PostgresDeliveryStore.name` or errors.
"""

# ruff: noqa: S608 - the only name put into SQL text is the schema, checked against _IDENTIFIER; values are bound

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from integration_kit.clock import Clock, WallClock
from integration_kit.errors import ConfigurationError, StoreUnavailable
from integration_kit.webhooks.delivery_store import (
    AttemptLogEntry,
    DeliveryStore,
    DueDelivery,
    EndpointState,
    record_parameters,
)

__all__ = ["PostgresDeliveryStore"]

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.webhook_messages (
    id TEXT PRIMARY KEY, event_type TEXT NOT NULL, payload BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.webhook_deliveries (
    message_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL, claimed_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_status INTEGER, last_error TEXT, finished_at DOUBLE PRECISION, PRIMARY KEY (message_id, endpoint_id));
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON {s}.webhook_deliveries (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS {s}.webhook_attempt_log (
    message_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, attempt INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL,
    status INTEGER, latency DOUBLE PRECISION NOT NULL, outcome TEXT NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS webhook_attempt_log_message ON {s}.webhook_attempt_log (message_id, endpoint_id);
CREATE TABLE IF NOT EXISTS {s}.webhook_endpoints (
    id TEXT PRIMARY KEY, enabled BOOLEAN NOT NULL DEFAULT TRUE, disabled_reason TEXT,
    failing_since DOUBLE PRECISION)
"""

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresDeliveryStore(DeliveryStore):
    """The sender's durable state in PostgreSQL at ``dsn`` (a libpq connection string or URL), in ``schema``.

    ``connect_timeout`` is in seconds; ``clock`` gives epoch seconds (the wall clock by default: every worker's
    clock must be in sync, as for any lease).
    """

    def __init__(
        self, dsn: str, *, schema: str = "integration_kit", clock: Clock | None = None, connect_timeout: float = 5.0
    ) -> None:
        import psycopg

        if not _IDENTIFIER.fullmatch(schema):
            raise ConfigurationError(f"PostgresDeliveryStore: schema must be a plain lower-case name, got {schema!r}")
        self._psycopg: Any = psycopg
        self._dsn = dsn
        self._schema = schema
        self._connect_timeout = connect_timeout
        self.clock: Clock = clock if clock is not None else WallClock()
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        with self._transaction("open") as db:
            for statement in _SCHEMA.format(s=schema).split(";"):
                db.execute(statement)

    @property
    def name(self) -> str:
        """``postgresql://host/db schema`` with no password."""
        info = self._connection().info
        return f"postgresql://{info.host}:{info.port}/{info.dbname} {self._schema}"

    def enqueue(self, message_id: str, event_type: str, payload: bytes, endpoint_ids: Sequence[str]) -> bool:
        """Store a message and its deliveries in one transaction; ``False`` if the id was already sent."""
        now = self.clock.now()
        s = self._schema
        with self._transaction("webhooks.enqueue") as db:
            inserted = db.execute(
                f"INSERT INTO {s}.webhook_messages VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
                (message_id, event_type, payload, now),
            ).fetchone()
            if inserted is None:
                return False
            for endpoint_id in endpoint_ids:
                db.execute(
                    f"INSERT INTO {s}.webhook_deliveries (message_id, endpoint_id, state, next_attempt_at) "
                    f"VALUES (%s, %s, CASE WHEN EXISTS (SELECT 1 FROM {s}.webhook_endpoints WHERE id = %s "
                    "AND NOT enabled) THEN 'disabled' ELSE 'pending' END, %s)",
                    (message_id, endpoint_id, endpoint_id, now),
                )
        return True

    def claim_due(self, *, lease: float, limit: int = 100) -> list[DueDelivery]:
        """Claim due deliveries with ``FOR UPDATE SKIP LOCKED`` (concurrent workers take disjoint sets)."""
        now = self.clock.now()
        s = self._schema
        with self._transaction("webhooks.claim") as db:
            rows = db.execute(
                f"WITH due AS (SELECT message_id, endpoint_id FROM {s}.webhook_deliveries "
                "WHERE state = 'pending' AND next_attempt_at <= %s AND claimed_until <= %s "
                "ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) "
                f"UPDATE {s}.webhook_deliveries d SET claimed_until = %s FROM due, {s}.webhook_messages m "
                "WHERE d.message_id = due.message_id AND d.endpoint_id = due.endpoint_id AND m.id = d.message_id "
                "RETURNING d.message_id, d.endpoint_id, m.event_type, m.payload, d.attempts, m.created_at, "
                "d.next_attempt_at",
                (now, now, limit, now + lease),
            ).fetchall()
        rows.sort(key=lambda r: r[6])
        return [DueDelivery(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in rows]

    def record(self, entry: AttemptLogEntry, *, next_attempt_at: float | None = None, counted: bool = True) -> None:
        """Log an attempt and move its delivery on."""
        log_row, update_row = record_parameters(entry, next_attempt_at=next_attempt_at, counted=counted)
        s = self._schema
        with self._transaction("webhooks.record") as db:
            if counted:
                db.execute(f"INSERT INTO {s}.webhook_attempt_log VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", log_row)
            db.execute(
                f"UPDATE {s}.webhook_deliveries SET state = %s, attempts = attempts + %s, next_attempt_at = %s, "
                "claimed_until = 0, last_status = %s, last_error = %s, finished_at = %s "
                "WHERE message_id = %s AND endpoint_id = %s",
                update_row,
            )

    def endpoint(self, endpoint_id: str) -> EndpointState:
        """The endpoint's state."""
        with self._transaction("webhooks.endpoint") as db:
            row = db.execute(
                f"SELECT enabled, disabled_reason, failing_since FROM {self._schema}.webhook_endpoints WHERE id = %s",
                (endpoint_id,),
            ).fetchone()
        return EndpointState(endpoint_id) if row is None else EndpointState(endpoint_id, bool(row[0]), row[1], row[2])

    def set_failing(self, endpoint_id: str, since: float | None) -> float | None:
        """Record failing since ``since`` (kept if already failing) or recovered (``None``)."""
        s = self._schema
        with self._transaction("webhooks.set_failing") as db:
            db.execute(f"INSERT INTO {s}.webhook_endpoints (id) VALUES (%s) ON CONFLICT DO NOTHING", (endpoint_id,))
            row = db.execute(
                f"UPDATE {s}.webhook_endpoints SET failing_since = "
                "CASE WHEN %s::double precision IS NULL THEN NULL ELSE COALESCE(failing_since, %s) END "
                "WHERE id = %s RETURNING failing_since",
                (since, since, endpoint_id),
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def disable(self, endpoint_id: str, reason: str) -> bool:
        """Disable the endpoint and park its pending deliveries."""
        s = self._schema
        with self._transaction("webhooks.disable") as db:
            db.execute(f"INSERT INTO {s}.webhook_endpoints (id) VALUES (%s) ON CONFLICT DO NOTHING", (endpoint_id,))
            changed = db.execute(
                f"UPDATE {s}.webhook_endpoints SET enabled = FALSE, disabled_reason = %s WHERE id = %s AND enabled",
                (reason, endpoint_id),
            ).rowcount
            db.execute(
                f"UPDATE {s}.webhook_deliveries SET state = 'disabled', finished_at = %s "
                "WHERE endpoint_id = %s AND state = 'pending'",
                (self.clock.now(), endpoint_id),
            )
        return bool(changed)

    def enable(self, endpoint_id: str) -> int:
        """Enable the endpoint; its parked deliveries become due now."""
        s = self._schema
        with self._transaction("webhooks.enable") as db:
            db.execute(
                f"UPDATE {s}.webhook_endpoints SET enabled = TRUE, disabled_reason = NULL, failing_since = NULL "
                "WHERE id = %s",
                (endpoint_id,),
            )
            return int(
                db.execute(
                    f"UPDATE {s}.webhook_deliveries SET state = 'pending', next_attempt_at = %s, finished_at = NULL "
                    "WHERE endpoint_id = %s AND state = 'disabled'",
                    (self.clock.now(), endpoint_id),
                ).rowcount
            )

    def log(
        self, *, message_id: str | None = None, endpoint_id: str | None = None, limit: int = 1000
    ) -> list[AttemptLogEntry]:
        """The attempt log, oldest first."""
        with self._transaction("webhooks.log") as db:
            rows = db.execute(
                f"SELECT * FROM {self._schema}.webhook_attempt_log WHERE (%s::text IS NULL OR message_id = %s) "
                "AND (%s::text IS NULL OR endpoint_id = %s) ORDER BY at, attempt LIMIT %s",
                (message_id, message_id, endpoint_id, endpoint_id, limit),
            ).fetchall()
        return [AttemptLogEntry(*row) for row in rows]

    def next_due(self) -> float | None:
        """When the earliest pending delivery is due."""
        with self._transaction("webhooks.next_due") as db:
            row = db.execute(
                f"SELECT MIN(next_attempt_at) FROM {self._schema}.webhook_deliveries WHERE state = 'pending'"
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def counts(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        with self._transaction("webhooks.counts") as db:
            rows = db.execute(
                f"SELECT state, COUNT(*) FROM {self._schema}.webhook_deliveries GROUP BY state"
            ).fetchall()
        found = dict(rows)
        return {state: int(found.get(state, 0)) for state in ("pending", "delivered", "failed", "disabled")}

    def delivery(self, message_id: str, endpoint_id: str) -> dict[str, Any] | None:
        """One delivery's row, or ``None``."""
        with self._transaction("webhooks.delivery") as db:
            cursor = db.execute(
                "SELECT state, attempts, next_attempt_at, last_status, last_error "
                f"FROM {self._schema}.webhook_deliveries WHERE message_id = %s AND endpoint_id = %s",
                (message_id, endpoint_id),
            )
            row = cursor.fetchone()
            names = [c.name for c in cursor.description or ()]
        return None if row is None else dict(zip(names, row, strict=True))

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = self._psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, int(self._connect_timeout))
            )
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[Any]:
        """One transaction on this thread's connection; driver errors become :class:`StoreUnavailable`."""
        try:
            connection = self._connection()
            with connection.transaction():
                yield connection
        except self._psycopg.Error as exc:
            raise StoreUnavailable(
                f"{type(exc).__name__}", store=f"postgresql {self._schema}", operation=operation
            ) from exc

    def __repr__(self) -> str:
        return f"PostgresDeliveryStore(schema={self._schema!r})"
