"""A :class:`~integration_kit.stores.Store` on Redis, for many processes on many hosts.

Claims are ``SET key value NX PX ttl``; compare-and-set and bounded increments are Lua scripts, which Redis runs
atomically. Expiry is Redis's own (``PX`` timers on the server), so hosts whose clocks disagree still agree on
when a lease or a record lapses. ``redis`` (redis-py) is imported when a :class:`RedisStore` is built, never by
``import integration_kit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import urlsplit, urlunsplit

from integration_kit.errors import StoreUnavailable
from integration_kit.stores.base import Store, check_ttl

if TYPE_CHECKING:
    import redis as redis_lib

__all__ = ["RedisStore"]

# KEYS[1]; ARGV: expected ("" flag in ARGV[1]: "1" when expected is given), expected, new ("" flag in ARGV[3]:
# "1" when new is given), new, ttl in ms ("0": none).
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
else
  if current then return 0 end
end
if ARGV[3] == '1' then
  if ARGV[5] ~= '0' then
    redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
  else
    redis.call('SET', KEYS[1], ARGV[4])
  end
else
  redis.call('DEL', KEYS[1])
end
return 1
"""

# KEYS[1]; ARGV: delta, initial, minimum ("" none), maximum ("" none), ttl in ms ("0": none).
_INCREMENT = """
local current = redis.call('GET', KEYS[1])
local created = false
local value
if current then value = tonumber(current) + tonumber(ARGV[1]) else
  value = tonumber(ARGV[2]) + tonumber(ARGV[1]); created = true end
if ARGV[3] ~= '' and value < tonumber(ARGV[3]) then value = tonumber(ARGV[3]) end
if ARGV[4] ~= '' and value > tonumber(ARGV[4]) then value = tonumber(ARGV[4]) end
if created and ARGV[5] ~= '0' then
  redis.call('SET', KEYS[1], value, 'PX', ARGV[5])
else
  redis.call('SET', KEYS[1], value, 'KEEPTTL')
end
return value
"""


class RedisStore(Store):
    """Shared state in Redis at ``url`` (``redis://host:port/db``; ``rediss://`` for TLS).

    Every key is prefixed with ``prefix`` so one Redis database can serve several applications. ``timeout``
    (seconds) bounds connecting and each command; a failure to reach the server raises
    :class:`~integration_kit.errors.StoreUnavailable`. A password in the URL is used but never shown in
    :attr:`name`, errors or events.
    """

    blocking: ClassVar[bool] = True

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "ik:", timeout: float = 1.0) -> None:
        import redis as redis_lib

        self._redis_errors: tuple[type[Exception], ...] = (redis_lib.RedisError,)
        self._name = _redact(url)
        self._prefix = prefix
        self._client: redis_lib.Redis = redis_lib.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
        )
        self._cas: Callable[..., Any] = self._client.register_script(_COMPARE_AND_SET)
        self._incr: Callable[..., Any] = self._client.register_script(_INCREMENT)

    @property
    def name(self) -> str:
        """The URL with any password removed."""
        return self._name

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or ``None`` when absent (Redis expires keys itself)."""
        with self._operation("get"):
            value = self._client.get(self._prefix + key)
        return None if value is None else cast(bytes, value)

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """``SET key value [PX ttl]``."""
        check_ttl(ttl)
        with self._operation("set"):
            self._client.set(self._prefix + key, value, px=_ms(ttl))

    def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """``SET key value NX [PX ttl]``: atomic claim."""
        check_ttl(ttl)
        with self._operation("add"):
            return bool(self._client.set(self._prefix + key, value, nx=True, px=_ms(ttl)))

    def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, *, ttl: float | None = None
    ) -> bool:
        """Replace (or delete, ``value=None``) ``key`` only if its value is ``expected``: one Lua script."""
        check_ttl(ttl)
        args = (
            "0" if expected is None else "1",
            b"" if expected is None else expected,
            "0" if value is None else "1",
            b"" if value is None else value,
            str(_ms(ttl) or 0),
        )
        with self._operation("compare_and_set"):
            return bool(self._cas(keys=[self._prefix + key], args=args))

    def delete(self, key: str) -> bool:
        """``DEL key``."""
        with self._operation("delete"):
            return bool(self._client.delete(self._prefix + key))

    def expire(self, key: str, ttl: float | None) -> bool:
        """``PEXPIRE key ttl``, or ``PERSIST key`` when ``ttl`` is ``None``."""
        check_ttl(ttl)
        name = self._prefix + key
        with self._operation("expire"):
            if ttl is not None:
                return bool(self._client.pexpire(name, _ms(ttl) or 1))
            if not self._client.exists(name):
                return False
            self._client.persist(name)
            return True

    def _increment(
        self, key: str, delta: int, initial: int, minimum: int | None, maximum: int | None, ttl: float | None
    ) -> int:
        """Add ``delta`` to the counter ``key``, clamped: one Lua script; ``ttl`` applies on creation."""
        args = (
            delta,
            initial,
            "" if minimum is None else minimum,
            "" if maximum is None else maximum,
            str(_ms(ttl) or 0),
        )
        with self._operation("increment"):
            return int(self._incr(keys=[self._prefix + key], args=args))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    @contextmanager
    def _operation(self, operation: str) -> Iterator[None]:
        """Translate redis-py's errors into :class:`StoreUnavailable` (the one boundary)."""
        try:
            yield
        except self._redis_errors as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}", store=self._name, operation=operation) from exc


def _ms(ttl: float | None) -> int | None:
    """A TTL in whole milliseconds, at least 1, or ``None``."""
    return None if ttl is None else max(1, math.ceil(ttl * 1000))


def _redact(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
