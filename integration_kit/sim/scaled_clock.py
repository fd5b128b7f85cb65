"""A clock on scenario time, for a client that talks to a live upstream played faster than real time."""

from __future__ import annotations

import math
import time

__all__ = ["ScaledClock"]


class ScaledClock:
    """A clock on scenario time: ``now()`` is monotonic seconds times ``time_scale``; ``sleep(s)`` waits
    ``s / time_scale`` real seconds. Give it to a client that talks to an upstream played at ``time_scale``, so its
    policies (backoff, Retry-After, breaker waits) run in scenario seconds, as in the simulator."""

    __slots__ = ("time_scale",)

    def __init__(self, time_scale: float = 1.0) -> None:
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise ValueError(f"ScaledClock: time_scale must be a finite number > 0, got {time_scale!r}")
        self.time_scale = float(time_scale)

    def now(self) -> float:
        """Scenario seconds (monotonic)."""
        return time.monotonic() * self.time_scale

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of scenario time."""
        if seconds > 0:
            time.sleep(seconds / self.time_scale)

    async def asleep(self, seconds: float) -> None:
        """Wait ``seconds`` of scenario time without blocking the event loop."""
        import anyio

        await anyio.sleep(max(0.0, seconds) / self.time_scale)

    def __repr__(self) -> str:
        return f"ScaledClock(time_scale={self.time_scale!r})"
