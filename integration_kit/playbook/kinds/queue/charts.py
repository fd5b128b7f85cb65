"""Charts of a queue run: per scenario, the queue's and the outbox's depth with the consumer's lag, and the
redeliveries by attempt, drawn from a saved run folder (``series.csv`` and ``summary.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

__all__ = ["queue_dashboard", "save_dashboards"]


def queue_dashboard(scenario: str, series: pd.DataFrame, figures: Mapping[str, Any]) -> Figure:
    """Three panels for one scenario: depths over time, consumer lag over time, redeliveries by attempt."""
    figure = Figure(figsize=(11.0, 5.0), layout="constrained")
    grid = figure.subplots(2, 2, gridspec_kw={"width_ratios": [3, 1]})
    depth, redelivered, lag, latency = grid[0][0], grid[0][1], grid[1][0], grid[1][1]
    if not series.empty:
        depth.plot(series["t"], series["depth"], label="queue depth")
        depth.plot(series["t"], series["outbox"], label="outbox depth")
        lag.plot(series["t"], series["lag"], color="tab:red")
    depth.legend(loc="upper right")
    depth.set_ylabel("messages")
    lag.set_ylabel("consumer lag (s)")
    lag.set_xlabel("scenario time (s)")
    by_attempt = figures.get("redeliveries_by_attempt", {})
    redelivered.bar([str(a) for a in by_attempt], list(by_attempt.values()), color="tab:orange")
    redelivered.set_title("redeliveries by attempt", fontsize="small")
    latency.bar(["p50", "p99"], [figures.get("latency_p50", 0.0), figures.get("latency_p99", 0.0)])
    latency.set_title("end-to-end latency (s)", fontsize="small")
    lost, twice = figures.get("lost", 0), figures.get("applied_twice", 0)
    figure.suptitle(f"{scenario}: {lost} lost, {twice} applied twice, {figures.get('dead_letters', 0)} dead letters")
    return figure


def save_dashboards(summary: Mapping[str, Any], series: pd.DataFrame, folder: Path) -> dict[str, dict[str, Path]]:
    """Draw :func:`queue_dashboard` for every scenario of a run into ``folder``: ``{scenario: {"dashboard": png}}``."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name, figures in summary["scenarios"].items():
        rows = series[series["scenario"] == name] if "scenario" in series else series
        target = folder / f"{name}-dashboard.png"
        queue_dashboard(name, rows, figures).savefig(target, dpi=90)
        saved[name] = {"dashboard": target}
    return saved
