"""A partner's finite capacity: how many requests it serves, and what happens to the rest.

A :class:`Capacity` says what a partner can serve: ``rate`` requests started per second and/or ``concurrency``
requests in service at once. A request that finds no free capacity waits in a FIFO queue, which adds its wait
to the response time; when ``queue`` requests are already waiting, a new one overflows: it is answered at once
with ``overflow`` (a status, 503 by default) or, with ``overflow = "hang"``, never answered (the client's timeout
ends it). The partner serves every request it queued, including those whose client has already given up: that
wasted work is what keeps a partner overloaded after a retry storm (Bronson et al., "Metastable Failures in
Distributed Systems", HotOS 2021).

In a scenario, ``capacity`` is a table on the scenario (for every phase) or on a phase (for that phase)::

    capacity = { rate = 150, queue = 2000 }               # whole scenario
    [[phases]]
    capacity = { rate = 60, queue = 2000 }                # a capacity dip in this phase

:class:`ServerQueue` is the pure model of that queue that the simulator plays: given a request's arrival time and
its service time it says when the response leaves, or that the request overflows. The live upstream
(:mod:`integration_kit.sim.upstream`) plays the same capacity with a real bounded queue of waiting requests.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

__all__ = ["Capacity", "ServerQueue"]


@dataclass(frozen=True, slots=True)
class Capacity:
    """What a partner can serve; ``None`` leaves that bound out.

    ``rate``: requests started per second (> 0); ``concurrency``: requests in service at once (>= 1); ``queue``:
    requests that may wait for capacity (>= 0; ``None``: unbounded); ``overflow``: what a request that finds the
    queue full gets, an HTTP status (default 503, "Service Unavailable", RFC 9110 section 15.6.4) or ``"hang"``.
    At least one of ``rate`` and ``concurrency`` must be set.
    """

    rate: float | None = None
    concurrency: int | None = None
    queue: int | None = None
    overflow: int | str = 503

    def __post_init__(self) -> None:
        if self.rate is not None and (
            isinstance(self.rate, bool)
            or not isinstance(self.rate, (int, float))
            or not (math.isfinite(self.rate) and self.rate > 0)
        ):
            raise ValueError(f"rate: must be a finite number > 0, got {self.rate!r}")
        if self.concurrency is not None and (
            isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1
        ):
            raise ValueError(f"concurrency: must be an integer >= 1, got {self.concurrency!r}")
        queue = self.queue
        if queue is not None and (isinstance(queue, bool) or not isinstance(queue, int) or queue < 0):
            raise ValueError(f"queue: must be an integer >= 0, got {self.queue!r}")
        if self.rate is None and self.concurrency is None:
            raise ValueError("rate: give rate and/or concurrency")
        if self.overflow != "hang" and (
            isinstance(self.overflow, bool) or not isinstance(self.overflow, int) or not 400 <= self.overflow <= 599
        ):
            raise ValueError(f"overflow: must be an HTTP error status (400-599) or 'hang', got {self.overflow!r}")

    @property
    def interval(self) -> float:
        """Seconds between two request starts (0 when only concurrency bounds the partner)."""
        return 1.0 / self.rate if self.rate is not None else 0.0


class ServerQueue:
    """The pure FIFO model of a partner with finite capacity, fed requests in arrival order.

    ``slots`` is the most concurrency any capacity it will see allows (the slots beyond a phase's concurrency
    stay idle in that phase). Not thread-safe; the simulator owns one per run.
    """

    __slots__ = ("_free", "_next_start", "_waiting", "served")

    def __init__(self, slots: int = 1) -> None:
        self._free = [0.0] * max(1, slots)  # when each service slot is next free
        self._next_start = 0.0  # the earliest start the rate allows
        self._waiting: list[float] = []  # start times of queued requests (a heap)
        self.served = 0

    def waiting(self, now: float) -> int:
        """Requests queued (arrived, not yet started) at ``now``."""
        waiting = self._waiting
        while waiting and waiting[0] <= now:
            heapq.heappop(waiting)
        return len(waiting)

    def admit(self, now: float, capacity: Capacity, service: float) -> float | None:
        """Seconds from ``now`` until the response to a request arriving now, needing ``service`` seconds of
        work; ``None`` when the queue is full (the request overflows and takes no capacity)."""
        queued = self.waiting(now)
        if capacity.queue is not None and queued >= capacity.queue:
            return None
        start = now
        slot = -1
        if capacity.concurrency is not None:
            free = self._free
            count = capacity.concurrency if capacity.concurrency < len(free) else len(free)
            slot = 0
            earliest = free[0]
            for i in range(1, count):
                if free[i] < earliest:
                    earliest = free[i]
                    slot = i
            start = max(start, earliest)
        if capacity.rate is not None:
            start = max(start, self._next_start)
            self._next_start = start + capacity.interval
        if start > now:
            heapq.heappush(self._waiting, start)
        if slot >= 0:
            self._free[slot] = start + service
        self.served += 1
        return start - now + service
