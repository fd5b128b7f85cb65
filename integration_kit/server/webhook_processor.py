"""Processing behind the inbox: the user's handler runs under the call engine, failures end in dead letters.

Each claimed event is one logical call of a :class:`~integration_kit.engine.call.CallEngine` (through
:func:`~integration_kit.engine.decorator.resilient`): the handler is an attempt, anything it raises is transient,
and the engine's retry policy, backoff and deadline decide whether and when it runs again. When the engine gives up
(:class:`~integration_kit.errors.GaveUp`, or a breaker or bulkhead refusing the call) the event goes to the
dead-letter state with the error's description; :meth:`WebhookProcessor.replay` sends dead letters back through
the handler (the ``integration-kit webhooks replay`` command).

Delivery to the handler is at least once: an event is claimed for ``lease`` seconds, and if the process dies before
the event is marked done, the lease lapses and the event is claimed again (by this process after a restart, or by
another). Make the handler idempotent, e.g. with :func:`~integration_kit.server.idempotency.idempotent` keyed on
the event id, or with a unique constraint in the same transaction as its effect.

An optional :class:`OrderingGuard` drops an event older than one already processed for the same key.
"""

from __future__ import annotations

import inspect
import logging
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from integration_kit.clock import Clock, SystemClock
from integration_kit.engine.decorator import resilient
from integration_kit.errors import IntegrationError
from integration_kit.events import Hook
from integration_kit.policies.config import RetryPolicy
from integration_kit.policies.outcome import Verdict
from integration_kit.server.inbox import Inbox, InboxEvent, InboxState
from integration_kit.stores.base import Store

__all__ = ["DEFAULT_HANDLER_RETRY", "Handler", "OrderingGuard", "WebhookProcessor"]

logger = logging.getLogger("integration_kit.webhooks")

Handler = Callable[[InboxEvent], object]
"""The user's code for one event (a function or a coroutine function); it returns when the event is processed and
raises when it is not."""

#: The handler's retry policy by default: 5 tries, from 1 s doubling to 30 s, full jitter (about a minute in all).
DEFAULT_HANDLER_RETRY = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=30.0)
#: How long a claim lasts (seconds) before another process may take the event: longer than the handler's deadline.
DEFAULT_LEASE = 300.0
#: The handler's deadline per event (seconds), retries included.
DEFAULT_DEADLINE = 120.0


@dataclass(frozen=True, slots=True)
class OrderingGuard:
    """Drop an event whose ``version`` is lower than the last processed one for its ``key``.

    ``key`` and ``version`` read the event (e.g. the order id and its ``updated_at`` as a number); the last version
    per key lives in ``store`` under ``namespace``. A dropped event ends in the STALE state, not in dead letters.
    """

    store: Store
    key: Callable[[InboxEvent], str]
    version: Callable[[InboxEvent], float]
    namespace: str = "webhook-order:"

    def is_stale(self, event: InboxEvent) -> bool:
        """Whether a newer event for the same key was already processed."""
        last = self.store.get(self.namespace + self.key(event))
        return last is not None and float(last) > self.version(event)

    def record(self, event: InboxEvent) -> None:
        """Remember the event's version unless a newer one is already recorded (compare-and-set loop)."""
        name = self.namespace + self.key(event)
        version = self.version(event)
        for _ in range(16):
            last = self.store.get(name)
            if last is not None and float(last) >= version:
                return
            if self.store.compare_and_set(name, last, repr(float(version)).encode()):
                return


class WebhookProcessor:
    """Runs ``handler`` for each pending event of ``inbox`` under the engine's retry, backoff and deadline.

    ``retry`` defaults to :data:`DEFAULT_HANDLER_RETRY`, ``deadline`` to 120 s per event, ``lease`` to 300 s;
    ``max_claims`` bounds how often an event that keeps killing its process is taken (then it is dead). ``clock``
    paces the retries (a :class:`~integration_kit.clock.ManualClock` makes them instant in tests); ``rng`` seeds
    the backoff's jitter; events go to ``hooks``.
    """

    def __init__(
        self,
        inbox: Inbox,
        handler: Handler,
        *,
        name: str = "webhooks",
        retry: RetryPolicy = DEFAULT_HANDLER_RETRY,
        deadline: float | None = DEFAULT_DEADLINE,
        lease: float = DEFAULT_LEASE,
        max_claims: int = 10,
        ordering: OrderingGuard | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        hooks: Iterable[Hook] = (),
    ) -> None:
        if deadline is not None and lease <= deadline:
            raise ValueError(f"lease ({lease}s) must exceed the handler's deadline ({deadline}s)")
        self.inbox = inbox
        self.handler = handler
        self.lease = lease
        self.max_claims = max_claims
        self.ordering = ordering
        self._async = inspect.iscoroutinefunction(handler)
        self._run: Callable[..., Any] = resilient(
            name=name,
            retry=retry,
            deadline=deadline,
            classifier=lambda exc: Verdict.TRANSIENT,
            idempotent=True,
            clock=clock if clock is not None else SystemClock(),
            rng=rng,
            hooks=hooks,
        )(handler)
        self.processed = 0
        self.dead = 0

    def process_due(self, limit: int = 100) -> int:
        """Claim and process up to ``limit`` due events, one at a time; return how many were claimed."""
        count = 0
        while count < limit:
            events = self.inbox.claim(lease=self.lease, limit=1, max_claims=self.max_claims)
            if not events:
                break
            count += 1
            self.process(events[0])
        return count

    def process(self, event: InboxEvent) -> InboxState:
        """Run the handler for one claimed event and record how it ended."""
        if self.ordering is not None and self.ordering.is_stale(event):
            self.inbox.finish(event.id, InboxState.STALE)
            return InboxState.STALE
        try:
            if self._async:
                anyio.run(self._run, event)  # an async handler gets an event loop of its own in this worker
            else:
                self._run(event)
        except IntegrationError as exc:
            root: BaseException = getattr(exc, "last_error", None) or exc
            while root.__cause__ is not None:  # the handler's own exception, under the engine's wrapping
                root = root.__cause__
            description = f"{type(exc).__name__}: {type(root).__name__}: {str(root)[:200]}"
            self.inbox.finish(event.id, InboxState.DEAD, description)
            self.dead += 1
            logger.warning("webhook %s dead after %s", event.id, type(exc).__name__)
            return InboxState.DEAD
        if self.ordering is not None:
            self.ordering.record(event)
        self.inbox.finish(event.id, InboxState.DONE)
        self.processed += 1
        return InboxState.DONE

    def replay(self, ids: Sequence[str] | None = None) -> int:
        """Send dead letters (``ids``, or all) back through the handler now; return how many were replayed."""
        moved = self.inbox.replay(ids)
        if moved:
            self.process_due(limit=moved)
        return moved

    def run(self, stop: threading.Event, *, poll: float = 0.05, batch: int = 100) -> None:
        """Process events until ``stop`` is set, waiting ``poll`` seconds whenever the inbox has none due."""
        while not stop.is_set():
            try:
                busy = self.process_due(batch)
            except IntegrationError:
                logger.warning("webhook inbox unavailable; retrying in %.2fs", poll, exc_info=True)
                busy = 0
            if not busy:
                stop.wait(poll)

    def start(self, *, poll: float = 0.05) -> Callable[[], None]:
        """Run :meth:`run` in a daemon thread; return a function that stops it and waits for it."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), kwargs={"poll": poll}, daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join()

        return halt
