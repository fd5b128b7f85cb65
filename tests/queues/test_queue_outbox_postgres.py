"""The PostgreSQL outbox's own rules on the shared server, in a schema each test creates and drops: the index it
makes, marking nothing, and the operation and table named (never the DSN) when the server cannot be reached or the
connection is gone. The contract shared with SQLite is in ``test_queue_outbox.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from queue_servers import pg_dsn, unique_name

from integration_kit.clock import ManualClock
from integration_kit.errors import StoreUnavailable
from integration_kit.queues.message import Message
from integration_kit.queues.outbox import PostgresOutbox

pytestmark = pytest.mark.queues
__all__ = ["pg_dsn"]


@pytest.fixture
def schema(pg_dsn: str) -> Iterator[str]:
    import psycopg

    name = unique_name("ikob")
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def test_the_index_mark_nothing_and_a_closed_connection(pg_dsn: str, schema: str) -> None:
    import psycopg

    outbox = PostgresOutbox(pg_dsn, schema=schema, table="events", clock=ManualClock(5.0))
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        indexes = [r[0] for r in admin.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,))]
    assert "events_unsent" in indexes
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        outbox.add(connection, Message(b"", key="k"))
    assert outbox.mark_sent("relay", []) == 0
    outbox.release("relay", [])
    assert outbox.pending() == 1
    assert [(r.message.key, r.message.body) for r in outbox.claim("relay", 10, lease=5)] == [("k", b"")]
    outbox.close()
    for operation, call in {
        "outbox claim": lambda: outbox.claim("relay", 10, lease=5),
        "outbox update": lambda: outbox.mark_sent("relay", [1]),
    }.items():
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert (caught.value.store, caught.value.operation) == (f"postgresql:{schema}.events", operation)
        assert str(caught.value).endswith(": OperationalError")


def test_an_unreachable_server_names_the_table_never_the_dsn() -> None:
    secret = "s3cr3t-pw"
    with pytest.raises(StoreUnavailable) as caught:
        PostgresOutbox(f"host=127.0.0.1 port=1 user=ik password={secret} connect_timeout=2")
    assert (caught.value.store, caught.value.operation) == ("postgresql:public.ik_outbox", "outbox open")
    assert str(caught.value).endswith(": OperationalError")
    assert secret not in str(caught.value)
