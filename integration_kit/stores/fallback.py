"""What a shared breaker or budget does when its store fails: fail open or closed, and say so once per outage."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from integration_kit.clock import Clock
from integration_kit.errors import StoreUnavailable
from integration_kit.events import StoreUnreachable

__all__ = ["StoreFallback"]

logger = logging.getLogger("integration_kit")


class StoreFallback:
    """Tracks the health of an owner's store and reports outages at their edges.

    ``fail_open=True`` (the default) means the owner carries on with its local, per-process state while the store
    is down; ``False`` means it refuses (calls, retries). The first failure of an outage is logged as a warning
    and given to ``on_store_error`` as a :class:`~integration_kit.events.StoreUnreachable` event; the recovery is
    logged once. A failing ``on_store_error`` is logged and skipped.
    """

    __slots__ = ("_clock", "_down", "_lock", "_on_store_error", "_owner", "fail_open")

    def __init__(
        self,
        owner: str,
        clock: Clock,
        *,
        fail_open: bool = True,
        on_store_error: Callable[[StoreUnreachable], None] | None = None,
    ) -> None:
        self._owner = owner
        self._clock = clock
        self._on_store_error = on_store_error
        self._down = False
        self._lock = threading.Lock()
        self.fail_open = fail_open

    @property
    def down(self) -> bool:
        """Whether the last store operation failed."""
        return self._down

    def failed(self, error: StoreUnavailable) -> None:
        """Note a failed store operation; report it if it starts an outage."""
        with self._lock:
            starts = not self._down
            self._down = True
        if not starts:
            return
        fallback = "open" if self.fail_open else "closed"
        logger.warning("%s: store %s unavailable (%s); failing %s", self._owner, error.store, error.message, fallback)
        if self._on_store_error is None:
            return
        event = StoreUnreachable(
            self._clock.now(), self._owner, 0, error.store, error.operation, error.message, fallback
        )
        try:
            self._on_store_error(event)
        except Exception:
            logger.warning("%s: on_store_error %r failed", self._owner, self._on_store_error, exc_info=True)

    def recovered(self) -> None:
        """Note a successful store operation; log the end of an outage."""
        if self._down:
            with self._lock:
                self._down = False
            logger.info("%s: store reachable again", self._owner)
