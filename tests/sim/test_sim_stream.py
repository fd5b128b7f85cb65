"""EventStream: a simulation's events streamed to CSV files in chunks, with the same summary as in memory."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from integration_kit.events import AttemptStarted, CallFinished
from integration_kit.sim.scenarios import load_scenario
from integration_kit.sim.simulate import simulate
from integration_kit.sim.stream import EventStream


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_a_streamed_run_writes_every_event_and_summarises_as_in_memory(tmp_path: Path) -> None:
    scenario = load_scenario("outage-and-recovery")
    kept = simulate(scenario, rate=50, duration=120, seed=3)
    with EventStream(tmp_path, chunk=997) as stream:
        streamed = simulate(scenario, rate=50, duration=120, seed=3, recorder=stream)
        assert streamed.summary == kept.summary
        assert len(stream) == len(kept.recorder)
    written = {path.name: _rows(path) for path in tmp_path.glob("events-*.csv")}
    assert sum(len(rows) - 1 for rows in written.values()) == len(kept.recorder)  # one header line per file
    started = written["events-attempt_started.csv"]
    assert started[0] == ["time", "integration", "call_id", "attempt", "method", "target", "timeout", "idempotency_key"]
    assert len(started) - 1 == len(kept.recorder.of(AttemptStarted))
    finished = written["events-call_finished.csv"]
    assert [float(r[-1]) for r in finished[1:]] == [e.duration for e in kept.recorder.of(CallFinished)]


def test_an_event_stream_holds_no_events_to_read(tmp_path: Path) -> None:
    stream = EventStream(tmp_path / "run", chunk=10)
    result = simulate(load_scenario("steady"), rate=20, duration=5, seed=1, recorder=stream)
    stream.close()
    with pytest.raises(TypeError, match="CSV files"):
        result.to_frame()
    with pytest.raises(TypeError, match="CSV files"):
        stream.of(CallFinished)
    assert result.summary.calls == result.calls_started


def test_a_chunk_must_hold_an_event(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk"):
        EventStream(tmp_path, chunk=0)
