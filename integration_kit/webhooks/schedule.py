"""The retry schedule of webhook deliveries: when attempt N+1 is due after attempt N failed. Pure, no I/O.

The default is Svix's (docs.svix.com/retries): immediately, then 5 seconds, 5 minutes, 30 minutes, 2 hours,
5 hours, 10 hours and 10 hours after each failure: 8 attempts over about 27 hours 35 minutes. A receiver's
``Retry-After`` (seconds or an HTTP date, already parsed by the caller) is honoured when it asks for a longer wait,
up to ``max_retry_after``. Each delay may be spread by ``jitter`` (a fraction, e.g. 0.1 for +-10%) with a seeded
``random.Random`` so that endpoints recovering together are not hit by a synchronised wave.

An endpoint that has failed continuously for ``disable_after`` seconds (Svix: 5 days) is disabled; so is one that
answers ``410 Gone``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SVIX_SCHEDULE", "RetrySchedule"]

#: Svix's delays before each attempt (seconds): the first is immediate.
SVIX_SCHEDULE: tuple[float, ...] = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """``delays[i]`` is the wait before attempt ``i + 1`` (``delays[0]``, normally 0, before the first).

    ``max_retry_after`` caps a receiver's Retry-After (seconds; default 1 day); ``disable_after`` is how long an
    endpoint may keep failing before it is disabled (seconds; default 5 days, as Svix); ``jitter`` is a fraction.
    """

    delays: tuple[float, ...] = SVIX_SCHEDULE
    max_retry_after: float = 86400.0
    disable_after: float = 5 * 86400.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        delays = tuple(float(d) for d in self.delays)
        if not delays or any(not math.isfinite(d) or d < 0 for d in delays):
            raise ValueError(f"RetrySchedule.delays must be finite, non-negative seconds, got {self.delays!r}")
        object.__setattr__(self, "delays", delays)
        if not 0 <= self.jitter < 1:
            raise ValueError(f"RetrySchedule.jitter must be in [0, 1), got {self.jitter!r}")
        for name in ("max_retry_after", "disable_after"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"RetrySchedule.{name} must be positive seconds, got {value!r}")

    @classmethod
    def of(cls, delays: Sequence[float], **options: float) -> RetrySchedule:
        """A schedule from any sequence of delays."""
        return cls(tuple(delays), **options)

    @property
    def max_attempts(self) -> int:
        """How many attempts a delivery gets."""
        return len(self.delays)

    @property
    def span(self) -> float:
        """Seconds from the first attempt to the last, without jitter or Retry-After."""
        return sum(self.delays[1:])

    def next_delay(
        self, attempts: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """The wait after ``attempts`` failed attempts, or ``None`` when the schedule is exhausted."""
        if attempts >= len(self.delays):
            return None
        delay = self.delays[attempts]
        if self.jitter and rng is not None:
            delay *= 1 + rng.uniform(-self.jitter, self.jitter)
        if retry_after is not None and retry_after > delay:
            delay = max(delay, min(retry_after, self.max_retry_after))  # the cap never shortens the schedule
        return delay
