"""Charts of recorded events: latency percentiles, attempts per call, breaker state, outcomes and load amplification.

Every chart reads an events DataFrame with :data:`~integration_kit.events.FRAME_COLUMNS` (``Recorder.to_frame()``,
the same for simulated and live runs) and, for load, optionally the partner's own count of the attempts it
received (``ServerView.to_frame()``: columns ``second`` and ``received``). Each chart comes in two halves:

- a pure function that computes the plotted numbers as a DataFrame, in
  :mod:`~integration_kit.playbook.kinds.http.series` (:func:`latency_percentiles`, :func:`attempts_distribution`,
  :func:`breaker_states`, :func:`outcome_counts`, :func:`load_series`, :func:`amplification_series`, importable
  from here too), so the numbers can be tested and tabulated;
- a function that draws them and returns a :class:`matplotlib.figure.Figure` (:func:`latency_over_time`,
  :func:`attempts_per_call`, :func:`breaker_timeline`, :func:`outcome_rates`, :func:`upstream_load`,
  :func:`load_amplification`, and all of them at once in :func:`dashboard`). Pass ``ax`` to draw on an existing
  Axes instead; :func:`save` writes a PNG.

Figures are built as :class:`~matplotlib.figure.Figure` objects, never through pyplot, so charts keep no global
state, are safe to draw from several threads and need no display. An empty frame gives a valid, empty chart.

Time on the x axis is seconds since ``origin`` (default: the frame's earliest event), cut into ``bucket``-second
bins, each labelled by its start. This module imports pandas and matplotlib; ``import integration_kit`` does not
import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from integration_kit.playbook.kinds.http.figures import PhaseWindow
from integration_kit.playbook.kinds.http.series import (
    PERCENTILES,
    STATE_LEVELS,
    _events,
    _origin,
    amplification_series,
    attempts_distribution,
    breaker_states,
    latency_percentiles,
    level_of,
    load_series,
    outcome_counts,
)

__all__ = [
    "PANELS",
    "STATE_LEVELS",
    "amplification_series",
    "attempts_distribution",
    "attempts_per_call",
    "breaker_states",
    "breaker_timeline",
    "dashboard",
    "latency_over_time",
    "latency_percentiles",
    "load_amplification",
    "load_series",
    "outcome_counts",
    "outcome_rates",
    "save",
    "save_dashboard",
    "upstream_load",
]

_OUTCOMES: tuple[tuple[str, str], ...] = (("success", "tab:green"), ("error", "tab:red"), ("rejected", "tab:gray"))
_FIGSIZE = (8.0, 4.5)
#: The size of breaker-state labels (points); a character is about 0.6 of it wide.
_LABEL_POINTS = 7


# -- the figures ---------------------------------------------------------------------------------------------------


def latency_over_time(
    frame: pd.DataFrame,
    bucket: float = 1.0,
    *,
    origin: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    phases: Sequence[PhaseWindow] | None = None,
) -> Figure:
    """Latency p50, p95 and p99 of completed calls per time bucket (three lines; see :func:`latency_percentiles`
    with ``completed_only``), and calls rejected before reaching the partner per second as their own series on a
    second y axis (gray), so an outage shows as rejections, not as the fastest time of the run."""
    events = _events(frame)
    base = _origin(events, origin)
    data = _trim(latency_percentiles(events, bucket, origin=base, completed_only=True), events, base, bucket)
    rejected = _trim(outcome_counts(events, bucket, origin=base), events, base, bucket)
    fig, ax = _canvas(ax)
    for column, _ in PERCENTILES:
        ax.plot(data["start"], data[column], marker=".", markersize=3, label=f"{column} (completed calls)")
    if rejected["rejected"].any():
        other = ax.twinx()
        other.fill_between(
            rejected["start"], rejected["rejected"] / bucket, step="post", color="tab:gray", alpha=0.3, linewidth=0
        )
        other.plot(rejected["start"], rejected["rejected"] / bucket, color="tab:gray", drawstyle="steps-post")
        other.set_ylabel("rejected calls per second", color="tab:gray")
        other.set_ylim(bottom=0)
        ax.plot([], [], color="tab:gray", label="rejected calls/s (right axis)")
    _shade(ax, phases, base)
    _decorate(ax, title or "Latency of completed calls", "seconds", empty=data.empty)
    return fig


def attempts_per_call(frame: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """A bar chart of how many logical calls made each number of attempts (see :func:`attempts_distribution`)."""
    data = attempts_distribution(frame)
    fig, ax = _canvas(ax)
    bars = ax.bar(data["attempts"], data["calls"], color="tab:blue")
    ax.bar_label(bars, fontsize=8)
    ax.set_xticks(list(data["attempts"]))
    _decorate(ax, title or "Attempts per call", "calls", xlabel="attempts", empty=data.empty, legend=False)
    return fig


def breaker_timeline(
    frame: pd.DataFrame,
    *,
    origin: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    phases: Sequence[PhaseWindow] | None = None,
) -> Figure:
    """The breaker's state over time as a step line per breaker, each transition marked and labelled by its reason.

    The line starts at ``origin`` in the first transition's old state and runs to the frame's last event; the
    x axis always spans the run, also when there was no transition. A reason is written only where it has room:
    one that would overlap the previous label at the same height is left out (its transition is still marked).
    """
    events = _events(frame)
    base = _origin(events, origin)
    data = breaker_states(events, origin=base)
    end = float(events["time"].max()) - base if not events.empty else 0.0
    fig, ax = _canvas(ax)
    span = max(end, float(data["time"].max()) if not data.empty else 0.0, 1.0)
    width = fig.get_figwidth() * ax.get_position().width * 72  # points
    fit = max(20.0, width / (_LABEL_POINTS * 0.6))  # characters of a label that fit across the axes
    for name, rows in data.groupby("breaker", sort=False):
        times = [0.0, *rows["time"], max(end, float(rows["time"].iloc[-1]))]
        levels = [level_of(rows["old"].iloc[0]), *rows["level"], int(rows["level"].iloc[-1])]
        ax.step(times, levels, where="post", label=str(name))
        ax.scatter(rows["time"], rows["level"], s=18, zorder=3)
        free_from: dict[int, float] = {}  # per height, where the last label ends (data units)
        for time, level, reason in zip(rows["time"], rows["level"], rows["reason"], strict=True):
            if time < free_from.get(level, -math.inf):
                continue
            ax.annotate(reason, (time, level), xytext=(3, 4), textcoords="offset points", fontsize=_LABEL_POINTS)
            free_from[level] = time + span * (len(reason) + 2) / fit
    ax.set_xlim(0.0, span)
    shown = sorted({"closed", "half_open", "open", *data["old"], *data["new"]}, key=level_of)
    ax.set_yticks([level_of(state) for state in shown], shown)
    ax.set_ylim(min(level_of(s) for s in shown) - 0.5, max(level_of(s) for s in shown) + 1.0)
    _shade(ax, phases, base)
    _decorate(ax, title or "Circuit breaker state", "state", empty=data.empty, empty_text="no breaker transitions")
    return fig


def outcome_rates(
    frame: pd.DataFrame,
    bucket: float = 1.0,
    *,
    origin: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    phases: Sequence[PhaseWindow] | None = None,
) -> Figure:
    """Calls per second that succeeded, failed and were rejected, per time bucket (three lines; see
    :func:`outcome_counts`)."""
    events = _events(frame)
    base = _origin(events, origin)
    data = _trim(outcome_counts(events, bucket, origin=base), events, base, bucket)
    fig, ax = _canvas(ax)
    for column, color in _OUTCOMES:
        ax.plot(data["start"], data[column] / bucket, color=color, label=column)
    _shade(ax, phases, base)
    _decorate(ax, title or "Call outcomes", "calls per second", empty=data.empty)
    return fig


def upstream_load(
    frame: pd.DataFrame,
    server_frame: pd.DataFrame | None = None,
    bucket: float = 1.0,
    *,
    origin: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    phases: Sequence[PhaseWindow] | None = None,
) -> Figure:
    """Logical calls started and attempts sent per second, and attempts received when ``server_frame`` is given
    (two or three lines; see :func:`load_series`); when the run recorded the partner's quota (``quota_seen``
    events of a paced client), its remaining requests on a second y axis."""
    events = _events(frame)
    base = _origin(events, origin)
    data = _trim(load_series(events, server_frame, bucket, origin=base), events, base, bucket)
    fig, ax = _canvas(ax)
    labels = {"calls": "calls started", "sent": "attempts sent", "received": "attempts received"}
    for column in data.columns[1:]:
        ax.plot(data["start"], data[column] / bucket, label=labels[column])
    quota = events[events["event"] == "quota_seen"]
    if not quota.empty and "remaining" in quota and quota["remaining"].notna().any():
        other = ax.twinx()  # the partner's quota as its headers report it (client-side pacing, docs/signals.md)
        other.plot(quota["time"] - base, quota["remaining"], color="tab:purple", drawstyle="steps-post", linewidth=1)
        other.set_ylabel("quota remaining (partner's headers)", color="tab:purple")
        other.set_ylim(bottom=0)
        ax.plot([], [], color="tab:purple", label="quota remaining (right axis)")
    _shade(ax, phases, base)
    _decorate(ax, title or "Upstream load", "per second", empty=data.empty)
    return fig


def load_amplification(
    frame: pd.DataFrame,
    server_frame: pd.DataFrame | None = None,
    bucket: float = 1.0,
    *,
    origin: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    phases: Sequence[PhaseWindow] | None = None,
) -> Figure:
    """Upstream attempts per logical call over time, with the 1.0 line of no retries (two lines; see
    :func:`amplification_series`). The legend gives the whole run's figure."""
    events = _events(frame)
    base = _origin(events, origin)
    data = amplification_series(events, server_frame, bucket, origin=base)
    fig, ax = _canvas(ax)
    calls = int(data["calls"].sum())
    overall = f"{int(data['attempts'].sum()) / calls:.2f}" if calls else "n/a"
    ax.plot(data["start"], data["amplification"], color="tab:purple", label=f"attempts per call ({overall} overall)")
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":", label="one attempt per call")
    _shade(ax, phases, base)
    _decorate(ax, title or "Load amplification", "attempts per call", empty=data.empty)
    return fig


def dashboard(
    frame: pd.DataFrame,
    server_frame: pd.DataFrame | None = None,
    *,
    bucket: float = 1.0,
    origin: float | None = None,
    title: str | None = None,
    phases: Sequence[PhaseWindow] | None = None,
) -> Figure:
    """All the charts on one 2x3 grid: latency, outcomes, breaker state; attempts per call, upstream load and
    load amplification; ``phases`` (the scenario's, from
    :func:`~integration_kit.playbook.kinds.http.figures.phase_windows`)
    are shaded and named on every time axis."""
    return _dashboard(frame, server_frame, bucket=bucket, origin=origin, title=title, phases=phases)[0]


#: The panels of :func:`dashboard` by name, in grid order (the file stems :func:`save_dashboard` writes).
PANELS: tuple[str, ...] = ("latency", "outcomes", "breaker", "attempts", "load", "amplification")


def save_dashboard(
    frame: pd.DataFrame,
    server_frame: pd.DataFrame | None,
    folder: str | Path,
    stem: str,
    *,
    bucket: float = 1.0,
    title: str | None = None,
    phases: Sequence[PhaseWindow] | None = None,
    dpi: int = 100,
) -> dict[str, Path]:
    """Draw :func:`dashboard` once and save it as ``<stem>-dashboard.png`` and each panel, cut from the same
    drawing, as ``<stem>-<panel>.png`` (:data:`PANELS`) in ``folder``; return ``{name: path}``.

    One drawing instead of seven: rendering, not computing, is what charts cost.
    """
    from PIL import Image

    fig, panels = _dashboard(frame, server_frame, bucket=bucket, title=title, phases=phases)
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # type: ignore[no-untyped-call]
    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    pixels = np.asarray(canvas.buffer_rgba())  # type: ignore[no-untyped-call]
    height, width = pixels.shape[:2]
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    saved = {"dashboard": target / f"{stem}-dashboard.png"}
    Image.fromarray(pixels).save(saved["dashboard"])
    for name, axes in panels.items():
        box = Bbox.union([b for ax in axes if (b := ax.get_tightbbox(renderer)) is not None]).padded(4)
        x0, x1 = max(0, int(box.x0)), min(width, math.ceil(box.x1))
        y0, y1 = max(0, int(height - box.y1)), min(height, math.ceil(height - box.y0))
        saved[name] = target / f"{stem}-{name}.png"
        Image.fromarray(pixels[y0:y1, x0:x1]).save(saved[name])
    return saved


def _dashboard(
    frame: pd.DataFrame,
    server_frame: pd.DataFrame | None,
    *,
    bucket: float = 1.0,
    origin: float | None = None,
    title: str | None = None,
    phases: Sequence[PhaseWindow] | None = None,
) -> tuple[Figure, dict[str, list[Axes]]]:
    """The dashboard and its panels by name (a panel with a second y axis has both)."""
    events = _events(frame)
    base = _origin(events, origin)
    fig = Figure(figsize=(18.0, 10.0), layout="constrained")
    grid: Any = fig.subplots(2, 3, squeeze=False)  # a numpy array of Axes
    latency_over_time(events, bucket, origin=base, ax=grid[0][0], phases=phases)
    outcome_rates(events, bucket, origin=base, ax=grid[0][1], phases=phases)
    breaker_timeline(events, origin=base, ax=grid[0][2], phases=phases)
    attempts_per_call(events, ax=grid[1][0])
    upstream_load(events, server_frame, bucket, origin=base, ax=grid[1][1], phases=phases)
    load_amplification(events, server_frame, bucket, origin=base, ax=grid[1][2], phases=phases)
    fig.suptitle(title or "Integration dashboard")
    cells = [grid[0][0], grid[0][1], grid[0][2], grid[1][0], grid[1][1], grid[1][2]]
    twins = {id(cell): [cell] for cell in cells}
    for ax in fig.axes:
        if id(ax) not in twins:  # a second y axis shares its x axis with one of the grid's cells
            owner = next(cell for cell in cells if ax.get_shared_x_axes().joined(ax, cell))
            twins[id(owner)].append(ax)
    return fig, {name: twins[id(cell)] for name, cell in zip(PANELS, cells, strict=True)}


def save(fig: Figure, path: str | Path, *, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG to ``path`` (its folder is created if needed) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png", dpi=dpi)
    return target


# -- helpers -------------------------------------------------------------------------------------------------------


def _trim(table: pd.DataFrame, events: pd.DataFrame, origin: float, bucket: float) -> pd.DataFrame:
    """``table`` without the buckets that end after the last call started: once arrivals stop, only the calls
    still in flight end there, and a partial last bin would be drawn as a collapse."""
    called = events[events["call_id"].fillna(0).astype("int64") > 0]
    if table.empty or called.empty:
        return table
    last_start = float(called.groupby(["integration", "call_id"], sort=False)["time"].min().max()) - origin
    return table[table["start"] + bucket <= last_start + 1e-9].reset_index(drop=True)


def _shade(ax: Axes, phases: Sequence[PhaseWindow] | None, origin: float) -> None:
    """Shade the scenario's bad phases (degraded: amber, outage: red) and name every phase at the top."""
    if not phases:
        return
    top = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for phase in phases:
        start, end = phase.start - origin, phase.end - origin
        if phase.bad:
            colour = "tab:red" if phase.kind == "outage" else "tab:orange"
            ax.axvspan(start, end, color=colour, alpha=0.12, linewidth=0, zorder=0)
        elif phase.index:
            ax.axvline(start, color="gray", linewidth=0.6, linestyle="--", zorder=0)
        ax.text(
            (start + end) / 2,
            1.0,
            phase.label,
            transform=top,
            ha="center",
            va="bottom",
            fontsize=7,
            color="dimgray",
            clip_on=False,
        )


def _canvas(ax: Axes | None) -> tuple[Figure, Axes]:
    """The Axes to draw on and its figure: a new pyplot-free figure when no Axes is given."""
    if ax is not None:
        figure = ax.get_figure(root=True)
        if figure is None:
            raise ValueError("ax must belong to a figure")
        return figure, ax
    fig = Figure(figsize=_FIGSIZE, layout="constrained")
    return fig, fig.add_subplot()


def _decorate(
    ax: Axes,
    title: str,
    ylabel: str,
    *,
    xlabel: str = "time (s)",
    empty: bool,
    empty_text: str = "no data",
    legend: bool = True,
) -> None:
    """Title, axis labels, grid and legend; a note in the middle when there was nothing to plot."""
    ax.set_title(title, pad=14)  # room for the phase names above the plot
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend and (handles := ax.get_legend_handles_labels()[0]):
        # below the axes, never over the data
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(len(handles), 3), frameon=False)
    if empty:
        ax.text(0.5, 0.5, empty_text, transform=ax.transAxes, ha="center", va="center", color="gray")
