"""What one simulated run achieved, in the terms of an integration's objectives, straight from its events.

The verdict's :mod:`integration_kit.playbook.kinds.http.figures` measures a recorded run through pandas frames,
per phase; this module computes the same kind of figures from a
:class:`~integration_kit.sim.simulate.SimulationResult`'s events without building a frame, which the tuner
needs (hundreds of runs a minute). Both classify a phase with
:func:`integration_kit.playbook.kinds.http.figures.classify_phase`, so "bad phase" and "outage" mean the same
thing in the verdict and in the search.

:func:`scenario_figures` reads a :class:`~integration_kit.sim.simulate.SimulationResult` (its recorded events,
the partner's per-second view and the scenario's phases) and returns :class:`ScenarioFigures`:

- ``success_rate``: calls that succeeded over calls that ended (rejected calls count as failed);
- ``success_outside_outages``: the same over the calls that started outside outage phases and outside the
  ``grace`` seconds after each (an outage's own calls cannot succeed whatever the policy, and the recovery after
  it is judged by ``recovery_time``);
- ``p99_latency``: the 99th percentile of the duration of the calls that succeeded (seconds);
- ``amplification``: the most attempts per call over any *bad* phase (attempts started in the phase over calls
  started in it), or over the whole run when no phase is bad;
- ``outage_load``: during *outage* phases, attempts the partner received over calls offered (0 with no outage);
- ``recovery_time``: seconds from the end of the last bad phase until the calls started in a 5 s window first
  reach 95 % success (``inf`` when they never do; 0 with no bad phase, or when the run ends in it);
- ``overloaded_at_end``: the partner still received more than its capacity allows, or calls still succeeded
  less than 50 %, over the last 30 s of offered load (the symptom of a metastable failure).

A phase is *bad* when :func:`~integration_kit.playbook.kinds.http.figures.classify_phase` calls it degraded or an
outage, when it hangs, or when it gives the partner less capacity than the scenario's; it is an *outage* when
``classify_phase`` says so. The recovery window and threshold are the verdict's too.

:func:`verdict_figures` goes one step further for the tuner: it computes the verdict's own
:class:`~integration_kit.playbook.kinds.http.figures.ScenarioFigures` (what
:func:`~integration_kit.playbook.kinds.http.figures.measure` gives for the same run, field for field) from the
result's events with numpy and no frame, so :func:`~integration_kit.playbook.kinds.http.judge.judge` judges a
candidate exactly as the gate judges a run.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, fields

import numpy as np

from integration_kit.events import AttemptFinished, AttemptStarted, CallFinished, percentile
from integration_kit.playbook.kinds.http import figures as verdict_measures
from integration_kit.playbook.kinds.http.figures import RECOVERED_SUCCESS, RECOVERY_WINDOW, classify_phase
from integration_kit.sim.scenarios import Phase, Scenario
from integration_kit.sim.simulate import SimulationResult

__all__ = [
    "RECOVERY_SUCCESS",
    "RECOVERY_WINDOW",
    "ScenarioFigures",
    "bad_phases",
    "scenario_figures",
    "verdict_figures",
]

#: The success rate in the recovery window that counts as recovered (the verdict's figure).
RECOVERY_SUCCESS = RECOVERED_SUCCESS
#: The tail of the run judged for overload (seconds).
END_WINDOW = 30.0


@dataclass(frozen=True, slots=True)
class ScenarioFigures:
    """One run's figures (see the module docstring for each definition)."""

    calls: int
    success_rate: float
    success_outside_outages: float
    p99_latency: float
    amplification: float
    outage_load: float
    recovery_time: float
    overloaded_at_end: bool
    partner_load: float  # attempts the partner received per call offered, over the run


def _is_bad(phase: Phase, scenario: Scenario) -> bool:
    """A phase the verdict calls degraded or an outage, or one that gives the partner less capacity."""
    if classify_phase(phase) != "healthy" or phase.errors.hang > 0:
        return True
    own, default = phase.capacity, scenario.capacity
    if own is None or default is None:
        return False
    return (own.rate or math.inf) < (default.rate or math.inf) or (own.concurrency or math.inf) < (
        default.concurrency or math.inf
    )


def bad_phases(scenario: Scenario) -> list[tuple[float, float, bool]]:
    """``(start, end, is_outage)`` of each bad phase of ``scenario``, in order (seconds)."""
    found = []
    start = 0.0
    for phase in scenario.phases:
        end = start + phase.duration
        if _is_bad(phase, scenario):
            found.append((start, end, classify_phase(phase) == "outage"))
        start = end
    return found


def scenario_figures(result: SimulationResult, *, grace: float = 0.0) -> ScenarioFigures:
    """The figures of ``result`` (see the module docstring; ``grace`` in seconds)."""
    scenario = result.scenario
    calls = [e for e in result.recorder.of(CallFinished) if isinstance(e, CallFinished)]
    starts = sorted((e.time - e.duration, e.ok) for e in calls)
    start_times = [s for s, _ in starts]
    attempts = sorted(e.time for e in result.recorder.of(AttemptStarted))
    ended = len(calls)
    succeeded = sum(1 for e in calls if e.ok)
    durations = sorted(e.duration for e in calls if e.ok)
    bad = bad_phases(scenario)

    def between(times: list[float], low: float, high: float) -> int:
        return bisect.bisect_left(times, high) - bisect.bisect_left(times, low)

    spans = [(s, e) for s, e, _ in bad] or [(0.0, result.duration)]
    amplification = 0.0
    for low, high in spans:
        offered = between(start_times, low, high)
        if offered:
            amplification = max(amplification, between(attempts, low, high) / offered)
    per_second = result.server.per_second
    outage_load = 0.0
    for low, high, outage in bad:
        offered = between(start_times, low, high)
        if outage and offered:
            received = sum(per_second[int(low) : int(high)])
            outage_load = max(outage_load, received / offered)
    recovery = 0.0
    if bad and bad[-1][1] < result.duration:
        end = bad[-1][1]
        recovery = math.inf
        t = end
        while t + RECOVERY_WINDOW <= max(result.duration, end + RECOVERY_WINDOW):
            i, j = bisect.bisect_left(start_times, t), bisect.bisect_left(start_times, t + RECOVERY_WINDOW)
            window = starts[i:j]
            if window and sum(ok for _, ok in window) / len(window) >= RECOVERY_SUCCESS:
                recovery = t - end
                break
            t += 1.0
    tail_low = max(0.0, result.duration - END_WINDOW)
    i = bisect.bisect_left(start_times, tail_low)
    tail = starts[i:]
    tail_success = sum(ok for _, ok in tail) / len(tail) if tail else 1.0
    capacity = scenario.capacity_at(result.duration - 1)
    tail_seconds = per_second[int(tail_low) : int(result.duration)]
    tail_load = sum(tail_seconds) / len(tail_seconds) if tail_seconds else 0.0
    over = capacity is not None and capacity.rate is not None and tail_load > capacity.rate
    outages = [(low, high + grace) for low, high, outage in bad if outage]
    outside = [ok for start, ok in starts if not any(low <= start < high for low, high in outages)]
    return ScenarioFigures(
        calls=ended,
        success_rate=succeeded / ended if ended else 1.0,
        success_outside_outages=sum(outside) / len(outside) if outside else 1.0,
        p99_latency=percentile(durations, 0.99) if durations else 0.0,
        amplification=amplification,
        outage_load=outage_load,
        recovery_time=recovery,
        overloaded_at_end=over or tail_success < 0.5,
        partner_load=result.server.received / ended if ended else 0.0,
    )


def verdict_figures(result: SimulationResult, *, deadline: float | None) -> verdict_measures.ScenarioFigures:
    """The verdict's figures of ``result`` (``deadline`` in seconds, the spec's; ``None``: no overruns), equal to
    ``figures.measure(result.to_frame(), result.server.to_frame(), result.scenario, deadline=deadline)``
    without building either frame (see the module docstring)."""
    run = _RunArrays.of(result)
    starts, oks = run.starts, run.oks
    run_length = max(1.0, math.ceil(float(starts.max()))) if starts.size else 0.0
    scenario = result.scenario
    phases = []
    judged = np.zeros(starts.size, dtype=bool)
    for window in verdict_measures.phase_windows(scenario, run_length):
        last = window.index == len(scenario.phases) - 1 or window.end >= run_length
        high = math.inf if last else window.end
        in_phase = (starts >= window.start) & (starts < high)
        if window.kind != "outage":
            judged |= in_phase
        phases.append(
            verdict_measures.PhaseFigures(
                window=window,
                calls=int(in_phase.sum()),
                succeeded=int(oks[in_phase].sum()),
                attempts=_count(run.attempt_times, window.start, high),
                received=run.received(window.start, high),
                budget_refusals=_count(run.refusal_times, window.start, high),
                recovery_time=run.recovery(window.end, run_length) if window.bad and window.followed else None,
            )
        )
    completed = run.durations[~run.rejected]
    tolerance = verdict_measures.DEADLINE_TOLERANCE
    return verdict_measures.ScenarioFigures(
        scenario=scenario.name,
        calls=int(starts.size),
        judged_calls=int(judged.sum()),
        judged_succeeded=int(oks[judged].sum()),
        attempts=int(run.attempt_times.size),
        p99_latency=float(np.percentile(completed, 99)) if completed.size else math.nan,
        deadline_overruns=0 if deadline is None else int((run.durations > deadline + tolerance).sum()),
        budget_refusals=int(run.refusal_times.size),
        phases=tuple(phases),
        rate_limited_attempts=run.rate_limited,
    )


def _count(times: np.ndarray, low: float, high: float) -> int:
    """How many of the sorted ``times`` fall in ``[low, high)``."""
    return int(np.searchsorted(times, high, "left") - np.searchsorted(times, low, "left"))


#: Where a :class:`~integration_kit.events.CallFinished` row holds ``duration`` and ``ok`` (after the class).
_DURATION = 1 + [f.name for f in fields(CallFinished)].index("duration")
_OK = 1 + [f.name for f in fields(CallFinished)].index("ok")
#: Where an :class:`~integration_kit.events.AttemptFinished` row holds ``status``.
_STATUS = 1 + [f.name for f in fields(AttemptFinished)].index("status")
#: The statuses the verdict counts as refused for rate limit (``figures._rate_limited``: 429, and GitHub's 403).
_RATE_LIMITED = frozenset({429, 403})


@dataclass(frozen=True, slots=True)
class _RunArrays:
    """One run's calls (start, duration, ok, rejected: one entry per finished call), its sorted attempt and
    budget-refusal times, and the partner's cumulative count per second."""

    starts: np.ndarray
    durations: np.ndarray
    oks: np.ndarray
    rejected: np.ndarray
    attempt_times: np.ndarray
    refusal_times: np.ndarray
    sorted_starts: np.ndarray
    ok_sum: np.ndarray  # successes among the calls in start order, cumulative (0 first)
    received_sum: np.ndarray  # attempts the partner received up to each second, cumulative (0 first)
    rate_limited: int  # attempts answered 429 or 403

    @classmethod
    def of(cls, result: SimulationResult) -> _RunArrays:
        starts: list[float] = []
        durations: list[float] = []
        oks: list[bool] = []
        ids: list[int] = []
        attempts: list[float] = []
        refusals: list[float] = []
        rejected_ids: set[int] = set()
        rate_limited = 0
        for row in result.recorder.rows():  # rows, not events: no object is built (time, call_id: 1 and 3)
            kind = row[0].kind
            if kind == "attempt_started":
                attempts.append(row[1])
            elif kind == "call_finished":
                duration = row[_DURATION]
                starts.append(row[1] - duration)
                durations.append(duration)
                oks.append(row[_OK])
                ids.append(row[3])
            elif kind == "call_rejected":
                rejected_ids.add(row[3])
            elif kind == "budget_exhausted":
                refusals.append(row[1])
            elif kind == "attempt_finished" and row[_STATUS] in _RATE_LIMITED:
                rate_limited += 1
        start_array = np.asarray(starts, dtype=float)
        ok_array = np.asarray(oks, dtype=bool)
        order = np.argsort(start_array, kind="stable")
        return cls(
            starts=start_array,
            durations=np.asarray(durations, dtype=float),
            oks=ok_array,
            rejected=np.fromiter((i in rejected_ids for i in ids), dtype=bool, count=len(ids)),
            attempt_times=np.sort(np.asarray(attempts, dtype=float)),
            refusal_times=np.sort(np.asarray(refusals, dtype=float)),
            sorted_starts=start_array[order],
            ok_sum=np.concatenate(([0], np.cumsum(ok_array[order], dtype=np.int64))),
            received_sum=np.concatenate(([0], np.cumsum(np.asarray(result.server.per_second, dtype=np.int64)))),
            rate_limited=rate_limited,
        )

    def received(self, low: float, high: float) -> int:
        """Attempts the partner received in the whole seconds ``floor(low) <= s < high`` (the verdict's reading)."""
        seconds = self.received_sum.size - 1
        first = min(max(0, math.floor(low)), seconds)
        last = seconds if math.isinf(high) else min(max(first, math.ceil(high)), seconds)
        return int(self.received_sum[last] - self.received_sum[first])

    def recovery(self, after: float, run_length: float) -> float:
        """:func:`~integration_kit.playbook.kinds.http.figures.recovery_time` over the sorted call starts."""
        i = int(np.searchsorted(self.sorted_starts, after, "left"))
        later = self.sorted_starts[i:]
        if later.size == 0:
            return math.inf
        ends = np.searchsorted(later, later + RECOVERY_WINDOW, side="left")
        counts = ends - np.arange(later.size)
        rates = (self.ok_sum[i + ends] - self.ok_sum[i : i + later.size]) / np.maximum(counts, 1)
        fits = later + RECOVERY_WINDOW <= run_length + 1e-9
        good = np.flatnonzero((rates >= RECOVERED_SUCCESS) & fits)
        return float(later[good[0]] - after) if good.size else math.inf
