"""An in-process :class:`~integration_kit.stores.Store`: a dict behind a lock, expiry on the injected clock."""

from __future__ import annotations

import threading
from typing import ClassVar

from integration_kit.clock import Clock, SystemClock
from integration_kit.stores.base import Store, check_ttl, clamp

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Shared state for the threads of one process. Fast, never blocks on I/O, lost when the process exits.

    Keys expire on ``clock`` (default :class:`~integration_kit.clock.SystemClock`); expired keys are dropped when
    next touched, and all of them every ``purge_every`` writes, so memory stays bounded by the live keys.
    """

    blocking: ClassVar[bool] = False

    def __init__(self, *, clock: Clock | None = None, purge_every: int = 1024) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()
        self._purge_every = max(1, purge_every)
        self._writes = 0

    @property
    def name(self) -> str:
        """Always ``"memory"``."""
        return "memory"

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or ``None`` when absent or expired."""
        with self._lock:
            return self._live(key, self._clock.now())

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, expiring after ``ttl`` seconds."""
        check_ttl(ttl)
        with self._lock:
            self._write(key, value, ttl, self._clock.now())

    def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent or expired."""
        check_ttl(ttl)
        with self._lock:
            now = self._clock.now()
            if self._live(key, now) is not None:
                return False
            self._write(key, value, ttl, now)
            return True

    def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, *, ttl: float | None = None
    ) -> bool:
        """Replace (or delete, ``value=None``) ``key`` only if its value is ``expected`` (``None``: absent)."""
        check_ttl(ttl)
        with self._lock:
            now = self._clock.now()
            if self._live(key, now) != expected:
                return False
            if value is None:
                self._data.pop(key, None)
            else:
                self._write(key, value, ttl, now)
            return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was present."""
        with self._lock:
            present = self._live(key, self._clock.now()) is not None
            self._data.pop(key, None)
            return present

    def expire(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new ``ttl``; return whether it was present."""
        check_ttl(ttl)
        with self._lock:
            now = self._clock.now()
            value = self._live(key, now)
            if value is None:
                return False
            self._data[key] = (value, None if ttl is None else now + ttl)
            return True

    def _increment(
        self, key: str, delta: int, initial: int, minimum: int | None, maximum: int | None, ttl: float | None
    ) -> int:
        """Add ``delta`` to the counter ``key``, clamped; ``ttl`` applies when the counter is created."""
        with self._lock:
            now = self._clock.now()
            current = self._live(key, now)
            if current is None:
                new = clamp(initial + delta, minimum, maximum)
                self._write(key, str(new).encode(), ttl, now)
            else:
                new = clamp(int(current) + delta, minimum, maximum)
                self._data[key] = (str(new).encode(), self._data[key][1])
            return new

    def __len__(self) -> int:
        """The number of stored keys, expired ones not yet purged included."""
        return len(self._data)

    # -- helpers (lock held) ----------------------------------------------------------------------------------

    def _live(self, key: str, now: float) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= now:
            del self._data[key]
            return None
        return value

    def _write(self, key: str, value: bytes, ttl: float | None, now: float) -> None:
        self._data[key] = (bytes(value), None if ttl is None else now + ttl)
        self._writes += 1
        if self._writes % self._purge_every == 0:
            expired = [k for k, (_, at) in self._data.items() if at is not None and at <= now]
            for k in expired:
                del self._data[k]
