"""Exercising a WebSocket integration: every scenario played in virtual time or against the live flaky feed, and
what a run folder holds.

Simulated (:func:`~integration_kit.sim.ws_herd.simulate_herd`, strategy ``kit`` with the spec's reconnect policy):
the restart of every client at once, in virtual time. Live (:mod:`~integration_kit.playbook.kinds.websocket.live`):
the same restart against :class:`~integration_kit.sim.ws_upstream.FlakyFeed` on 127.0.0.1 with real clients.

Figures per scenario (each a possible objective, a ceiling):

- ``messages_lost``: messages published while clients were away and never delivered (0 with resume or resync);
- ``duplicates_delivered``: messages handed to the user twice (0 when the spec names a sequence field: the client
  drops them; simulated without one, every resumed reconnect counts one, the message it resumes from);
- ``disconnected_p99``: the 99th percentile of the time a client spent disconnected (seconds);
- ``stall_detect``: how long a silent, open socket goes unnoticed (``stale_after``; without one, the whole run:
  keepalive pings are still answered, so nothing else catches it);
- ``peak_handshakes``: the most handshakes the server saw in one second after the restart. Judged in simulate
  mode only: a live run has at most 20 clients, and the busiest second of 20 clients scaled up to 1,000 (each
  handshake counting 50) overstates the herd's peak by its noise, so a live run reports it as information,
  beside the objective, not as a check (see :mod:`~integration_kit.playbook.kinds.websocket.live`).

:class:`WsExercise` saves ``summary.json`` (figures and objectives per scenario) and ``series.csv`` (per second after
the restart: handshakes at the server, clients connected), which :func:`load_run` reads back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.files import SUMMARY_FILE, read_summary
from integration_kit.playbook.kinds.protocol import ExerciseOptions
from integration_kit.playbook.kinds.websocket.spec import FIGURES, WebSocketSpec, WsScenario
from integration_kit.sim.ws_herd import HerdResult, simulate_herd

__all__ = ["LIVE_TIME_SCALE", "SERIES_FILE", "SUMMARY_FILE", "ScenarioRun", "WsExercise", "chosen", "load_run", "play"]

#: How many times faster than real time a live run plays its scenarios by default.
LIVE_TIME_SCALE = 10.0
SERIES_FILE = "series.csv"


@dataclass(frozen=True)
class ScenarioRun:
    """One scenario's figures (see the module docstring), its series, and the herd's details."""

    scenario: str
    figures: dict[str, float]
    series: pd.DataFrame
    details: dict[str, Any]


@dataclass(frozen=True)
class WsExercise:
    """Every scenario run of one exercise of a WebSocket integration."""

    spec: WebSocketSpec
    runs: tuple[ScenarioRun, ...]
    mode: str = "simulate"
    seed: int = 0
    live: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The summary document (``summary.json``): per scenario its figures, details and objectives, and ``ok``.

        The figures a live run names ``informational`` are not judged: they are listed under ``information`` with
        the objective's limit, beside the objectives, and do not count towards ``ok``."""
        scenarios: dict[str, Any] = {}
        shown_only = set(self.live.get("informational", ())) if self.live is not None else set()
        for run in self.runs:
            objectives = [
                {"figure": k, "limit": v, "value": run.figures.get(k), "met": run.figures.get(k, math.inf) <= v}
                for k, v in self.spec.objectives.items()
                if k not in shown_only
            ]
            information = [
                {"figure": k, "limit": v, "value": run.figures.get(k)}
                for k, v in self.spec.objectives.items()
                if k in shown_only
            ]
            scenarios[run.scenario] = {
                **run.figures,
                **run.details,
                "objectives": objectives,
                "information": information,
            }
        summary: dict[str, Any] = {"integration": self.spec.name, "kind": "websocket", "mode": self.mode}
        summary["seed"] = self.seed
        if self.live is not None:
            summary["live"] = dict(self.live)
        summary["scenarios"] = scenarios
        summary["ok"] = all(o["met"] for s in scenarios.values() for o in s["objectives"])
        return summary

    def summary_table(self) -> pd.DataFrame:
        """One row per scenario, the figures."""
        rows = [{"scenario": r.scenario, **{k: r.figures[k] for k in FIGURES}} for r in self.runs]
        return pd.DataFrame(rows).set_index("scenario") if rows else pd.DataFrame()

    def save(self, out_dir: str | Path) -> Path:
        """Write ``summary.json`` and ``series.csv`` into ``out_dir`` (created); return it."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SUMMARY_FILE).write_text(json.dumps(self.summary(), indent=2) + "\n")
        frames = [r.series.assign(scenario=r.scenario) for r in self.runs]
        series = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"scenario": []})
        series.to_csv(folder / SERIES_FILE, index=False)
        return folder


def play(spec: WebSocketSpec, options: ExerciseOptions, out_dir: Path) -> WsExercise:
    """Play ``spec``'s chosen scenarios, simulated or live (see the module docstring).

    Raises :class:`~integration_kit.errors.ConfigurationError` for an unknown scenario, a bad duration or time scale.
    """
    spec = chosen(spec, options.scenario, options.duration)
    if options.mode == "simulate":
        return WsExercise(
            spec, tuple(simulated(spec, s, options.seed) for s in spec.scenarios), "simulate", options.seed
        )
    from integration_kit.playbook.kinds.websocket.live import play_live  # the websocket extra, only when live

    scale = time_scale(spec, options)
    runs, live = play_live(spec, scale, options.seed)
    return WsExercise(spec, runs, "live", options.seed, live)


def simulated(spec: WebSocketSpec, scenario: WsScenario, seed: int) -> ScenarioRun:
    """One scenario in virtual time, the spec's reconnect policy on every client."""
    herd = replace(scenario.herd, resume=spec.gap_strategy != "none")
    result = simulate_herd(herd, "kit", spec.reconnect, seed=seed)
    window = herd.horizon - herd.restart_at
    back = [d for d in result.down if math.isfinite(d)]
    figures = {
        "messages_lost": float(sum(result.lost)),
        "duplicates_delivered": 0.0 if spec.sequence_field or spec.gap_strategy == "none" else float(len(back)),
        "disconnected_p99": min(window, result.down_quantile(0.99)),
        "stall_detect": spec.stale_after if spec.stale_after is not None else window,
        "peak_handshakes": float(result.peak),
    }
    return ScenarioRun(scenario.name, figures, herd_series(result, window), details(result, herd.clients, spec))


def herd_series(result: HerdResult, window: float) -> pd.DataFrame:
    """Per second after the restart: handshakes the server saw, and clients connected at the end of the second."""
    seconds = range(len(result.per_second))
    connected = [sum(1 for d in result.down if d <= t + 1) for t in seconds]
    return pd.DataFrame({"t": list(seconds), "handshakes": list(result.per_second), "connected": connected}).query(
        f"t <= {window}"
    )


def details(result: HerdResult, clients: int, spec: WebSocketSpec) -> dict[str, Any]:
    """What the dashboards show beyond the figures: clients, handshakes, refusals, gaps and resyncs, time away."""
    gaps = sum(1 for n in result.lost if n > 0)
    away = sorted(d for d in result.down if math.isfinite(d))
    return {
        **run_columns(result.handshakes, len(away), clients, sum(result.refused.values())),
        "clients": clients,
        "handshakes": result.handshakes,
        "refused": dict(result.refused),
        "gave_up": result.gave_up,
        "gaps": gaps if spec.gap_strategy == "none" else 0,
        "resyncs": len(away) if spec.gap_strategy == "resync" else 0,
        "disconnected": away,
    }


def run_columns(handshakes: int, back: int, clients: int, refused: int) -> dict[str, float]:
    """The run table's columns in WebSocket terms: ``calls`` are handshakes, ``success_rate`` the share of clients
    back by the horizon, ``rejected`` the refused handshakes, ``amplification`` handshakes per client."""
    return {
        "calls": handshakes,
        "success_rate": back / max(1, clients),
        "rejected": refused,
        "amplification": handshakes / max(1, clients),
    }


def time_scale(spec: WebSocketSpec, options: ExerciseOptions) -> float:
    """The live time scale ``options`` ask for (default :data:`LIVE_TIME_SCALE`); it must be positive."""
    scale = LIVE_TIME_SCALE if options.time_scale is None else options.time_scale
    if not scale > 0:
        raise ConfigurationError(f"{spec.name}: time_scale must be a positive number, got {options.time_scale!r}")
    return scale


def chosen(spec: WebSocketSpec, scenario: str, duration: float | None) -> WebSocketSpec:
    """``spec`` with only ``scenario`` (``"all"``: every one), each ending ``duration`` seconds after its restart
    when given. Raises :class:`~integration_kit.errors.ConfigurationError` for an unknown scenario or a duration
    that is not a positive number."""
    scenarios = spec.scenarios
    if scenario != "all":
        scenarios = tuple(s for s in scenarios if s.name == scenario)
        if not scenarios:
            names = ", ".join(s.name for s in spec.scenarios)
            raise ConfigurationError(f"{spec.name}: no scenario {scenario!r} (the spec has: {names})")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, int | float) or not duration > 0:
            raise ConfigurationError(f"{spec.name}: duration must be a positive number of seconds, got {duration!r}")
        scenarios = tuple(
            replace(s, herd=replace(s.herd, horizon=s.herd.restart_at + float(duration))) for s in scenarios
        )
    return replace(spec, scenarios=scenarios)


def load_run(out_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Read back what :meth:`WsExercise.save` wrote: (summary document, series).

    Raises :class:`~integration_kit.errors.ConfigurationError` when the folder holds no exercise.
    """
    folder = Path(out_dir)
    summary = read_summary(folder)
    series = pd.read_csv(folder / SERIES_FILE) if (folder / SERIES_FILE).is_file() else pd.DataFrame()
    return summary, series
