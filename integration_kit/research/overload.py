"""Overload over time: offered load, partner load and goodput of simulated runs, as tables and one chart.

The retry-storm guide (``notebooks/guides/retry_storm.ipynb``) compares policies on a partner with finite capacity
with these. *Offered load* is logical calls started per second (what the callers want), *partner load* is attempts
the partner received per second (retries included), *goodput* is calls that ended in success per second. A
partner is overloaded when its load stays above its capacity and the goodput collapses.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from integration_kit.events import CallFinished
from integration_kit.playbook.kinds.http.sim_figures import ScenarioFigures, scenario_figures
from integration_kit.sim.simulate import SimulationResult

__all__ = ["overload_chart", "overload_series", "overload_table"]


def overload_series(result: SimulationResult) -> pd.DataFrame:
    """Per second of the run: columns ``second``, ``offered``, ``partner``, ``goodput`` (per second)."""
    length = int(max(result.duration, len(result.server.per_second)))
    offered = [0] * length
    goodput = [0] * length
    for event in result.recorder.of(CallFinished):
        assert isinstance(event, CallFinished)
        started = int(event.time - event.duration)
        if 0 <= started < length:
            offered[started] += 1
        ended = int(event.time)
        if event.ok and 0 <= ended < length:
            goodput[ended] += 1
    partner = list(result.server.per_second[:length]) + [0] * max(0, length - len(result.server.per_second))
    return pd.DataFrame({"second": range(length), "offered": offered, "partner": partner, "goodput": goodput})


def overload_table(results: Mapping[str, SimulationResult]) -> pd.DataFrame:
    """One row per named run: success rate, attempts per call, recovery time (s), overloaded at the end."""
    rows = []
    for name, result in results.items():
        figures: ScenarioFigures = scenario_figures(result)
        rows.append(
            {
                "policy": name,
                "calls": figures.calls,
                "success rate": round(figures.success_rate, 3),
                "partner load per call": round(figures.partner_load, 2),
                "recovery (s after the trigger)": figures.recovery_time,
                "overloaded at the end": figures.overloaded_at_end,
            }
        )
    return pd.DataFrame(rows).set_index("policy")


def overload_chart(results: Mapping[str, SimulationResult], *, smooth: int = 5) -> Figure:
    """One panel per run: offered load, partner load and goodput per second (a ``smooth``-second rolling mean),
    with the partner's capacity as a dashed line and the scenario's phases shaded."""
    fig = Figure(figsize=(11, 3.2 * len(results)), layout="constrained")
    axes = fig.subplots(len(results), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, result) in zip(axes, results.items(), strict=True):
        _panel(ax, name, result, smooth)
    axes[-1].set_xlabel("seconds")
    return fig


def _panel(ax: Axes, name: str, result: SimulationResult, smooth: int) -> None:
    data = overload_series(result).set_index("second").rolling(smooth, min_periods=1).mean()
    ax.plot(data.index, data["offered"], label="offered load (calls/s)")
    ax.plot(data.index, data["partner"], label="partner load (attempts/s)")
    ax.plot(data.index, data["goodput"], label="goodput (successful calls/s)")
    scenario = result.scenario
    start = 0.0
    capacity_x: list[float] = []
    capacity_y: list[float] = []
    for i, phase in enumerate(scenario.phases):
        end = start + phase.duration
        if i % 2:
            ax.axvspan(start, end, color="0.92", zorder=0)
        wide = phase.duration >= 0.15 * scenario.duration  # a short phase is named inside its band, upright
        ax.text(
            (start + end) / 2,
            1.0 if wide else 0.97,
            phase.name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom" if wide else "top",
            rotation=0 if wide else 90,
            fontsize="small",
        )
        capacity = scenario.capacity_at(start)
        if capacity is not None and capacity.rate is not None:
            capacity_x += [start, end]
            capacity_y += [capacity.rate, capacity.rate]
        start = end
    if capacity_x:
        ax.plot(capacity_x, capacity_y, "k--", linewidth=1, label="partner capacity (requests/s)")
    ax.set_ylabel("per second")
    ax.set_title(name, loc="left", pad=14)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
