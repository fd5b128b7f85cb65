"""The outbox relay: claim unsent rows, publish them with confirms under the engine, mark them sent.

One pass (:meth:`OutboxRelay.run_once`)::

    claim up to batch_size rows (lease)  ->  publish the batch in order, every message confirmed
       (one engine call: timeout, deadline, retry with backoff, the breaker on the broker)
    ->  confirmed: mark sent              failed: release the rows (attempts + 1) and back off

A relay killed between publish and mark loses nothing: its lease lapses and a relay publishes the rows again
(the same message ids: JetStream drops the copy within its duplicate window, consumers' inboxes drop the rest).
While the broker is down the engine's breaker opens; the relay then waits with jittered, growing backoff instead
of hammering it, and resumes when a probe succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from dataclasses import dataclass

from integration_kit.errors import IntegrationError
from integration_kit.policies.config import RetryPolicy
from integration_kit.policies.retry import backoff_delay
from integration_kit.queues.outbox import Outbox
from integration_kit.queues.publisher import Publisher

__all__ = ["OutboxRelay", "RelayStats"]

logger = logging.getLogger("integration_kit.queues")

#: The relay's wait after a failed pass: 0.5 s doubling to 30 s, full jitter (a broker restart takes seconds).
RELAY_BACKOFF = RetryPolicy(max_attempts=1_000_000, base_delay=0.5, max_delay=30.0)


@dataclass(slots=True)
class RelayStats:
    """What a relay did so far."""

    published: int = 0
    batches: int = 0
    failed_batches: int = 0


class OutboxRelay:
    """Drains ``outbox`` through ``publisher``.

    ``batch_size`` rows per pass (default 100: one round of confirms for many messages); ``lease`` seconds a claim
    holds its rows (default 60; keep it above the publisher engine's deadline so a slow publish is not claimed
    twice); ``poll_interval`` seconds between passes when the outbox is empty (default 0.2); ``backoff`` the wait
    after a failed pass (default :data:`RELAY_BACKOFF`). ``owner`` names this relay in the lease (default random).
    """

    def __init__(
        self,
        outbox: Outbox,
        publisher: Publisher,
        *,
        batch_size: int = 100,
        lease: float = 60.0,
        poll_interval: float = 0.2,
        backoff: RetryPolicy = RELAY_BACKOFF,
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"OutboxRelay.batch_size must be >= 1, got {batch_size!r}")
        self.outbox = outbox
        self.publisher = publisher
        self.batch_size = batch_size
        self.lease = lease
        self.poll_interval = poll_interval
        self.backoff = backoff
        self.owner = owner or f"relay-{uuid.uuid4().hex[:12]}"
        self.rng = rng or random.Random()
        self.stats = RelayStats()
        self._stopping = asyncio.Event()

    async def run_once(self) -> int:
        """One pass: return how many messages were published; raise the publisher's error after releasing."""
        rows = await asyncio.to_thread(self.outbox.claim, self.owner, self.batch_size, self.lease)
        if not rows:
            return 0
        seqs = [row.seq for row in rows]
        try:
            await self.publisher.publish([row.message for row in rows])
        except BaseException:
            self.stats.failed_batches += 1
            await asyncio.shield(asyncio.to_thread(self.outbox.release, self.owner, seqs))
            raise
        await asyncio.to_thread(self.outbox.mark_sent, self.owner, seqs)
        self.stats.published += len(rows)
        self.stats.batches += 1
        return len(rows)

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current pass."""
        self._stopping.set()

    async def run(self, *, until_empty: bool = False) -> RelayStats:
        """Relay until :meth:`stop` (or, with ``until_empty``, until a pass finds nothing to send)."""
        self._stopping.clear()
        failures = 0
        delay: float | None = None
        while not self._stopping.is_set():
            try:
                sent = await self.run_once()
            except IntegrationError as exc:
                failures += 1
                delay = backoff_delay(self.backoff, failures, self.rng, delay)
                logger.warning("outbox relay %s: %s; next pass in %.2fs", self.owner, exc, delay)
                await self._sleep(delay)
                continue
            failures, delay = 0, None
            if sent == 0:
                if until_empty:
                    break
                await self._sleep(self.poll_interval)
        return self.stats

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
