"""Exercising a queue integration: every scenario played in virtual time or on the spec's broker, and what a run
folder holds.

:func:`play` plays the chosen scenarios (simulated: :func:`~integration_kit.queues.sim.simulate_queue`; live:
:func:`~integration_kit.playbook.kinds.queue.live.play_on_broker` on RabbitMQ or JetStream, a uniquely named topology
created and deleted, ``time_scale`` times faster than real time, at most ``max_messages`` messages per scenario).
A :class:`QueueExercise` shows the figures per scenario and saves ``summary.json`` (figures, thinning, objectives)
and ``series.csv`` (depth, outbox, in flight and lag once a scenario second), which :func:`load_run` reads back.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from integration_kit.clock import SystemClock
from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.files import SUMMARY_FILE, read_summary
from integration_kit.playbook.kinds.protocol import ExerciseOptions
from integration_kit.playbook.kinds.queue.spec import QueueSpec, judge
from integration_kit.playbook.verdict.bench import BenchHealth, BenchMonitor, lateness_limit
from integration_kit.queues.errors import BrokerUnavailable
from integration_kit.queues.sim import QueueResult, simulate_queue

__all__ = ["LIVE_TIME_SCALE", "MAX_MESSAGES", "SERIES_FILE", "SUMMARY_FILE", "QueueExercise", "load_run", "play"]

#: How many times faster than real time a live queue run plays its scenarios by default (20: a 3-minute scenario
#: in 9 s); HTTP and webhook runs default to 10.
LIVE_TIME_SCALE = 20.0
#: At most this many messages per scenario in a live run; bigger scenarios are thinned (``queue.live.thin``).
MAX_MESSAGES = 400
SERIES_FILE = "series.csv"


@dataclass(frozen=True)
class QueueExercise:
    """Every scenario run of one exercise of a queue integration."""

    spec: QueueSpec
    results: tuple[QueueResult, ...]
    mode: str = "simulate"
    seed: int = 0
    #: A live run's broker, time scale and message cap (``None`` when simulated).
    live: dict[str, Any] | None = None
    #: A live run's bench health per scenario (empty when simulated).
    bench: Mapping[str, BenchHealth] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The summary document (``summary.json``): per scenario its figures, thinning and objectives, and ``ok``."""
        summary: dict[str, Any] = {"integration": self.spec.name, "kind": "queue", "mode": self.mode}
        summary["seed"] = self.seed
        if self.live is not None:
            summary["live"] = dict(self.live)
        scenarios: dict[str, Any] = {}
        for result in self.results:
            figures = result.figures()
            objectives = judge(self.spec, figures)
            scenarios[result.scenario] = {
                **figures,
                "calls": figures["messages"],  # the columns of the run table, in queue terms
                "success_rate": figures["applied"] / max(1, figures["messages"] - figures["poison"]),
                "rejected": figures["dead_letters"],
                "amplification": (figures["messages"] + figures["redeliveries"]) / max(1, figures["messages"]),
                "thinning": result.thinning,
                "redeliveries_by_attempt": {str(a): n for a, n in sorted(result.redeliveries.items())},
                "objectives": [
                    {"figure": o.figure, "limit": o.limit, "value": o.value, "met": o.met} for o in objectives
                ],
            }
            if result.scenario in self.bench:
                scenarios[result.scenario]["bench"] = self.bench[result.scenario].as_dict()
        summary["scenarios"] = scenarios
        summary["ok"] = all(o["met"] for s in scenarios.values() for o in s["objectives"])
        return summary

    def summary_table(self) -> pd.DataFrame:
        """One row per scenario: messages, lost, applied twice, dead letters, redeliveries, p99 latency, max lag."""
        columns = ["messages", "lost", "applied_twice", "dead_letters", "redeliveries", "latency_p99", "max_lag"]
        rows = [{"scenario": r.scenario, **{k: r.figures()[k] for k in columns}} for r in self.results]
        return pd.DataFrame(rows).set_index("scenario") if rows else pd.DataFrame()

    def save(self, out_dir: str | Path) -> Path:
        """Write ``summary.json`` and ``series.csv`` into ``out_dir`` (created); return it."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SUMMARY_FILE).write_text(json.dumps(self.summary(), indent=2) + "\n")
        frames = [pd.DataFrame(r.series).assign(scenario=r.scenario) for r in self.results]
        series = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"scenario": []})
        series.to_csv(folder / SERIES_FILE, index=False)
        return folder


def play(spec: QueueSpec, options: ExerciseOptions, out_dir: Path) -> QueueExercise:
    """Play ``spec``'s chosen scenarios (see the module docstring); a live run keeps its SQLite files under
    ``<out_dir>/live/<scenario>/``.

    Raises :class:`~integration_kit.errors.ConfigurationError` for another mode, an unknown scenario, a duration or
    time scale that is not positive, and in live mode without the ``queues`` extra or when the broker cannot be
    reached.
    """
    spec = chosen(spec, options.scenario, options.duration)
    if options.mode == "simulate":
        results = tuple(simulate_queue(s, spec.settings, seed=options.seed) for s in spec.scenarios)
        return QueueExercise(spec, results, "simulate", options.seed)
    scale = time_scale(spec, options)
    play_on_broker = live_player(spec)
    results_live = []
    health: dict[str, BenchHealth] = {}
    try:
        for scenario in spec.scenarios:
            with BenchMonitor(SystemClock(), scale, lag_limit=lateness_limit(scale)) as monitor:
                results_live.append(
                    _in_own_thread(
                        play_on_broker,
                        spec.broker,
                        spec.topology,
                        scenario,
                        spec.settings,
                        folder=out_dir / "live" / scenario.name,
                        time_scale=1.0 / scale,
                        seed=options.seed,
                        max_messages=MAX_MESSAGES,
                        bench=monitor,
                    )
                )
            health[scenario.name] = monitor.health()
    except BrokerUnavailable as exc:
        raise ConfigurationError(f"{spec.name}: live mode needs its {spec.broker} broker: {exc}") from exc
    live = {"broker": spec.broker, "time_scale": scale, "max_messages": MAX_MESSAGES}
    return QueueExercise(spec, tuple(results_live), "live", options.seed, live, health)


def live_player(spec: QueueSpec, *, check_broker: bool = False) -> Callable[..., QueueResult]:
    """:func:`~integration_kit.playbook.kinds.queue.live.play_on_broker`, whose brokers' clients come with the
    ``queues`` extra. ``check_broker`` also makes sure the spec's broker accepts connections.

    Raises :class:`~integration_kit.errors.ConfigurationError` saying what to install when the extra is missing, or
    which host and port did not answer.
    """
    try:
        live = importlib.import_module("integration_kit.playbook.kinds.queue.live")
    except ImportError as exc:
        raise ConfigurationError(
            f"{spec.name}: live mode needs the queues extra (aio-pika, nats-py): "
            f"pip install 'integration_kit[queues]' ({exc.name or exc} is missing)"
        ) from None
    if check_broker:
        try:
            live.reachable(spec.broker)
        except BrokerUnavailable as exc:
            raise ConfigurationError(f"{spec.name}: live mode needs its {spec.broker} broker: {exc}") from None
    player: Callable[..., QueueResult] = live.play_on_broker
    return player


def _in_own_thread(function: Callable[..., QueueResult], *args: Any, **kwargs: Any) -> QueueResult:
    """``function(*args, **kwargs)`` in a thread of its own: it runs its own asyncio loop, and a notebook's kernel
    already runs one in this thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="queue-live") as pool:
        return pool.submit(function, *args, **kwargs).result()


def time_scale(spec: QueueSpec, options: ExerciseOptions) -> float:
    """The live time scale ``options`` ask for (default :data:`LIVE_TIME_SCALE`); it must be positive."""
    scale = LIVE_TIME_SCALE if options.time_scale is None else options.time_scale
    if not scale > 0:
        raise ConfigurationError(f"{spec.name}: time_scale must be a positive number, got {options.time_scale!r}")
    return scale


def chosen(spec: QueueSpec, scenario: str, duration: float | None) -> QueueSpec:
    """``spec`` with only ``scenario`` (``"all"``: every one), each lasting ``duration`` seconds when given.

    Raises :class:`~integration_kit.errors.ConfigurationError` for an unknown scenario or a duration that is not a
    positive number.
    """
    scenarios = spec.scenarios
    if scenario != "all":
        scenarios = tuple(s for s in scenarios if s.name == scenario)
        if not scenarios:
            names = ", ".join(s.name for s in spec.scenarios)
            raise ConfigurationError(f"{spec.name}: no scenario {scenario!r} (the spec has: {names})")
    if duration is not None:
        if not (isinstance(duration, (int, float)) and duration > 0):
            raise ConfigurationError(f"{spec.name}: duration must be a positive number of seconds, got {duration!r}")
        scenarios = tuple(replace(s, duration=float(duration)) for s in scenarios)
    return replace(spec, scenarios=scenarios)


def load_run(out_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Read back what :meth:`QueueExercise.save` wrote: (summary document, series).

    Raises :class:`~integration_kit.errors.ConfigurationError` when the folder holds no exercise.
    """
    folder = Path(out_dir)
    summary = read_summary(folder)
    series = pd.read_csv(folder / SERIES_FILE) if (folder / SERIES_FILE).is_file() else pd.DataFrame()
    return summary, series
