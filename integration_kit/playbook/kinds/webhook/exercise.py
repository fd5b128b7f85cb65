"""Exercising a webhook integration: its scenarios played in virtual time or live, and what a run folder holds.

:func:`run_scenarios` plays the spec's scenarios through the real receiving or sending code; a
:class:`WebhookExercise` shows their outcome table and saves ``summary.json`` (counters, figures and objectives per
scenario) and ``events.csv`` (one row per event, with a ``scenario`` column) into the run folder, which
:func:`load_runs` reads back for the verdict and the charts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.files import SUMMARY_FILE, read_summary
from integration_kit.playbook.kinds.webhook.charts import outcome_table
from integration_kit.playbook.kinds.webhook.live import live_webhooks
from integration_kit.playbook.kinds.webhook.sim import WebhookRun, simulate_webhooks
from integration_kit.playbook.kinds.webhook.spec import WebhookSpec
from integration_kit.playbook.verdict.bench import BenchHealth

__all__ = ["EVENTS_FILE", "SUMMARY_FILE", "WebhookExercise", "load_runs", "run_scenarios", "save_summary"]

EVENTS_FILE = "events.csv"


def run_scenarios(
    spec: WebhookSpec, *, seed: int = 0, scenario: str = "all", mode: str = "simulate", time_scale: float = 10.0
) -> list[WebhookRun]:
    """Play the spec's scenarios (``"all"`` or one name) in virtual time, or ``mode="live"`` over real sockets on
    127.0.0.1 with scenario time ``time_scale`` times faster (:mod:`integration_kit.playbook.kinds.webhook.live`).

    Raises :class:`~integration_kit.errors.ConfigurationError` for another mode or an unknown scenario.
    """
    chosen = spec.scenarios if scenario == "all" else (spec.scenario(scenario),)
    if mode == "live":
        return [live_webhooks(spec, s, seed=seed, time_scale=time_scale) for s in chosen]
    if mode != "simulate":
        raise ConfigurationError(f"mode must be simulate or live, got {mode!r}")
    return [simulate_webhooks(spec, s, seed=seed) for s in chosen]


@dataclass(frozen=True)
class WebhookExercise:
    """Every scenario run of one exercise of a webhook integration."""

    spec: WebhookSpec
    runs: tuple[WebhookRun, ...]
    mode: str = "simulate"
    seed: int = 0

    def summary_table(self) -> pd.DataFrame:
        """One row per scenario: the counters the charts plot, and whether its objectives are met."""
        return outcome_table(list(self.runs))

    def save(self, out_dir: str | Path) -> Path:
        """Write ``summary.json`` and ``events.csv`` into ``out_dir`` (created); return it."""
        folder = save_summary(self.spec, self.runs, out_dir, seed=self.seed, mode=self.mode).parent
        frames = [run.frame().assign(scenario=run.scenario) for run in self.runs]
        events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"scenario": []})
        events.to_csv(folder / EVENTS_FILE, index=False)
        return folder


def save_summary(
    spec: WebhookSpec, runs: Iterable[WebhookRun], out_dir: str | Path, *, seed: int = 0, mode: str = "simulate"
) -> Path:
    """Write ``summary.json`` (counters, objectives and the verdict per scenario) into ``out_dir``; return its path."""
    runs = list(runs)
    summary = {
        "integration": spec.name,
        "kind": spec.kind,
        "mode": mode,
        "seed": seed,
        "ok": all(r.ok for r in runs),
        "scenarios": {r.scenario: r.as_dict() for r in runs},
    }
    target = Path(out_dir) / SUMMARY_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary, indent=2, default=float))
    return target


def load_runs(spec: WebhookSpec, out_dir: str | Path) -> tuple[dict[str, Any], list[WebhookRun]]:
    """Read back what :meth:`WebhookExercise.save` wrote: the summary document and each scenario's run.

    Raises :class:`~integration_kit.errors.ConfigurationError` when the folder holds no exercise.
    """
    folder = Path(out_dir)
    summary = read_summary(folder)
    events = pd.read_csv(folder / EVENTS_FILE) if (folder / EVENTS_FILE).is_file() else pd.DataFrame()
    runs = []
    for name, data in summary["scenarios"].items():
        rows = events[events["scenario"] == name].drop(columns="scenario") if "scenario" in events else events
        counts = {k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        objectives = {str(k): bool(v) for k, v in data.get("objectives", {}).items()}
        records = [{str(k): v for k, v in row.items()} for row in rows.to_dict("records")]
        bench = BenchHealth.from_dict(data["bench"]) if data.get("bench") else None
        runs.append(WebhookRun(spec.name, spec.kind, name, counts, records, objectives, bench))
    return summary, runs
