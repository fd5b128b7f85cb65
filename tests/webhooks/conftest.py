"""The webhook tests' fixtures: ``schema``, a PostgreSQL schema of a test's own (see ``tests/postgres_server.py``)."""

from __future__ import annotations

from postgres_server import schema

__all__ = ["schema"]
