"""Charts: the plotted numbers are right, and every figure draws, saves and survives an empty frame."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from integration_kit.events import FRAME_COLUMNS
from integration_kit.playbook.kinds.http import charts
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, RetryPolicy
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.simulate import SimulationResult, simulate

#: Healthy, a short outage, healthy again: enough to trip a breaker, probe it and close it in 20 s of virtual time.
OUTAGE = Scenario.from_mapping(
    {
        "name": "short-outage",
        "phases": [
            {"name": "healthy", "duration": 5, "latency": {"kind": "uniform", "low": 0.01, "high": 0.2}},
            {"name": "outage", "duration": 5, "latency": 0.01, "errors": {"503": 0.9, "refused": 0.1}},
            {"name": "healthy again", "duration": 10, "latency": {"kind": "uniform", "low": 0.01, "high": 0.2}},
        ],
    }
)


@pytest.fixture(scope="module")
def run() -> SimulationResult:
    return simulate(
        OUTAGE,
        rate=40,
        seed=7,
        retry=RetryPolicy(max_attempts=3, base_delay=0.05),
        breaker=BreakerPolicy(window_size=20, minimum_calls=10, wait_in_open=2.0, half_open_max_calls=2),
        budget=BudgetPolicy(max_tokens=50, token_ratio=0.5),
    )


@pytest.fixture(scope="module")
def frame(run: SimulationResult) -> pd.DataFrame:
    return run.to_frame()


def test_the_run_has_something_to_chart(run: SimulationResult) -> None:
    summary = run.summary
    assert run.in_flight == 0
    assert summary.retries > 0
    assert summary.rejected > 0
    assert summary.succeeded > 0
    assert ("closed", "open") in run.transition_pairs
    assert run.transition_pairs[-1] == ("half_open", "closed")


def test_latency_percentiles_are_monotone_and_match_numpy(frame: pd.DataFrame) -> None:
    table = charts.latency_percentiles(frame, bucket=2.0)
    assert list(table.columns) == ["start", "calls", "p50", "p95", "p99"]
    assert (table["p50"] <= table["p95"]).all()
    assert (table["p95"] <= table["p99"]).all()
    finished = frame[frame["event"] == "call_finished"]
    assert table["calls"].sum() == len(finished)
    for row in table.itertuples():
        in_bucket = finished[(finished["time"] >= row.start) & (finished["time"] < row.start + 2.0)]
        expected = np.percentile(in_bucket["duration"].to_numpy(dtype=float), [50, 95, 99])
        assert [row.p50, row.p95, row.p99] == pytest.approx(expected)
    assert table["start"].tolist() == sorted(table["start"])
    assert table["start"].iloc[0] == 0.0


def test_whole_run_percentiles_agree_with_the_summary(run: SimulationResult, frame: pd.DataFrame) -> None:
    table = charts.latency_percentiles(frame, bucket=1000.0)
    assert len(table) == 1
    summary = run.summary
    assert table.loc[0, "p99"] == pytest.approx(summary.latency_p99)
    assert table.loc[0, "p50"] == pytest.approx(summary.latency_p50)


def test_attempts_distribution_counts_every_call(run: SimulationResult, frame: pd.DataFrame) -> None:
    table = charts.attempts_distribution(frame)
    assert table["calls"].sum() == run.summary.calls
    assert (table["attempts"] * table["calls"]).sum() == run.summary.attempts
    assert table["attempts"].tolist() == list(range(table["attempts"].min(), table["attempts"].max() + 1))
    assert table.loc[table["attempts"] == 0, "calls"].item() > 0  # calls rejected by the open breaker


def test_breaker_states_are_the_runs_transitions_in_order(run: SimulationResult, frame: pd.DataFrame) -> None:
    table = charts.breaker_states(frame, origin=0.0)
    assert list(zip(table["old"], table["new"], strict=True)) == run.transition_pairs
    assert table["time"].tolist() == pytest.approx([t.time for t in run.transitions])
    assert table["reason"].tolist() == [t.reason for t in run.transitions]
    assert table["level"].tolist() == [charts.STATE_LEVELS[new] for new in table["new"]]


def test_outcome_counts_add_up_to_the_summary(run: SimulationResult, frame: pd.DataFrame) -> None:
    table = charts.outcome_counts(frame)
    summary = run.summary
    assert table["success"].sum() == summary.succeeded
    assert table["rejected"].sum() + table["error"].sum() == summary.failed
    assert table["rejected"].sum() == frame.loc[frame["event"] == "call_rejected", "call_id"].nunique()


def test_amplification_is_attempts_over_calls(run: SimulationResult, frame: pd.DataFrame) -> None:
    table = charts.amplification_series(frame, bucket=2.0)
    summary = run.summary
    assert table["attempts"].sum() == summary.attempts
    assert table["calls"].sum() == summary.calls
    assert table["attempts"].sum() / table["calls"].sum() == pytest.approx(summary.amplification)
    with_calls = table[table["calls"] > 0]
    assert with_calls["amplification"].tolist() == pytest.approx(
        (with_calls["attempts"] / with_calls["calls"]).tolist()
    )


def test_the_server_frame_counts_what_the_partner_received(run: SimulationResult, frame: pd.DataFrame) -> None:
    server = run.server.to_frame()
    load = charts.load_series(frame, server, bucket=5.0)
    assert list(load.columns) == ["start", "calls", "sent", "received"]
    assert load["received"].sum() == run.server.received
    assert load["sent"].sum() == run.summary.attempts
    assert (load["received"] <= load["sent"]).all()  # refused connections are sent but never received
    assert np.diff(load["start"]).tolist() == pytest.approx([5.0] * (len(load) - 1))  # no bucket left out
    table = charts.amplification_series(frame, server, bucket=5.0)
    assert table["attempts"].tolist() == load["received"].tolist()
    with pytest.raises(ValueError, match="whole number"):
        charts.load_series(frame, server, bucket=0.5)


@pytest.mark.parametrize("bucket", [0, -1.0, math.inf, math.nan])
def test_a_bucket_must_be_positive_and_finite(frame: pd.DataFrame, bucket: float) -> None:
    with pytest.raises(ValueError, match="bucket"):
        charts.latency_percentiles(frame, bucket)


def test_origin_shifts_the_time_axis(frame: pd.DataFrame) -> None:
    shifted = frame.assign(time=frame["time"] + 1000.0)
    assert charts.breaker_states(shifted)["time"].tolist() == pytest.approx(
        charts.breaker_states(frame, origin=0.0)["time"].tolist()
    )


#: Each figure function, called on a frame (and the server frame where it takes one), and its lines when drawn.
FIGURES: dict[str, tuple[Callable[[pd.DataFrame, Any], Figure], int]] = {
    "latency_over_time": (lambda f, s: charts.latency_over_time(f), 4),  # p50, p95, p99, the rejected key
    "attempts_per_call": (lambda f, s: charts.attempts_per_call(f), 0),
    "breaker_timeline": (lambda f, s: charts.breaker_timeline(f), 1),
    "outcome_rates": (lambda f, s: charts.outcome_rates(f), 3),
    "upstream_load": (charts.upstream_load, 3),
    "load_amplification": (charts.load_amplification, 2),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_draws_and_saves(name: str, run: SimulationResult, frame: pd.DataFrame, tmp_path: Path) -> None:
    draw, lines = FIGURES[name]
    fig = draw(frame, run.server.to_frame())
    assert isinstance(fig, Figure)
    ax = fig.axes[0]  # latency draws its rejected calls on a second y axis
    assert len(ax.get_lines()) == lines
    assert ax.get_title()
    path = charts.save(fig, tmp_path / "out" / f"{name}.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert path.stat().st_size > 1000


def test_breaker_timeline_marks_and_labels_each_transition(run: SimulationResult, frame: pd.DataFrame) -> None:
    fig = charts.breaker_timeline(frame)
    (ax,) = fig.axes
    (line,) = ax.get_lines()
    assert list(line.get_ydata()[1:-1]) == [charts.STATE_LEVELS[new] for _, new in run.transition_pairs]
    labels = [text.get_text() for text in ax.texts]
    reasons = iter(t.reason for t in run.transitions)
    assert labels[0] == run.transitions[0].reason
    assert all(label in reasons for label in labels)  # a subset, in order: crowded labels are left out
    assert len(ax.collections[0].get_offsets()) == len(run.transitions)  # every transition is still marked


def test_a_figure_can_be_drawn_on_a_given_axes(frame: pd.DataFrame) -> None:
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert charts.outcome_rates(frame, ax=right, title="mine") is fig
    assert right.get_title() == "mine"
    assert not left.get_lines()


def test_the_dashboard_has_every_chart(run: SimulationResult, frame: pd.DataFrame, tmp_path: Path) -> None:
    fig = charts.dashboard(frame, run.server.to_frame(), bucket=2.0, title="short outage")
    titles = {ax.get_title() for ax in fig.axes} - {""}  # the latency chart's second y axis has no title
    assert len(titles) == 6
    assert {"Latency of completed calls", "Circuit breaker state", "Load amplification", "Attempts per call"} <= titles
    assert charts.save(fig, tmp_path / "dashboard.png").stat().st_size > 1000


@pytest.mark.parametrize("empty", [pd.DataFrame(columns=list(FRAME_COLUMNS)), pd.DataFrame()], ids=["columns", "bare"])
def test_an_empty_frame_gives_empty_valid_figures(empty: pd.DataFrame, tmp_path: Path) -> None:
    for name, (draw, _) in FIGURES.items():
        fig = draw(empty, None)
        (ax,) = fig.axes
        assert ax.get_title(), name  # titled and labelled like a full one ...
        # ... with no data drawn (reference lines such as axhline live in axes coordinates, not data ones)
        drawn = [line for line in ax.get_lines() if line.get_transform() == ax.transData and len(line.get_xdata())]
        assert drawn == [], name
    # the dashboard draws every chart again: saving it renders each of them empty
    assert charts.save(charts.dashboard(empty), tmp_path / "dashboard.png").stat().st_size > 0
    assert charts.latency_percentiles(empty).empty
    assert charts.attempts_distribution(empty).empty
    assert charts.breaker_states(empty).empty
    assert charts.outcome_counts(empty).empty
    assert charts.amplification_series(empty).empty


def test_phases_are_shaded_and_named_on_every_time_axis(run: SimulationResult, frame: pd.DataFrame) -> None:
    from integration_kit.playbook.kinds.http.figures import phase_windows

    phases = phase_windows(OUTAGE)
    fig = charts.dashboard(frame, run.server.to_frame(), phases=phases)
    timed = [ax for ax in fig.axes if ax.get_xlabel() == "time (s)"]
    assert len(timed) == 5
    for ax in timed:
        assert {"healthy", "outage", "healthy again"} <= {text.get_text() for text in ax.texts}
        shaded = [p for p in ax.patches if p.get_x() == pytest.approx(5.0)]  # the outage, from 5 s to 10 s
        assert shaded


def test_latency_leaves_out_rejected_calls_and_shows_them_apart(frame: pd.DataFrame) -> None:
    everything = charts.latency_percentiles(frame, 20.0)
    completed = charts.latency_percentiles(frame, 20.0, completed_only=True)
    rejected = frame.loc[frame["event"] == "call_rejected", "call_id"].nunique()
    assert everything["calls"].sum() - completed["calls"].sum() == rejected
    assert completed["p50"].iloc[0] > everything["p50"].iloc[0]  # rejected calls took no time
    fig = charts.latency_over_time(frame)
    main, other = fig.axes
    assert other.get_ylabel() == "rejected calls per second"
    assert "rejected calls/s (right axis)" in [t.get_text() for t in main.get_legend().get_texts()]


def test_the_last_partial_bin_is_not_drawn(frame: pd.DataFrame) -> None:
    last_start = frame.groupby("call_id")["time"].min().max()
    fig = charts.outcome_rates(frame, bucket=3.0)
    (success, _, _) = fig.axes[0].get_lines()
    assert max(success.get_xdata()) + 3.0 <= last_start  # the drain after the last arrival is not a collapse
    assert charts.outcome_counts(frame, bucket=3.0)["start"].max() + 3.0 > last_start  # the numbers keep it


def test_legends_sit_below_the_axes(frame: pd.DataFrame) -> None:
    fig = charts.outcome_rates(frame)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().y1 < ax.get_window_extent().y0


def test_breaker_labels_do_not_overlap(tmp_path: Path) -> None:
    rows = [
        {
            "event": "breaker_transition",
            "time": t,
            "integration": "x",
            "call_id": 0,
            "breaker": "x",
            "old": old,
            "new": new,
            "reason": reason,
        }
        for i in range(40)
        for t, old, new, reason in (
            (i * 5.0, "closed" if i == 0 else "half_open", "open", "failure_rate 0.50 >= 0.50"),
            (i * 5.0 + 2, "open", "half_open", "wait_elapsed"),
        )
    ]
    fig = charts.breaker_timeline(pd.DataFrame(rows, columns=list(FRAME_COLUMNS)))
    ax = fig.axes[0]
    fig.canvas.draw()
    boxes = [text.get_window_extent() for text in ax.texts]
    assert 2 <= len(boxes) < 80
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)


def test_an_empty_breaker_panel_spans_the_run(frame: pd.DataFrame) -> None:
    quiet = frame[frame["event"] != "breaker_transition"]
    ax = charts.breaker_timeline(quiet).axes[0]
    assert ax.get_xlim() == pytest.approx((0.0, float(quiet["time"].max() - quiet["time"].min())))


def test_save_dashboard_cuts_every_panel_from_one_drawing(
    run: SimulationResult, frame: pd.DataFrame, tmp_path: Path
) -> None:
    from PIL import Image

    saved = charts.save_dashboard(frame, run.server.to_frame(), tmp_path, "short")
    assert set(saved) == {"dashboard", *charts.PANELS}
    full = Image.open(saved["dashboard"]).size
    assert full == (1800, 1000)
    for name in charts.PANELS:
        width, height = Image.open(saved[name]).size
        assert 300 < width < full[0] / 2  # one panel of three across, with its labels and legend
        assert 250 < height < full[1] / 1.5
