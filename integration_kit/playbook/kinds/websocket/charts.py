"""Charts of a WebSocket run, per scenario: the connection state timeline (clients connected), the handshake load
at the server, the message lag after the restart (time away: a resumed message is late by that much), and the gaps
and resyncs, drawn from a saved run folder (``series.csv`` and ``summary.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from integration_kit.sim.ws_herd import HerdResult

__all__ = ["herd_chart", "save_dashboards", "ws_dashboard"]


def ws_dashboard(scenario: str, series: pd.DataFrame, figures: Mapping[str, Any]) -> Figure:
    """Four panels for one scenario (see the module docstring)."""
    figure = Figure(figsize=(11.0, 6.0), layout="constrained")
    grid = figure.subplots(2, 2)
    state, load, lag, gaps = grid[0][0], grid[0][1], grid[1][0], grid[1][1]
    if not series.empty:
        state.step(series["t"], series["connected"], where="post", color="tab:green")
        load.bar(series["t"], series["handshakes"], width=1.0, color="tab:orange")
    state.set_title("clients connected after the restart", fontsize="small")
    state.set_xlabel("seconds after the restart")
    load.set_title(
        f"handshakes per second at the server (peak {figures.get('peak_handshakes', 0):g})", fontsize="small"
    )
    load.set_xlabel("seconds after the restart")
    away = list(figures.get("disconnected", []))
    if away:
        lag.hist(away, bins=30, color="tab:blue")
    lag.set_title("message lag after the restart: time away (s)", fontsize="small")
    lag.set_xlabel("seconds")
    counts = {
        "gaps": figures.get("gaps", 0),
        "resyncs": figures.get("resyncs", 0),
        "gave up": figures.get("gave_up", 0),
    }
    if any(counts.values()):
        gaps.bar(list(counts), list(counts.values()))
    else:  # an empty axis reads as a chart that failed to draw
        gaps.set_axis_off()
        gaps.text(0.5, 0.5, "none: no gap, no resync, no client gave up", ha="center", va="center")
    gaps.set_title("gaps and resyncs (clients)", fontsize="small")
    figure.suptitle(
        f"{scenario}: {figures.get('messages_lost', 0):g} lost, {figures.get('duplicates_delivered', 0):g} twice, "
        f"p99 away {figures.get('disconnected_p99', 0):.1f} s"
    )
    return figure


def save_dashboards(summary: Mapping[str, Any], series: pd.DataFrame, folder: Path) -> dict[str, dict[str, Path]]:
    """Draw :func:`ws_dashboard` for every scenario of a run into ``folder``: ``{scenario: {"dashboard": png}}``."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name, figures in summary["scenarios"].items():
        rows = series[series["scenario"] == name] if "scenario" in series else series
        target = folder / f"{name}-dashboard.png"
        ws_dashboard(name, rows, figures).savefig(target, dpi=90)
        saved[name] = {"dashboard": target}
    return saved


def herd_chart(results: Mapping[str, HerdResult], seconds: int = 40) -> Figure:
    """Handshakes per second at the server after a restart, one line per strategy (the first ``seconds``), and
    each strategy's time away (p50 and p99) beside it."""
    figure = Figure(figsize=(11.0, 4.0), layout="constrained")
    load, away = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    for name, result in results.items():
        shown = result.per_second[:seconds]
        load.step(range(len(shown)), shown, where="post", label=f"{name} (peak {result.peak})")
    load.set_xlabel("seconds after the restart")
    load.set_ylabel("handshakes per second")
    load.legend(loc="upper right", fontsize="small")
    names = list(results)
    p50 = [results[n].down_quantile(0.5) for n in names]
    p99 = [results[n].down_quantile(0.99) for n in names]
    positions = range(len(names))
    away.barh([p - 0.2 for p in positions], p50, height=0.4, label="p50")
    away.barh([p + 0.2 for p in positions], p99, height=0.4, label="p99")
    away.set_yticks(list(positions), [n.split(" (")[0] for n in names], fontsize="small")
    away.set_xlabel("time away (s)")
    away.legend(fontsize="small")
    return figure
