"""The test bench's own health during a live run, and a target that answers nothing.

A live run measures the integration only while the bench (this machine: the load generator, the client's threads,
the local flaky upstream sharing the process) keeps up. :class:`BenchMonitor` watches it while a scenario plays:

- **lateness**: how long after its scheduled (open-loop, Poisson) arrival each call actually started, in scenario
  seconds; calls still waiting when the generator gives up count as never offered;
- **timer lag**: how late a thread asking to wake every :data:`PROBE_INTERVAL` real seconds wakes (the GIL and
  the CPU scheduler, as every thread of the run feels them);
- **CPU**: the share of the machine's CPU time spent busy during the run (``psutil``).

:class:`BenchHealth` is the result, saved with the scenario's figures. When the p99 lateness exceeds
:data:`LATENESS_LIMIT` the bench fell behind and the verdict calls the scenario an *invalid run*, never a failure of
the integration. When the machine's CPU was saturated (:data:`CPU_SATURATED`) and the scenario missed an objective,
the run is invalid too: saturation only makes a run look worse (late timers, calls past their deadline), so a pass
on a saturated bench stands but a failure there cannot be told from the bench's own. :func:`fitted_time_scale` picks
a live time scale this machine can play, and :class:`FirstContact` stops a run whose first attempts all fail before
reaching the partner.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from integration_kit.clock import Clock
from integration_kit.errors import ConfigurationError
from integration_kit.events import AttemptFinished, Event

__all__ = [
    "ABANDON_LATENESS",
    "CPU_SATURATED",
    "FIRST_CONTACT_ATTEMPTS",
    "LATENESS_LIMIT",
    "PROBE_INTERVAL",
    "REAL_CALLS_PER_CORE",
    "BenchHealth",
    "BenchMonitor",
    "FirstContact",
    "UnreachableTarget",
    "fitted_time_scale",
]

#: Scenario seconds: a run whose calls start later than this after their scheduled arrival (p99) is invalid.
LATENESS_LIMIT = 1.0
#: Scenario seconds: once a call starts this late, the generator stops offering load (the run is invalid anyway).
ABANDON_LATENESS = 30.0
#: The machine's CPU busy share (0..1) at which the bench has no headroom: a failure there is not the integration's.
CPU_SATURATED = 0.95
#: Real seconds between the timer-lag probe's wake-ups.
PROBE_INTERVAL = 0.01
#: Real calls per second one core serves in a live run (client, pool threads and the local upstream in one
#: process): measured on a 2-core machine, where 200 calls/s held (p99 0.32 s) and 1,000 calls/s did not.
REAL_CALLS_PER_CORE = 100.0
#: How many attempts must all fail before reaching the partner for a live run to stop (:class:`FirstContact`).
FIRST_CONTACT_ATTEMPTS = 10
#: Outcomes of an attempt that never reached the partner (``pool_timeout`` is the bench's own pool: not counted).
_NOT_REACHED = frozenset({"connect_error", "connect_timeout"})


class UnreachableTarget(ConfigurationError):
    """A live run's first attempts all failed before reaching the partner (DNS, refused, TLS): the URL is wrong or
    the service is down, and playing the rest of the scenario would only measure that."""


@dataclass(frozen=True, slots=True)
class BenchHealth:
    """How well the bench kept up during one live scenario (see the module docstring).

    ``scheduled`` arrivals were planned and ``offered`` started (``on_time`` of them within
    :data:`LATENESS_LIMIT`); lateness is in scenario seconds (NaN when nothing was measured: closed-loop load),
    ``timer_lag_p99`` in real seconds, ``cpu_busy`` a share of the machine (0..1), ``cores`` how many it has.
    """

    scheduled: int
    offered: int
    on_time: int
    lateness_p99: float
    lateness_max: float
    timer_lag_p99: float
    cpu_busy: float
    cores: int
    time_scale: float

    @property
    def fell_behind(self) -> bool:
        """Whether the load generator fell behind: p99 lateness over the limit, or arrivals never offered."""
        late = not math.isnan(self.lateness_p99) and self.lateness_p99 > LATENESS_LIMIT
        return late or self.offered < self.scheduled

    @property
    def saturated(self) -> bool:
        """Whether the machine's CPU was at least :data:`CPU_SATURATED` busy during the run."""
        return not math.isnan(self.cpu_busy) and self.cpu_busy >= CPU_SATURATED

    def reason(self, *, missed: bool = False) -> str | None:
        """Why the run is invalid, with the figures (``"invalid run: the load generator fell behind by 4.20 s
        ..."``), or ``None`` when it is valid. ``missed``: the scenario missed an objective, which a saturated
        CPU makes untrustworthy (see the module docstring)."""
        figures = (
            f"timer lag p99 {self.timer_lag_p99 * 1000:.0f} ms; CPU {self.cpu_busy:.0%} busy on {self.cores} "
            f"core(s) at x{self.time_scale:g}"
        )
        if self.fell_behind:
            lateness = self.lateness_max if self.offered < self.scheduled else self.lateness_p99
            share = self.on_time / self.scheduled if self.scheduled else math.nan
            return (
                f"invalid run: the load generator fell behind by {lateness:.2f} s (p99 {self.lateness_p99:.2f} s "
                f"from a call's scheduled arrival to its start; {self.offered:,} of {self.scheduled:,} calls "
                f"offered, {share:.0%} on time; {figures})"
            )
        if missed and self.saturated:
            return (
                f"invalid run: the bench saturated the CPU ({self.cpu_busy:.0%} busy) while the scenario missed "
                f"objectives, and a saturated bench cannot vouch for a failure (p99 lateness "
                f"{self.lateness_p99:.2f} s; {figures})"
            )
        return None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes ``None``)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchHealth:
        """The inverse of :meth:`as_dict`."""
        values: dict[str, Any] = {k: (math.nan if v is None else v) for k, v in data.items()}
        return cls(**values)


class BenchMonitor:
    """Measures the bench while a live scenario plays: a context manager around the run.

    The generator calls :meth:`scheduled` per planned arrival and each call :meth:`started` with its arrival time
    (scenario seconds, on ``clock``); :meth:`health` sums up after the context exits.
    """

    def __init__(self, clock: Clock, time_scale: float) -> None:
        self._clock = clock
        self._time_scale = time_scale
        self._lateness: list[float] = []
        self._lags: list[float] = []
        self._planned = 0
        self._stop = threading.Event()
        self._probe = threading.Thread(target=self._measure_lag, name="bench-probe", daemon=True)
        self._cpu_before = psutil.cpu_times()
        self._cpu_after = self._cpu_before

    def __enter__(self) -> BenchMonitor:
        self._cpu_before = psutil.cpu_times()
        self._probe.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._probe.join()
        self._cpu_after = psutil.cpu_times()

    def scheduled(self, count: int = 1) -> None:
        """``count`` more arrivals were planned."""
        self._planned += count

    def started(self, arrival: float) -> None:
        """A call planned for ``arrival`` (scenario seconds) starts now."""
        self._lateness.append(max(0.0, self._clock.now() - arrival))  # list.append is atomic

    @property
    def hopeless(self) -> bool:
        """Whether the latest call started more than :data:`ABANDON_LATENESS` late (stop offering load)."""
        return bool(self._lateness) and self._lateness[-1] > ABANDON_LATENESS

    def health(self) -> BenchHealth:
        """What the bench did during the run."""
        late = sorted(self._lateness)
        lags = sorted(self._lags)
        return BenchHealth(
            scheduled=self._planned,
            offered=len(late),
            on_time=sum(1 for x in late if x <= LATENESS_LIMIT),
            lateness_p99=_p99(late),
            lateness_max=late[-1] if late else math.nan,
            timer_lag_p99=_p99(lags) if lags else 0.0,
            cpu_busy=_busy(self._cpu_before, self._cpu_after),
            cores=os.cpu_count() or 1,
            time_scale=self._time_scale,
        )

    def _measure_lag(self) -> None:
        while True:
            asked = time.perf_counter()
            if self._stop.wait(PROBE_INTERVAL):
                return
            self._lags.append(max(0.0, time.perf_counter() - asked - PROBE_INTERVAL))


class FirstContact:
    """An event hook that notices when the first :data:`FIRST_CONTACT_ATTEMPTS` attempts of a live run all failed
    before reaching the partner (``connect_error``, ``connect_timeout``); one attempt that reaches it disarms it.

    The run's load loops stop when :attr:`unreachable` is set, and :meth:`error` says which URL answered nothing.
    """

    def __init__(self, url: str, attempts: int = FIRST_CONTACT_ATTEMPTS) -> None:
        self.url = url
        self.unreachable = threading.Event()
        self._needed = attempts
        self._failed = 0
        self._reached = False
        self._lock = threading.Lock()
        self._outcome = ""

    def __call__(self, event: Event) -> None:
        if not isinstance(event, AttemptFinished) or self._reached:
            return
        with self._lock:
            if event.outcome not in _NOT_REACHED:
                self._reached = True
                return
            self._failed += 1
            self._outcome = event.outcome
            if self._failed >= self._needed:
                self.unreachable.set()

    def error(self) -> UnreachableTarget:
        """The one-line error naming the URL exercised."""
        return UnreachableTarget(
            f"no call reached {self.url}: the first {self._needed} attempts all failed before reaching the partner "
            f"({self._outcome.replace('_', ' ')}: DNS, connection refused or TLS); the live run stopped"
        )


def fitted_time_scale(rate: float, default: float, cores: int | None = None) -> tuple[float, str]:
    """The live time scale for ``rate`` scenario calls per second on this machine, and a note when it is reduced.

    At most ``default`` (the kind's), at least 1 (real time), and no more than :data:`REAL_CALLS_PER_CORE` real
    calls per second per core: ``min(default, max(1, cores * REAL_CALLS_PER_CORE / rate))``. ``cores`` defaults to
    ``os.cpu_count()``.
    """
    cores = cores or os.cpu_count() or 1
    budget = cores * REAL_CALLS_PER_CORE
    fitted = min(default, max(1.0, budget / rate)) if rate > 0 else default
    if fitted >= default:
        return default, ""
    fitted = math.floor(fitted * 10) / 10 if fitted > 1 else 1.0
    note = (
        f"time scale x{fitted:g}, reduced from x{default:g} to fit {cores} core(s): {rate:g} calls/s at x{default:g} "
        f"would ask {rate * default:,.0f} real calls/s of a machine that serves about {budget:,.0f}"
    )
    return fitted, note


def _p99(values: list[float]) -> float:
    """The 99th percentile of sorted ``values`` (nearest rank); NaN when empty."""
    if not values:
        return math.nan
    return values[min(len(values) - 1, math.ceil(0.99 * len(values)) - 1)]


def _busy(before: Any, after: Any) -> float:
    """The share of CPU time spent busy between two ``psutil.cpu_times()`` samples (0..1; NaN when none passed)."""
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0))
    total = sum(after) - sum(before)
    return max(0.0, min(1.0, 1.0 - idle / total)) if total > 0 else math.nan
