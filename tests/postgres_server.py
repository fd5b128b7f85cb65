"""The shared PostgreSQL on 127.0.0.1 that the outbox, delivery-store and tune-storage tests use through names they
create and remove (a schema or a table of their own): where it is, and skipping (or failing under CI) without it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import psycopg
import pytest

__all__ = ["DSN", "postgres_or_skip", "schema"]

#: The server the tests use; ``IK_POSTGRES_DSN`` points them elsewhere.
DSN = os.environ.get("IK_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_or_skip() -> None:
    """Skip the test when PostgreSQL does not answer at :data:`DSN`; fail it under CI or where PostgreSQL is
    installed, since it should be running there."""
    try:
        psycopg.connect(DSN, connect_timeout=2).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true" or shutil.which("postgres"):
            pytest.fail(f"PostgreSQL at {DSN} is required: {exc}")
        pytest.skip(f"no PostgreSQL at {DSN}")


@pytest.fixture
def schema() -> Iterator[str]:
    """A schema of our own on the shared server (its name: not created here), dropped afterwards."""
    postgres_or_skip()
    name = f"ik_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
