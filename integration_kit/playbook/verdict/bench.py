"""The test bench's own health during a live run, whatever the kind, and when it voids the run's verdict.

A live run measures the integration only while the bench (this machine: the load generator, the client's threads,
the local servers playing the partner, sharing one process and one interpreter lock) keeps up.
:class:`BenchMonitor` watches it while a scenario plays:

- **lateness**: how long after its scheduled arrival each call (a request, a delivery, a message) actually started,
  in scenario seconds; arrivals still waiting when the generator gives up count as never offered;
- **timer lag**: how late a thread asking to wake every :data:`PROBE_INTERVAL` real seconds wakes (the interpreter
  lock and the CPU scheduler, as every thread of the run feels them);
- **the partner's own lag**: how late the local server playing the partner (an asyncio loop) ran the waits it
  plays, in real seconds, when it reports them (the HTTP kind's flaky upstream does:
  ``/stats``' ``loop_lag``);
- **CPU**: the share of the machine's CPU time spent busy (``psutil``), and the cores this process used: Python
  code runs on one core at a time, so a process at :data:`PROCESS_SATURATED` of a core is saturated while the
  machine shows half its CPU idle.

:class:`BenchHealth` is the result, saved with the scenario's figures, and :meth:`BenchHealth.reason` the rule:

- when the p99 lateness exceeds :data:`LATENESS_LIMIT` scenario seconds (or :data:`LATENESS_FLOOR` real seconds,
  whichever is longer: at x900, as a webhook sender plays hours, one scenario second is a millisecond), or arrivals
  were never offered, the generator fell behind and the scenario is an *invalid run*, never a failure of the
  integration;
- when the bench was **strained** (the machine's or this process's CPU saturated, or the timers of either side
  late at p99 by more than the kind's ``lag_limit``, in scenario seconds: :data:`TIMER_LAG_LIMIT` for HTTP, whose
  objectives resolve deadline overruns to that, the lateness limit (:func:`lateness_limit`) for messages and
  webhooks, whose objectives are lags and latencies in seconds) and the scenario missed an objective, the run
  is invalid too: strain only makes a run look worse (timeouts that fire late, calls past their deadline, a
  partner slower than the scenario says), so a pass on a strained bench stands but a failure there cannot be told
  from the bench's own.

Kinds call it the same way: wrap the live scenario in a :class:`BenchMonitor`, report arrivals with
:meth:`BenchMonitor.scheduled` and :meth:`BenchMonitor.started`, save :meth:`BenchHealth.as_dict`, and when judging
put ``health.reason(missed=...)`` into :attr:`~integration_kit.playbook.verdict.verdict.Verdict.invalid`
(:func:`void`).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import psutil

from integration_kit.clock import Clock

__all__ = [
    "ABANDON_LATENESS",
    "CPU_SATURATED",
    "LATENESS_FLOOR",
    "LATENESS_LIMIT",
    "PROBE_INTERVAL",
    "PROCESS_SATURATED",
    "TIMER_LAG_LIMIT",
    "BenchHealth",
    "BenchMonitor",
    "lateness_limit",
    "p99",
    "void",
    "voided",
]

#: Scenario seconds: a run whose calls start later than this after their scheduled arrival (p99) is invalid.
LATENESS_LIMIT = 1.0
#: Real seconds: the lateness limit is never shorter than this, whatever the time scale (a thread on a shared machine
#: starts a call no more precisely: timer lags of 50-200 ms at p99 were measured on 2 shared cores).
LATENESS_FLOOR = 0.1
#: Scenario seconds: once a call starts this late, the generator stops offering load (the run is invalid anyway).
ABANDON_LATENESS = 30.0
#: The machine's CPU busy share (0..1) at which the bench has no headroom: a failure there is not the integration's.
CPU_SATURATED = 0.95
#: Cores this process used (CPU seconds per real second) at which it is saturated: Python code runs on one core at a
#: time (the interpreter lock), so a live run's process tops out near one core whatever the machine has.
PROCESS_SATURATED = 0.95
#: Scenario seconds: timers (the bench's threads, or the partner's loop) later than this at p99 strain the run.
#: It is the playbook's tolerance for a deadline overrun (``kinds.http.figures.DEADLINE_TOLERANCE``): timeouts that
#: fire later than that make overruns and slow calls of the bench's own.
TIMER_LAG_LIMIT = 0.05
#: Real seconds between the timer-lag probe's wake-ups.
PROBE_INTERVAL = 0.01


@dataclass(frozen=True, slots=True)
class BenchHealth:
    """How well the bench kept up during one live scenario (see the module docstring).

    ``scheduled`` arrivals were planned and ``offered`` started (``on_time`` of them within
    :attr:`lateness_limit`); lateness is in scenario seconds (NaN when nothing was measured: closed-loop load),
    ``timer_lag_p99`` in real seconds, ``cpu_busy`` a share of the machine (0..1), ``cores`` how many it has,
    ``time_scale`` how many scenario seconds one real second played. ``process_cpu`` is the cores this process
    used (CPU seconds per real second), ``partner_lag_p99`` and ``partner_lag_max`` how late the local partner's
    loop ran its waits (real seconds); NaN when not measured (a real service, or a run saved before they were).
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
    process_cpu: float = math.nan
    partner_lag_p99: float = math.nan
    partner_lag_max: float = math.nan
    #: Scenario seconds: timers later than this at p99 strain the run (the kind's resolution).
    lag_limit: float = TIMER_LAG_LIMIT

    @property
    def lateness_limit(self) -> float:
        """Scenario seconds: the p99 lateness past which the generator fell behind (:func:`lateness_limit`)."""
        return lateness_limit(self.time_scale)

    @property
    def fell_behind(self) -> bool:
        """Whether the load generator fell behind: p99 lateness over the limit, or arrivals never offered."""
        late = not math.isnan(self.lateness_p99) and self.lateness_p99 > self.lateness_limit
        return late or self.offered < self.scheduled

    @property
    def saturated(self) -> bool:
        """Whether the machine's CPU was at least :data:`CPU_SATURATED` busy during the run."""
        return _over(self.cpu_busy, CPU_SATURATED)

    @property
    def strain(self) -> list[str]:
        """What strained the bench, in words (empty: nothing did): a saturated machine or process, late timers."""
        reasons = []
        if self.saturated:
            reasons.append(f"the machine's CPU {self.cpu_busy:.0%} busy")
        if _over(self.process_cpu, PROCESS_SATURATED):
            reasons.append(f"this process at {self.process_cpu:.2f} cores (Python runs on one at a time)")
        limit = self.lag_limit / self.time_scale
        if _over(self.timer_lag_p99, limit):
            reasons.append(f"the bench's timers {self._scenario_ms(self.timer_lag_p99)} late at p99")
        if _over(self.partner_lag_p99, limit):
            reasons.append(f"the partner's loop {self._scenario_ms(self.partner_lag_p99)} late at p99")
        return reasons

    def reason(self, *, missed: bool = False) -> str | None:
        """Why the run is invalid, with the figures (``"invalid run: the load generator fell behind by 4.20 s
        ..."``), or ``None`` when it is valid. ``missed``: the scenario missed an objective, which a strained bench
        makes untrustworthy (see the module docstring)."""
        if self.fell_behind:
            lateness = self.lateness_max if self.offered < self.scheduled else self.lateness_p99
            share = self.on_time / self.scheduled if self.scheduled else math.nan
            return (
                f"invalid run: the load generator fell behind by {lateness:.2f} s (p99 {self.lateness_p99:.2f} s "
                f"from a call's scheduled arrival to its start; {self.offered:,} of {self.scheduled:,} calls "
                f"offered, {share:.0%} on time; {self.figures()})"
            )
        strain = self.strain
        if missed and strain:
            return (
                f"invalid run: the bench was strained ({'; '.join(strain)}) while the scenario missed objectives, "
                f"and a strained bench cannot vouch for a failure (p99 lateness {self.lateness_p99:.2f} s; "
                f"{self.figures()})"
            )
        return None

    def figures(self) -> str:
        """The health figures in one line: timer lags, CPU, the time scale."""
        lag, worst = self.partner_lag_p99 * 1000, self.partner_lag_max * 1000
        partner = "" if math.isnan(lag) else f"partner loop lag p99 {lag:.0f} ms, max {worst:.0f} ms; "
        process = "" if math.isnan(self.process_cpu) else f", this process {self.process_cpu:.2f} cores"
        return (
            f"timer lag p99 {self.timer_lag_p99 * 1000:.0f} ms; {partner}CPU {self.cpu_busy:.0%} busy on "
            f"{self.cores} core(s){process} at x{self.time_scale:g}"
        )

    def _scenario_ms(self, real: float) -> str:
        return f"{real * self.time_scale * 1000:.0f} ms (scenario; {real * 1000:.0f} ms real)"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes ``None``)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchHealth:
        """The inverse of :meth:`as_dict` (a figure it does not know is ignored, one it lacks is NaN)."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: (math.nan if v is None else v) for k, v in data.items() if k in known}
        return cls(**values)


class BenchMonitor:
    """Measures the bench while a live scenario plays: a context manager around the run.

    The generator calls :meth:`scheduled` per planned arrival and each call :meth:`started` with its arrival time
    (scenario seconds, on ``clock``), or :meth:`late` with how late it is; :meth:`health` sums up after the context
    exits. ``time_scale`` is how many of ``clock``'s seconds pass in a real one; ``lag_limit`` the kind's timing
    resolution in scenario seconds (:attr:`BenchHealth.lag_limit`; default :data:`TIMER_LAG_LIMIT`).
    """

    def __init__(self, clock: Clock, time_scale: float, *, lag_limit: float = TIMER_LAG_LIMIT) -> None:
        self._clock = clock
        self._time_scale = time_scale
        self._lag_limit = lag_limit
        self._lateness: list[float] = []
        self._lags: list[float] = []
        self._planned = 0
        self._stop = threading.Event()
        self._probe = threading.Thread(target=self._measure_lag, name="bench-probe", daemon=True)
        self._process = psutil.Process()
        self._cpu_before = self._cpu_after = psutil.cpu_times()
        self._own_before = self._own_after = self._process.cpu_times()
        self._wall = (time.perf_counter(), time.perf_counter())

    def __enter__(self) -> BenchMonitor:
        self._cpu_before = psutil.cpu_times()
        self._own_before = self._process.cpu_times()
        self._wall = (time.perf_counter(), self._wall[1])
        self._probe.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._probe.join()
        self._cpu_after = psutil.cpu_times()
        self._own_after = self._process.cpu_times()
        self._wall = (self._wall[0], time.perf_counter())

    def scheduled(self, count: int = 1) -> None:
        """``count`` more arrivals were planned."""
        self._planned += count

    def started(self, arrival: float) -> None:
        """A call planned for ``arrival`` (scenario seconds, on the clock) starts now."""
        self.late(self._clock.now() - arrival)

    def offered(self, arrival: float) -> None:
        """One more planned arrival, for ``arrival`` (scenario seconds, on the clock), starts now (a generator that
        offers every arrival it plans, one after the other)."""
        self._planned += 1
        self.started(arrival)

    def late(self, seconds: float) -> None:
        """A call starts ``seconds`` (scenario) after its scheduled arrival (a negative figure counts as 0)."""
        self._lateness.append(max(0.0, seconds))  # list.append is atomic

    @property
    def hopeless(self) -> bool:
        """Whether the latest call started more than :data:`ABANDON_LATENESS` late (stop offering load)."""
        return bool(self._lateness) and self._lateness[-1] > ABANDON_LATENESS

    def health(self, partner_lag: tuple[float, float] | None = None) -> BenchHealth:
        """What the bench did during the run; ``partner_lag``: the p99 and the worst of the local partner's loop lag
        (real seconds, as its server reported them; ``None``: not measured)."""
        late = sorted(self._lateness)
        lags = sorted(self._lags)
        partner_p99, partner_max = partner_lag if partner_lag is not None else (math.nan, math.nan)
        wall = self._wall[1] - self._wall[0]
        own = (self._own_after.user + self._own_after.system) - (self._own_before.user + self._own_before.system)
        limit = lateness_limit(self._time_scale)
        return BenchHealth(
            scheduled=self._planned,
            offered=len(late),
            on_time=sum(1 for x in late if x <= limit),
            lateness_p99=p99(late),
            lateness_max=late[-1] if late else math.nan,
            timer_lag_p99=p99(lags) if lags else 0.0,
            cpu_busy=_busy(self._cpu_before, self._cpu_after),
            cores=os.cpu_count() or 1,
            time_scale=self._time_scale,
            process_cpu=own / wall if wall > 0 else math.nan,
            partner_lag_p99=partner_p99,
            partner_lag_max=partner_max,
            lag_limit=self._lag_limit,
        )

    def _measure_lag(self) -> None:
        while True:
            asked = time.perf_counter()
            if self._stop.wait(PROBE_INTERVAL):
                return
            self._lags.append(max(0.0, time.perf_counter() - asked - PROBE_INTERVAL))


def lateness_limit(time_scale: float) -> float:
    """Scenario seconds: :data:`LATENESS_LIMIT`, or :data:`LATENESS_FLOOR` real seconds at ``time_scale`` if longer."""
    return max(LATENESS_LIMIT, LATENESS_FLOOR * time_scale)


def void(health: BenchHealth | None, missed: bool) -> str | None:
    """Why a scenario's run is invalid (:meth:`BenchHealth.reason`), or ``None``: valid, or not live (no health)."""
    return None if health is None else health.reason(missed=missed)


def p99(values: list[float]) -> float:
    """The 99th percentile of sorted ``values`` (nearest rank); NaN when empty."""
    if not values:
        return math.nan
    return values[min(len(values) - 1, math.ceil(0.99 * len(values)) - 1)]


def _over(value: float, limit: float) -> bool:
    return not math.isnan(value) and value >= limit


def _busy(before: Any, after: Any) -> float:
    """The share of CPU time spent busy between two ``psutil.cpu_times()`` samples (0..1; NaN when none passed)."""
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0))
    total = sum(after) - sum(before)
    return max(0.0, min(1.0, 1.0 - idle / total)) if total > 0 else math.nan


def voided(scenarios: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The invalid scenarios of a saved summary, with why: ``scenarios`` maps a name to its figures, whose
    ``bench`` (a :meth:`BenchHealth.as_dict`, absent when simulated) and ``objectives`` (each with ``met``) say
    whether the bench was strained and an objective missed (:func:`void`)."""
    invalid: dict[str, str] = {}
    for name, figures in scenarios.items():
        if figures.get("bench"):
            missed = not all(objective["met"] for objective in figures["objectives"])
            why = void(BenchHealth.from_dict(figures["bench"]), missed=missed)
            if why:
                invalid[name] = why
    return invalid
