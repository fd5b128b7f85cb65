"""The :class:`Store` contract: a small key-value interface whose every operation is atomic.

Values are bytes; a counter made by :meth:`Store.increment` reads back as its decimal digits (as in Redis). A
``ttl`` is in seconds: the key disappears once it has passed, and ``None`` means it never expires. Every backend
passes the same contract suite (``tests/stores/test_stores.py``).

Who decides that a key has expired: :class:`~integration_kit.stores.MemoryStore` and
:class:`~integration_kit.stores.SQLiteStore` compare against their injected clock, so tests step a
:class:`~integration_kit.clock.ManualClock`; :class:`~integration_kit.stores.RedisStore` leaves it to the
server's ``PX`` timers, so every host sees the same expiry whatever its own clock says.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar, Self

from integration_kit.clock import WallClock  # re-exported: the default clock of the persistent stores

__all__ = ["Store", "WallClock"]


class Store(ABC):
    """An atomic key-value store for idempotency records, shared breaker state and shared budgets.

    ``blocking`` says whether an operation may wait on I/O; async callers run those in a worker thread. Errors
    reaching the backend are raised as :class:`~integration_kit.errors.StoreUnavailable`.
    """

    #: Whether operations may block on I/O (a file lock, a socket).
    blocking: ClassVar[bool] = True

    @property
    @abstractmethod
    def name(self) -> str:
        """A short description for errors and events (``"sqlite:/path"``, ``"redis://host:port/0"``); no secret."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or ``None`` when it is absent or expired."""

    @abstractmethod
    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any value, expiring after ``ttl`` seconds."""

    @abstractmethod
    def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Claim ``key``: store ``value`` only if the key is absent (or expired); return whether it was stored."""

    @abstractmethod
    def compare_and_set(
        self, key: str, expected: bytes | None, value: bytes | None, *, ttl: float | None = None
    ) -> bool:
        """Replace the value of ``key`` only if it is ``expected`` now; return whether it was replaced.

        ``expected=None`` means "only if absent" (as :meth:`add`); ``value=None`` deletes the key.
        """

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it was present."""

    @abstractmethod
    def expire(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new ``ttl`` (``None``: never expires); return whether the key was present."""

    def increment(
        self,
        key: str,
        delta: int,
        *,
        initial: int = 0,
        minimum: int | None = None,
        maximum: int | None = None,
        ttl: float | None = None,
    ) -> int:
        """Add ``delta`` to the counter ``key`` (``initial`` if absent), clamped to ``[minimum, maximum]``.

        Return the new value. ``ttl`` applies only when the counter is created.
        """
        check_ttl(ttl)
        return self._increment(key, delta, initial, minimum, maximum, ttl)

    @abstractmethod
    def _increment(
        self, key: str, delta: int, initial: int, minimum: int | None, maximum: int | None, ttl: float | None
    ) -> int:
        """The backend's atomic :meth:`increment`, arguments already checked."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends need it
        """Release connections and files; the store may not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def check_ttl(ttl: float | None) -> None:
    """Raise ``ValueError`` unless ``ttl`` is ``None`` or a positive, finite number of seconds."""
    if ttl is None:
        return
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not (math.isfinite(ttl) and ttl > 0):
        raise ValueError(f"ttl must be a positive number of seconds or None, got {ttl!r}")


def clamp(value: int, minimum: int | None, maximum: int | None) -> int:
    """``value`` bounded to ``[minimum, maximum]`` (either bound may be ``None``)."""
    if minimum is not None and value < minimum:
        return minimum
    if maximum is not None and value > maximum:
        return maximum
    return value
