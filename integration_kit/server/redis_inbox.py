"""The webhook inbox on Redis, for receivers running as many processes on many hosts.

The same contract as :class:`~integration_kit.server.inbox.SQLiteInbox` (one test suite runs against both). Each
step is one Lua script, which Redis runs atomically:

- ``<prefix>ev:<id>``: a hash with the event (source, arrival, body, meta, state, claims, deliveries, last error);
- ``<prefix>pending``: a sorted set of pending ids, scored by when each is claimable (arrival, or lease end);
- ``<prefix>done``, ``<prefix>stale``, ``<prefix>dead``: sorted sets of finished ids, scored by arrival.

Durability is the Redis server's: an event is acknowledged after Redis applied the write, so configure
``appendonly yes`` with ``appendfsync always`` (or ``everysec`` and accept a second of exposure), or pass
``wait_aof=True`` to wait with ``WAITAOF`` (Redis 7.2+) until the write is fsynced to the append-only file. Times
come from the inbox's clock (epoch seconds), so every host must keep its clock in sync (NTP), as leases do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from integration_kit.clock import Clock, WallClock
from integration_kit.server.inbox import DEFAULT_DEDUP_WINDOW, Inbox, InboxEvent, InboxState
from integration_kit.stores.redis import RedisStore

__all__ = ["RedisInbox"]

# KEYS: event hash, pending; ARGV: source, received_at, body, meta.
_PUT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'deliveries', 1)
  return 0
end
redis.call('HSET', KEYS[1], 'source', ARGV[1], 'received_at', ARGV[2], 'body', ARGV[3], 'meta', ARGV[4],
  'state', 'pending', 'claims', 0, 'deliveries', 1)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
return 1
"""

# KEYS: pending, dead; ARGV: now, lease, limit, max_claims, event key prefix, error text.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local claimed = {}
for _, id in ipairs(ids) do
  local key = ARGV[5] .. id
  local claims = tonumber(redis.call('HGET', key, 'claims') or '0')
  redis.call('ZREM', KEYS[1], id)
  if claims >= tonumber(ARGV[4]) then
    redis.call('HSET', key, 'state', 'dead', 'last_error', 'claimed ' .. claims .. ' times without finishing')
    redis.call('ZADD', KEYS[2], redis.call('HGET', key, 'received_at'), id)
  else
    redis.call('HINCRBY', key, 'claims', 1)
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
    table.insert(claimed, id)
  end
end
return claimed
"""

# KEYS: event hash, pending, target set; ARGV: id, state, error ('' none).
_FINISH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'last_error', ARGV[3])
else redis.call('HDEL', KEYS[1], 'last_error') end
redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'received_at'), ARGV[1])
return 1
"""

# KEYS: dead, pending; ARGV: now, event key prefix, ids... (none: every dead id).
_REPLAY = """
local ids = {}
if #ARGV > 2 then for i = 3, #ARGV do table.insert(ids, ARGV[i]) end
else ids = redis.call('ZRANGE', KEYS[1], 0, -1) end
local moved = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HSET', ARGV[2] .. id, 'state', 'pending', 'claims', 0)
    redis.call('ZADD', KEYS[2], ARGV[1], id)
    moved = moved + 1
  end
end
return moved
"""


class RedisInbox(Inbox):
    """An inbox in Redis through ``store`` (a :class:`~integration_kit.stores.RedisStore`), under ``namespace``.

    ``dedup_window`` is in seconds; ``clock`` gives epoch seconds (the wall clock by default); ``wait_aof``
    waits for the append-only file's fsync before :meth:`put` returns (see the module docstring).
    """

    def __init__(
        self,
        store: RedisStore,
        *,
        namespace: str = "webhooks:",
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        clock: Clock | None = None,
        wait_aof: bool = False,
    ) -> None:
        self.store = store
        self.clock = clock if clock is not None else WallClock()
        self.dedup_window = dedup_window
        self.wait_aof = wait_aof
        self._base = store._prefix + namespace
        client: Any = store._client  # redis-py's client (typed loosely: replies are bytes here)
        self._client = client
        self._put: Callable[..., Any] = client.register_script(_PUT)
        self._claim: Callable[..., Any] = client.register_script(_CLAIM)
        self._finish: Callable[..., Any] = client.register_script(_FINISH)
        self._replay: Callable[..., Any] = client.register_script(_REPLAY)

    @property
    def name(self) -> str:
        """The Redis URL (no password) and the namespace."""
        return f"{self.store.name} {self._base}"

    def _key(self, name: str) -> str:
        return self._base + name

    def put(self, event: InboxEvent) -> bool:
        """Store the event unless its id is known (then count the delivery); one Lua script."""
        args = [event.source, repr(event.received_at), event.body, json.dumps(event.meta), event.id]
        with self.store._operation("inbox.put"):
            stored = bool(self._put(keys=[self._key("ev:" + event.id), self._key("pending")], args=args))
            if self.wait_aof:
                self._client.execute_command("WAITAOF", 1, 0, 1000)
        return stored

    def claim(self, *, lease: float, limit: int = 1, max_claims: int = 10) -> list[InboxEvent]:
        """Take up to ``limit`` claimable events for ``lease`` seconds, oldest first."""
        now = self.clock.now()
        args = [repr(now), repr(lease), limit, max_claims, self._key("ev:"), ""]
        with self.store._operation("inbox.claim"):
            ids = self._claim(keys=[self._key("pending"), self._key("dead")], args=args)
            events = [self._load(i.decode()) for i in ids]
        return [e for e in events if e is not None]

    def finish(self, event_id: str, state: InboxState, error: str | None = None) -> None:
        """Mark the event DONE, STALE or DEAD."""
        keys = [self._key("ev:" + event_id), self._key("pending"), self._key(state.value)]
        with self.store._operation("inbox.finish"):
            self._finish(keys=keys, args=[event_id, state.value, error or ""])

    def dead_letters(self, limit: int = 100) -> list[InboxEvent]:
        """The dead events, oldest first."""
        with self.store._operation("inbox.dead_letters"):
            ids = self._client.zrange(self._key("dead"), 0, limit - 1)
            events = [self._load(i.decode()) for i in ids]
        return [e for e in events if e is not None]

    def replay(self, ids: Sequence[str] | None = None) -> int:
        """Move dead events back to PENDING (``ids`` or every dead one)."""
        args = [repr(self.clock.now()), self._key("ev:"), *(ids or [])]
        if ids is not None and not ids:
            return 0
        with self.store._operation("inbox.replay"):
            return int(self._replay(keys=[self._key("dead"), self._key("pending")], args=args))

    def counts(self) -> dict[InboxState, int]:
        """How many events are in each state."""
        with self.store._operation("inbox.counts"):
            pipe = self._client.pipeline()
            for state in InboxState:
                pipe.zcard(self._key(state.value))
            sizes = pipe.execute()
        return {state: int(n) for state, n in zip(InboxState, sizes, strict=True)}

    def get(self, event_id: str) -> InboxEvent | None:
        """One event by id."""
        with self.store._operation("inbox.get"):
            return self._load(event_id)

    def purge(self) -> int:
        """Delete DONE and STALE events that arrived more than the dedup window ago."""
        cutoff = self.clock.now() - self.dedup_window
        removed = 0
        with self.store._operation("inbox.purge"):
            for state in ("done", "stale"):
                ids = self._client.zrangebyscore(self._key(state), "-inf", f"({cutoff!r}")
                for raw in ids:
                    self._client.delete(self._key("ev:" + raw.decode()))
                    self._client.zrem(self._key(state), raw)
                    removed += 1
        return removed

    def _load(self, event_id: str) -> InboxEvent | None:
        data: dict[bytes, Any] = self._client.hgetall(self._key("ev:" + event_id))
        if not data:
            return None
        error = data.get(b"last_error")
        return InboxEvent(
            id=event_id,
            source=data[b"source"].decode(),
            received_at=float(data[b"received_at"]),
            body=bytes(data[b"body"]),
            state=InboxState(data[b"state"].decode()),
            meta=json.loads(data[b"meta"]),
            claims=int(data[b"claims"]),
            deliveries=int(data[b"deliveries"]),
            last_error=None if error is None else error.decode(),
        )

    def __repr__(self) -> str:
        return f"RedisInbox({self.name!r})"
