"""Backends for state shared between calls, threads, processes and hosts.

One :class:`Store` contract, three backends:

- :class:`MemoryStore`: one process; a dict behind a lock.
- :class:`SQLiteStore`: the embedded default for one host; a WAL-mode database file that every process of the
  host opens, with read-modify-write operations in ``BEGIN IMMEDIATE`` transactions.
- :class:`RedisStore`: many processes and hosts; atomic ``SET NX PX`` and Lua scripts. ``redis`` is imported
  only when a ``RedisStore`` is built.

Idempotency records, shared circuit breakers and shared retry budgets are written against :class:`Store` only.
"""

from integration_kit.stores.base import Store
from integration_kit.stores.memory import MemoryStore
from integration_kit.stores.redis import RedisStore
from integration_kit.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "RedisStore", "SQLiteStore", "Store"]
