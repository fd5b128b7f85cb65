"""The verdict's figures: what one scenario run achieved, measured from its events and the partner's view.

Pure functions over the recorded events frame (:data:`~integration_kit.events.FRAME_COLUMNS`, time in scenario
seconds from the run's start) and the partner's per-second count of attempts received (columns ``second`` and
``received``). The phase boundaries come from the :class:`~integration_kit.sim.scenarios.Scenario`, so "during
the outage" means the scenario's outage phase, and each phase is classed by what the partner does in it
(:func:`classify_phase`):

- ``healthy``: fewer than :data:`DEGRADED_ERROR_RATE` of requests fail and the median latency is under
  :data:`SLOW_MEDIAN` seconds;
- ``outage``: at least :data:`OUTAGE_ERROR_RATE` of requests fail with something other than a 429 (the partner
  is down, not throttling);
- ``degraded``: anything in between (a brownout, throttling, stalls, a slow partner).

*Bad* phases are the degraded and the outage ones. A call belongs to the phase in which it started.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from integration_kit.sim.scenarios import Phase, Scenario

__all__ = [
    "DEGRADED_ERROR_RATE",
    "OUTAGE_ERROR_RATE",
    "RECOVERED_SUCCESS",
    "RECOVERY_WINDOW",
    "SLOW_MEDIAN",
    "PhaseFigures",
    "PhaseKind",
    "PhaseWindow",
    "ScenarioFigures",
    "calls_table",
    "classify_phase",
    "measure",
    "phase_windows",
    "recovery_time",
]

PhaseKind = Literal["healthy", "degraded", "outage"]
_Counter = Callable[[float, float], int]

#: A phase in which at least this share of requests fail is degraded (or an outage).
DEGRADED_ERROR_RATE = 0.02
#: A phase whose latency median is at least this many seconds is degraded.
SLOW_MEDIAN = 1.0
#: A phase in which at least this share of requests fail with something other than a 429 is an outage.
OUTAGE_ERROR_RATE = 0.8
#: Seconds of calls in the sliding window of :func:`recovery_time`.
RECOVERY_WINDOW = 5.0
#: The success rate at which the partner counts as recovered, from the caller's side.
RECOVERED_SUCCESS = 0.95
#: Seconds a call may exceed its deadline by before it counts as an overrun (clock granularity, live runs).
DEADLINE_TOLERANCE = 0.05


@dataclass(frozen=True, slots=True)
class PhaseWindow:
    """One phase of a run: its position, name, kind, and where it starts and ends (scenario seconds)."""

    index: int
    name: str
    kind: PhaseKind
    start: float
    end: float
    #: Whether a later phase follows it within the run (only then can recovery be measured).
    followed: bool

    @property
    def bad(self) -> bool:
        """Whether the partner misbehaves in this phase (degraded or an outage)."""
        return self.kind != "healthy"

    @property
    def label(self) -> str:
        """The phase's name as the report shows it (``phase 2`` when it has none)."""
        return self.name or f"phase {self.index + 1}"


@dataclass(frozen=True, slots=True)
class PhaseFigures:
    """What happened during one phase. Rates are NaN when there was nothing to divide by."""

    window: PhaseWindow
    calls: int
    succeeded: int
    attempts: int
    received: int
    budget_refusals: int
    recovery_time: float | None

    @property
    def success_rate(self) -> float:
        """Calls started in the phase that succeeded, per call."""
        return self.succeeded / self.calls if self.calls else math.nan

    @property
    def amplification(self) -> float:
        """Attempts sent in the phase per call started in it."""
        return self.attempts / self.calls if self.calls else math.nan

    @property
    def load(self) -> float:
        """Attempts the partner received in the phase per call offered in it."""
        return self.received / self.calls if self.calls else math.nan


@dataclass(frozen=True, slots=True)
class ScenarioFigures:
    """The figures of one scenario run, for the whole run and per phase."""

    scenario: str
    calls: int
    #: Calls outside outage phases, and how many of them succeeded.
    judged_calls: int
    judged_succeeded: int
    attempts: int
    p99_latency: float
    deadline_overruns: int
    budget_refusals: int
    phases: tuple[PhaseFigures, ...]
    #: Attempts the partner refused for their rate (answered 429, or 403 as GitHub does).
    rate_limited_attempts: int = 0

    @property
    def rate_limited(self) -> float:
        """Attempts refused for rate limit, per attempt sent (0 when none was sent)."""
        return self.rate_limited_attempts / self.attempts if self.attempts else 0.0

    @property
    def success_rate(self) -> float:
        """Calls outside outage phases that succeeded, per such call (NaN when there were none)."""
        return self.judged_succeeded / self.judged_calls if self.judged_calls else math.nan

    @property
    def amplification(self) -> float:
        """Attempts sent per call over the whole run."""
        return self.attempts / self.calls if self.calls else math.nan


def classify_phase(phase: Phase) -> PhaseKind:
    """``"healthy"``, ``"degraded"`` or ``"outage"``, from the phase's error mix and latency (see the module)."""
    errors = phase.errors
    if errors.total - errors.http_429 >= OUTAGE_ERROR_RATE:
        return "outage"
    latency = phase.latency
    median = {"constant": latency.value, "uniform": (latency.low + latency.high) / 2, "lognormal": latency.median}
    typical = median.get(latency.kind, float(np.median(latency.samples)) if latency.samples else 0.0)
    if errors.total >= DEGRADED_ERROR_RATE or typical >= SLOW_MEDIAN:
        return "degraded"
    return "healthy"


def phase_windows(scenario: Scenario, length: float | None = None) -> list[PhaseWindow]:
    """The scenario's phases as windows, cut at ``length`` seconds (default: the scenario's duration).

    A run longer than the scenario stretches the last phase to ``length``; phases starting at or after
    ``length`` are left out.
    """
    end_of_run = scenario.duration if length is None else float(length)
    windows: list[PhaseWindow] = []
    start = 0.0
    for index, phase in enumerate(scenario.phases):
        if start >= end_of_run:
            break
        last = index == len(scenario.phases) - 1
        end = end_of_run if last else min(start + phase.duration, end_of_run)
        windows.append(PhaseWindow(index, phase.name, classify_phase(phase), start, end, end < end_of_run))
        start += phase.duration
    return windows


def calls_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per finished call: ``start`` (scenario seconds), ``end``, ``duration``, ``ok``, ``attempts``,
    ``status``, ``outcome`` and ``rejected`` (refused before reaching the network at some point)."""
    finished = events[events["event"] == "call_finished"]
    rejected_ids = set(events.loc[events["event"] == "call_rejected", "call_id"].astype("int64"))
    duration = finished["duration"].astype(float)
    end = finished["time"].astype(float)
    return pd.DataFrame(
        {
            "start": (end - duration).to_numpy(),
            "end": end.to_numpy(),
            "duration": duration.to_numpy(),
            "ok": finished["ok"].astype(str).str.lower().eq("true").to_numpy(),
            "attempts": finished["attempts"].fillna(0).astype("int64").to_numpy(),
            "status": finished["status"].to_numpy(),
            "outcome": finished["outcome"].astype(str).to_numpy(),
            "rejected": finished["call_id"].astype("int64").isin(rejected_ids).to_numpy(),
        }
    )


def recovery_time(calls: pd.DataFrame, after: float, *, run_end: float | None = None) -> float:
    """Seconds from ``after`` until the calls started in a :data:`RECOVERY_WINDOW`-second window first reach
    :data:`RECOVERED_SUCCESS`; ``math.inf`` when they never do within the run.

    The window slides over call start times at or after ``after``; it must fit before ``run_end`` (default: the
    last call's start), so the last few seconds of a run cannot prove a recovery on a handful of calls.
    """
    later = calls[calls["start"] >= after].sort_values("start")
    starts = later["start"].to_numpy(dtype=float)
    if starts.size == 0:
        return math.inf
    limit = float(starts[-1]) if run_end is None else run_end
    ok = np.concatenate(([0], np.cumsum(later["ok"].to_numpy(dtype=np.int64))))
    ends = np.searchsorted(starts, starts + RECOVERY_WINDOW, side="left")
    counts = ends - np.arange(starts.size)
    rates = (ok[ends] - ok[: starts.size]) / np.maximum(counts, 1)
    fits = starts + RECOVERY_WINDOW <= limit + 1e-9
    good = np.flatnonzero((rates >= RECOVERED_SUCCESS) & fits)
    return float(starts[good[0]] - after) if good.size else math.inf


def measure(
    events: pd.DataFrame,
    server: pd.DataFrame | None,
    scenario: Scenario,
    *,
    deadline: float | None,
    length: float | None = None,
) -> ScenarioFigures:
    """The figures of one scenario run (see :mod:`integration_kit.playbook.kinds.http.objectives` for each definition).

    ``events`` hold one scenario's events with times in scenario seconds; ``server`` the partner's per-second
    count (``None`` or empty: the attempts sent stand in for it); ``deadline`` the spec's (``None``: no
    overruns possible); ``length`` the run's scenario seconds (default: the last call's start, rounded up to a
    whole second, so a run cut short by ``duration`` is judged on the phases it reached).
    """
    calls = calls_table(events)
    attempt_times = events.loc[events["event"] == "attempt_started", "time"].astype(float).to_numpy()
    refusal_times = events.loc[events["event"] == "budget_exhausted", "time"].astype(float).to_numpy()
    last_start = float(calls["start"].max()) if len(calls) else 0.0
    run_length = length if length is not None else (max(1.0, math.ceil(last_start)) if len(calls) else 0.0)
    received = _received(server, attempt_times)
    phases = []
    judged = np.zeros(len(calls), dtype=bool)
    for window in phase_windows(scenario, run_length):
        last = window.index == len(scenario.phases) - 1 or window.end >= run_length
        in_phase = (calls["start"] >= window.start) & ((calls["start"] < window.end) | last)
        if window.kind != "outage":
            judged |= in_phase.to_numpy()
        recovery = recovery_time(calls, window.end, run_end=run_length) if window.bad and window.followed else None
        phases.append(
            PhaseFigures(
                window=window,
                calls=int(in_phase.sum()),
                succeeded=int(calls.loc[in_phase, "ok"].sum()),
                attempts=_count_between(attempt_times, window.start, math.inf if last else window.end),
                received=int(received(window.start, math.inf if last else window.end)),
                budget_refusals=_count_between(refusal_times, window.start, math.inf if last else window.end),
                recovery_time=recovery,
            )
        )
    completed = calls.loc[~calls["rejected"], "duration"].to_numpy(dtype=float)
    overruns = 0 if deadline is None else int((calls["duration"] > deadline + DEADLINE_TOLERANCE).sum())
    return ScenarioFigures(
        scenario=scenario.name,
        calls=len(calls),
        judged_calls=int(judged.sum()),
        judged_succeeded=int(calls.loc[judged, "ok"].sum()),
        attempts=int(attempt_times.size),
        p99_latency=float(np.percentile(completed, 99)) if completed.size else math.nan,
        deadline_overruns=overruns,
        budget_refusals=int(refusal_times.size),
        phases=tuple(phases),
        rate_limited_attempts=_rate_limited(events),
    )


def _rate_limited(events: pd.DataFrame) -> int:
    """Attempts answered 429, or 403 (GitHub's rate-limit refusal), in ``events``."""
    if "status" not in events:
        return 0
    finished = events.loc[events["event"] == "attempt_finished", "status"]
    return int(finished.isin([429, 403]).sum())


def _count_between(times: np.ndarray, start: float, end: float) -> int:
    return int(((times >= start) & (times < end)).sum())


def _received(server: pd.DataFrame | None, attempt_times: np.ndarray) -> _Counter:
    """A counter of attempts the partner received in ``[start, end)``: its own per-second view when there is one,
    else the attempts sent."""
    if server is None or server.empty:
        return lambda start, end: _count_between(attempt_times, start, end)
    seconds = server["second"].astype(float).to_numpy()
    counts = server["received"].astype("int64").to_numpy()

    def between(start: float, end: float) -> int:
        return int(counts[(seconds >= math.floor(start)) & (seconds < end)].sum())

    return between
