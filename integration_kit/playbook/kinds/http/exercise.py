"""Exercising an HTTP integration: its scenarios played in the simulator or live, and what a run folder holds.

:func:`exercise` runs an integration's scenarios in the simulator (virtual time, deterministic for a seed) or live
(the real client over real sockets, against the local flaky upstream or a real service) and returns the recorded
events and summaries; :meth:`ExerciseResult.save` writes them to a run folder, :func:`load_exercise` reads them
back, and :func:`chart_run` draws every chart of a saved run.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from integration_kit.errors import ConfigurationError
from integration_kit.events import Recorder, Summary
from integration_kit.playbook.kinds.files import SUMMARY_FILE
from integration_kit.playbook.kinds.http import charts
from integration_kit.playbook.kinds.http.bench import BenchHealth, fitted_time_scale
from integration_kit.playbook.kinds.http.figures import phase_windows
from integration_kit.playbook.kinds.http.live import live_exercise, pool_size
from integration_kit.playbook.kinds.http.spec import IntegrationSpec, load_integration
from integration_kit.playbook.kinds.protocol import Mode
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.simulate import SimulationResult, simulate

__all__ = [
    "CHARTS",
    "EVENTS_FILE",
    "EVENT_DTYPES",
    "LIVE_TIME_SCALE",
    "SERVER_FILE",
    "SUMMARY_FILE",
    "ExerciseResult",
    "ScenarioRun",
    "chart_run",
    "exercise",
    "load_exercise",
    "load_model",
    "scenarios_of",
    "simulate_integration",
]

#: The column types of ``events.csv``: read explicitly, so a column that is empty in the first rows and filled
#: later (``status``, ``old``) never makes pandas guess per chunk and warn (``DtypeWarning``).
EVENT_DTYPES: dict[str, str] = {
    "event": "string",
    "time": "float64",
    "integration": "string",
    "call_id": "int64",
    "attempt": "Int64",
    "method": "string",
    "target": "string",
    "outcome": "string",
    "status": "Int64",
    "verdict": "string",
    "duration": "float64",
    "delay": "float64",
    "reason": "string",
    "timeout": "float64",
    "idempotency_key": "string",
    "ok": "boolean",
    "attempts": "Int64",
    "tokens": "float64",
    "breaker": "string",
    "old": "string",
    "new": "string",
    "store": "string",
    "operation": "string",
    "fallback": "string",
    "scenario": "string",
}
EVENTS_FILE = "events.csv"
#: How many times faster than real time a live run plays scenarios at most (the kind's default).
LIVE_TIME_SCALE = 10.0
SERVER_FILE = "server.csv"


@dataclass(frozen=True)
class ScenarioRun:
    """One scenario's run: its summary, what the partner received, and the breaker's transitions."""

    scenario: str
    summary: Summary
    upstream_received: int
    transitions: tuple[str, ...]
    frame: pd.DataFrame = field(repr=False)
    server: pd.DataFrame = field(repr=False)
    wall_seconds: float = 0.0
    #: Live runs: how well the bench kept up (``None`` in the simulator, which never falls behind).
    bench: BenchHealth | None = None
    #: Live runs: the URL the client called.
    url: str = ""
    #: Calls whose malformed answer (the scenario's ``malformed`` fault) response validation caught.
    malformed_caught: int = 0
    #: Calls that handed a malformed answer to the caller.
    malformed_accepted: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (NaN becomes ``None``); the malformed counts only when there were any."""
        data: dict[str, Any] = {**self.summary.as_dict(), "upstream_received": self.upstream_received}
        if self.malformed_caught or self.malformed_accepted:
            data |= {"malformed_caught": self.malformed_caught, "malformed_accepted": self.malformed_accepted}
        data["transition_log"] = list(self.transitions)
        data = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}
        if self.bench is not None:
            data["bench"] = self.bench.as_dict()
        if self.url:
            data["url"] = self.url
        return data


@dataclass(frozen=True)
class ExerciseResult:
    """Every scenario run of one exercise of an integration."""

    integration: str
    mode: Mode
    seed: int
    runs: tuple[ScenarioRun, ...]
    #: How load was offered, in words (the report says which load model the run used).
    load_model: str = ""
    #: What was exercised, in words: ``"live: http://127.0.0.1:51234 (the local flaky upstream, x2)"``.
    target: str = ""

    def frame(self) -> pd.DataFrame:
        """All events, one row each, with a ``scenario`` column."""
        return self._stacked("frame")

    def server_frame(self) -> pd.DataFrame:
        """Upstream attempts received per second, per scenario."""
        return self._stacked("server")

    def _stacked(self, attribute: str) -> pd.DataFrame:
        frames = [getattr(run, attribute).assign(scenario=run.scenario) for run in self.runs]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def summary_table(self) -> pd.DataFrame:
        """One row per scenario: calls, success rate, amplification, latency percentiles, transitions."""
        rows = []
        malformed = any(run.malformed_caught or run.malformed_accepted for run in self.runs)
        for run in self.runs:
            s = run.summary
            rows.append(
                {
                    "scenario": run.scenario,
                    "calls": s.calls,
                    "success_all_calls": s.success_rate,
                    "rejected": s.rejected,
                    "attempts": s.attempts,
                    "amplification": s.amplification,
                    "budget_refusals": s.budget_refusals,
                    "p50_all_calls_s": s.latency_p50,
                    "p95_all_calls_s": s.latency_p95,
                    "p99_all_calls_s": s.latency_p99,
                    "transitions": len(s.transitions),
                    # calls that met a malformed answer: caught by response validation / handed to the caller
                    **(
                        {"malformed_caught": run.malformed_caught, "malformed_accepted": run.malformed_accepted}
                        if malformed
                        else {}
                    ),
                    **({"bench": run.bench.reason() or "kept up"} if run.bench is not None else {}),
                }
            )
        return pd.DataFrame(rows).set_index("scenario") if rows else pd.DataFrame()

    def as_dict(self) -> dict[str, Any]:
        """The summary document saved as ``summary.json``."""
        return {
            "integration": self.integration,
            "mode": self.mode,
            "seed": self.seed,
            "load_model": self.load_model,
            "target": self.target,
            "scenarios": {run.scenario: run.as_dict() for run in self.runs},
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write ``events.csv``, ``server.csv`` and ``summary.json`` into ``out_dir`` (created); return it."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.frame().to_csv(folder / EVENTS_FILE, index=False)
        self.server_frame().to_csv(folder / SERVER_FILE, index=False)
        (folder / SUMMARY_FILE).write_text(json.dumps(self.as_dict(), indent=2, allow_nan=False) + "\n")
        return folder


def load_exercise(out_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read back what :meth:`ExerciseResult.save` wrote: (events, server view, summary document)."""
    folder = Path(out_dir)
    missing = [n for n in (EVENTS_FILE, SERVER_FILE, SUMMARY_FILE) if not (folder / n).is_file()]
    if missing:
        raise ConfigurationError(f"{folder}: no exercise results ({', '.join(missing)} missing): run stage 02 first")
    events = pd.read_csv(folder / EVENTS_FILE, keep_default_na=True, dtype=EVENT_DTYPES)
    server = pd.read_csv(folder / SERVER_FILE, dtype={"scenario": "string"})
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    return events, server, summary


def simulate_integration(
    spec: IntegrationSpec,
    scenario: Scenario,
    *,
    seed: int = 0,
    duration: float | None = None,
    rate: float | None = None,
    workers: int | None = None,
    recorder: Recorder | None = None,
) -> SimulationResult:
    """Run ``scenario`` in the simulator with exactly the policies ``spec`` gives its client, under the spec's
    ``[exercise]`` load unless ``rate``, ``workers`` or ``duration`` say otherwise. ``recorder`` goes to
    :func:`~integration_kit.sim.simulate.simulate` (an :class:`~integration_kit.sim.stream.EventStream` bounds
    memory)."""
    ex = spec.exercise
    return simulate(
        scenario,
        config=spec.client,
        rate=ex.rate if rate is None else rate,
        workers=ex.workers if workers is None else workers,
        duration=duration if duration is not None else ex.duration,
        method=ex.method,
        seed=seed,
        recorder=recorder,
    )


def scenarios_of(spec: IntegrationSpec, scenario: str | Iterable[str] | None) -> list[Scenario]:
    """The scenarios ``scenario`` names (``"all"`` or ``None``: every one); an unknown name is a ConfigurationError."""
    if scenario is None or scenario == "all":
        return list(spec.scenarios)
    names = [scenario] if isinstance(scenario, str) else list(scenario)
    return [spec.scenario(n) for n in names]


def exercise(
    integration: str | IntegrationSpec,
    *,
    mode: Mode = "simulate",
    scenario: str | Iterable[str] | None = "all",
    seed: int = 0,
    duration: float | None = None,
    time_scale: float | None = None,
    base_url: str | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> ExerciseResult:
    """Run an integration's scenarios (``"all"`` or some names) and return every run's events and summary.

    ``mode="simulate"`` plays them in virtual time; ``mode="live"`` drives the real client over real sockets,
    against the local flaky upstream playing the scenario ``time_scale`` times faster than real time (10: a
    200 s scenario takes 20 s; ``None``: :data:`LIVE_TIME_SCALE`, reduced to what this machine can play by
    :func:`~integration_kit.playbook.kinds.http.bench.fitted_time_scale`, which the load model then says),
    or, with ``base_url``, against a real service with the secret from the spec's environment variable.
    ``progress(scenario, fraction)`` is called as live runs advance. Raises
    :class:`~integration_kit.playbook.kinds.http.bench.UnreachableTarget` when a live run's first attempts all
    fail before reaching the partner.
    """
    spec = integration if isinstance(integration, IntegrationSpec) else load_integration(integration)
    if mode not in ("simulate", "live"):
        raise ConfigurationError(f"mode must be 'simulate' or 'live', got {mode!r}")
    note = ""
    if time_scale is None:
        time_scale, note = fitted_time_scale(spec.exercise.rate, LIVE_TIME_SCALE)
    runs = []
    for s in scenarios_of(spec, scenario):
        if mode == "simulate":
            result = simulate_integration(spec, s, seed=seed, duration=duration)
            runs.append(
                ScenarioRun(
                    scenario=s.name,
                    summary=result.summary,
                    upstream_received=result.server.received,
                    transitions=tuple(result.transition_lines()),
                    frame=result.to_frame(),
                    server=result.server.to_frame(),
                    wall_seconds=result.wall_seconds,
                    malformed_caught=result.malformed if spec.validate_responses else 0,
                    malformed_accepted=0 if spec.validate_responses else result.malformed,
                )
            )
        else:
            runs.append(
                _live_run(
                    spec, s, seed=seed, duration=duration, time_scale=time_scale, base_url=base_url, progress=progress
                )
            )
    model = load_model(spec, mode) + (f"; {note}" if mode == "live" and note else "")
    return ExerciseResult(spec.name, mode, seed, tuple(runs), model, _target_text(mode, base_url, time_scale, runs))


def _target_text(mode: Mode, base_url: str | None, time_scale: float, runs: list[ScenarioRun]) -> str:
    """What was exercised, in words, for the top of the report."""
    if mode == "simulate":
        return "simulate: the simulator, in virtual time (no sockets)"
    if base_url:
        return f"live: {base_url} (a real service, real time)"
    urls = ", ".join(dict.fromkeys(r.url for r in runs if r.url))
    return f"live: {urls or 'http://127.0.0.1'} (the local flaky upstream, one port per scenario, x{time_scale:g})"


def load_model(spec: IntegrationSpec, mode: Mode) -> str:
    """How an exercise of ``spec`` offers load, in words: open-loop arrivals at the spec's rate (simulated: Poisson;
    live: evenly spaced, served by a bounded pool of callers) or closed-loop workers."""
    ex = spec.exercise
    if ex.workers:
        return f"closed-loop: {ex.workers} workers calling back to back"
    if mode == "simulate":
        return f"open-loop: Poisson arrivals at {ex.rate:g} calls/s (simulated, virtual time)"
    pool = pool_size(spec)
    return f"open-loop: Poisson arrivals at {ex.rate:g} calls/s, served by a pool of up to {pool} callers (live)"


def _live_run(
    spec: IntegrationSpec,
    scenario: Scenario,
    *,
    seed: int,
    duration: float | None,
    time_scale: float,
    base_url: str | None,
    progress: Callable[[str, float], None] | None,
) -> ScenarioRun:
    began = time.perf_counter()
    result = live_exercise(
        spec, scenario, seed=seed, duration=duration, time_scale=time_scale, base_url=base_url, progress=progress
    )
    return ScenarioRun(
        scenario=scenario.name,
        summary=result.summary,
        upstream_received=result.upstream_received,
        transitions=tuple(result.transition_lines),
        frame=result.frame,
        server=result.server,
        wall_seconds=time.perf_counter() - began,
        bench=result.bench,
        url=result.url,
        malformed_caught=result.malformed_caught,
        malformed_accepted=result.malformed_accepted,
    )


#: The charts saved per scenario by :func:`chart_run`, by file stem.
CHARTS: tuple[str, ...] = (
    "dashboard",
    "latency",
    "attempts",
    "breaker",
    "outcomes",
    "load",
    "amplification",
)


def chart_run(out_dir: str | Path, spec: IntegrationSpec | None = None) -> dict[str, dict[str, Path]]:
    """Draw every chart of a saved exercise, per scenario, into ``<out_dir>/charts/<scenario>-<chart>.png``.

    Returns ``{scenario: {chart: path}}``. The charts work on simulated and live runs alike. With the run's
    ``spec``, each time axis shades and names the scenario's phases.
    """
    events, server, _ = load_exercise(out_dir)
    folder = Path(out_dir) / "charts"
    saved: dict[str, dict[str, Path]] = {}
    for scenario in events["scenario"].drop_duplicates():
        frame = events[events["scenario"] == scenario]
        view = server[server["scenario"] == scenario] if "scenario" in server else None
        phases = None
        if spec is not None and scenario in {s.name for s in spec.scenarios}:
            started = frame["time"].astype(float) - frame["duration"].astype(float).fillna(0.0)
            length = math.ceil(float(started.max())) if len(frame) else None
            phases = phase_windows(spec.scenario(str(scenario)), length)
        saved[str(scenario)] = charts.save_dashboard(
            frame, view, folder, str(scenario), title=str(scenario), phases=phases
        )
    return saved
