"""Helpers for your own tests: a fault-injecting httpx transport, and the :class:`ManualClock`.

:class:`FaultTransport` (sync) and :class:`AsyncFaultTransport` (async) play a
:class:`~integration_kit.sim.scenarios.Scenario` in-process, on a clock you give them, with no socket::

    clock = ManualClock()
    transport = FaultTransport(load_scenario("outage-and-recovery"), clock=clock, seed=1)
    with httpx.Client(transport=transport, base_url="https://partner.test") as client:
        client.get("/orders")   # answered as the scenario decides at clock.now()

Scenario time is ``clock.now()`` minus the clock's time when the transport was built. A response takes its sampled
latency: the transport sleeps on the clock (instant on a :class:`ManualClock`, which simply advances). An answer
later than the request's read timeout becomes :class:`httpx.ReadTimeout` at the timeout; a hang waits the read
timeout (or ``max_hang`` when there is none) and times out. A refusal raises :class:`httpx.ConnectError` at
once, a reset :class:`httpx.ReadError` after the latency. ``requests`` keeps every request the transport saw.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

import httpx

from integration_kit.clock import Clock, ManualClock
from integration_kit.sim.scenarios import FaultKind, Scenario

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["AsyncFaultTransport", "FaultTransport", "ManualClock"]

#: How long a hang lasts when the request has no read timeout (seconds of the transport's clock).
MAX_HANG = 300.0


class _ScenarioPlayer:
    """What both transports share: the scenario, the clock, the seeded generator and the decision.

    ``clock`` is the clock the transport waits on; ``requests`` every request it saw, in order.
    """

    def __init__(
        self, scenario: Scenario, *, clock: Clock | None = None, seed: int = 0, max_hang: float = MAX_HANG
    ) -> None:
        self.scenario = scenario
        self.clock: Clock = clock if clock is not None else ManualClock()
        self.max_hang = max_hang
        self.requests: list[httpx.Request] = []
        self._rng = random.Random(seed)
        self._start = self.clock.now()

    def _decide(self, request: httpx.Request) -> tuple[float, Callable[[], httpx.Response]]:
        """Seconds to wait, and what to do after: return a response, or raise the transport's exception."""
        self.requests.append(request)
        decision = self.scenario.decide(self.clock.now() - self._start, self._rng)
        timeout = request.extensions.get("timeout", {}).get("read")
        fault = decision.fault
        if fault is FaultKind.REFUSE:
            return 0.0, _raiser(httpx.ConnectError("[Errno 111] Connection refused (simulated)", request=request))
        if fault is FaultKind.HANG:
            return timeout or self.max_hang, _raiser(httpx.ReadTimeout("no answer (simulated hang)", request=request))
        if timeout is not None and decision.latency > timeout:
            return timeout, _raiser(httpx.ReadTimeout("timed out (simulated)", request=request))
        if fault is FaultKind.RESET:
            error = httpx.ReadError("[Errno 104] Connection reset by peer (simulated)", request=request)
            return decision.latency, _raiser(error)
        headers = {"content-type": "application/json"}
        if decision.retry_after is not None:
            headers["retry-after"] = str(math.ceil(decision.retry_after))
        response = httpx.Response(decision.status, headers=headers, json={"status": decision.status}, request=request)
        return decision.latency, lambda: response


def _raiser(exc: Exception) -> Callable[[], httpx.Response]:
    def answer() -> httpx.Response:
        raise exc

    return answer


class FaultTransport(_ScenarioPlayer, httpx.BaseTransport):
    """An httpx transport that answers as ``scenario`` decides, waiting on ``clock`` (default: a ManualClock).

    ``seed`` seeds the draws; ``max_hang`` bounds a hang when the request has no read timeout.
    """

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Wait the sampled latency on the clock, then answer or raise."""
        delay, answer = self._decide(request)
        self.clock.sleep(delay)
        return answer()


class AsyncFaultTransport(_ScenarioPlayer, httpx.AsyncBaseTransport):
    """The async twin of :class:`FaultTransport`; it waits with the clock's ``asleep`` when it has one."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Wait the sampled latency on the clock without blocking the loop, then answer or raise."""
        delay, answer = self._decide(request)
        asleep = getattr(self.clock, "asleep", None)
        if asleep is not None:
            await asleep(delay)
        else:
            import anyio

            await anyio.to_thread.run_sync(self.clock.sleep, delay)
        return answer()
