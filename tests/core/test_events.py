"""Events, the Recorder, summaries and the logging hook."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading

import pytest

from integration_kit.events import (
    FRAME_COLUMNS,
    AttemptFinished,
    AttemptStarted,
    BreakerTransition,
    BudgetDepleted,
    CallFinished,
    LoggingHook,
    Recorder,
    RejectedCall,
    RetryScheduled,
    percentile,
)


def sample_events() -> list[object]:
    return [
        AttemptStarted(0.0, "p", 1, 1, "GET", "https://x/a", 5.0, None),
        AttemptFinished(0.1, "p", 1, 1, "GET", "https://x/a", "status", 503, 0.1, "transient"),
        RetryScheduled(0.1, "p", 1, 1, 0.5, "backoff"),
        AttemptStarted(0.6, "p", 1, 2, "GET", "https://x/a", 4.4, None),
        AttemptFinished(0.7, "p", 1, 2, "GET", "https://x/a", "status", 200, 0.1, "success"),
        CallFinished(0.7, "p", 1, "GET", "https://x/a", True, "success", 200, 2, 0.7),
        BreakerTransition(0.8, "p", 0, "p", "closed", "open", "failure_rate"),
        RejectedCall(0.9, "p", 2, "circuit_open"),
        CallFinished(0.9, "p", 2, "GET", "https://x/a", False, "CircuitOpenError", None, 0, 0.0),
        BudgetDepleted(1.0, "p", 3, 1, 4.0),
    ]


def test_events_are_frozen_and_slotted() -> None:
    event = RejectedCall(0.0, "p", 1, "circuit_open")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.reason = "x"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


def test_summary_counts_everything() -> None:
    rec = Recorder()
    for e in sample_events():
        rec(e)  # type: ignore[arg-type]
    s = rec.summary()
    assert (s.calls, s.succeeded, s.failed, s.rejected, s.attempts, s.retries, s.budget_refusals) == (
        2,
        1,
        1,
        1,
        2,
        1,
        1,
    )
    assert s.success_rate == 0.5
    assert s.amplification == 1.0
    assert s.transitions == ("closed->open",)
    assert s.latency_p50 == pytest.approx(0.35)
    assert s.as_dict()["transitions"] == ["closed->open"]


def test_empty_summary_is_nan_not_an_error() -> None:
    s = Recorder().summary()
    assert s.calls == 0
    assert math.isnan(s.success_rate)
    assert math.isnan(s.latency_p99)


def test_percentile() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.99) == 5.0


def test_frame_has_one_row_per_event_and_fixed_columns() -> None:
    rec = Recorder()
    for e in sample_events():
        rec(e)  # type: ignore[arg-type]
    frame = rec.to_frame()
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert len(frame) == 10
    assert frame.loc[1, "status"] == 503
    assert frame.loc[6, "new"] == "open"
    assert list(Recorder().to_frame().columns) == list(FRAME_COLUMNS)


def test_recorder_bounded_and_thread_safe() -> None:
    rec = Recorder(max_events=100)
    event = RejectedCall(0.0, "p", 1, "x")

    def work() -> None:
        for _ in range(10_000):
            rec(event)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rec) == 100
    assert len(rec.of(RejectedCall)) == 100
    assert rec.of(CallFinished) == []
    assert len(list(rec)) == 100
    rec.clear()
    assert len(rec) == 0
    assert repr(rec) == "Recorder(events=0)"
    with pytest.raises(ValueError, match="max_events"):
        Recorder(max_events=0)


def test_logging_hook_one_record_per_attempt(caplog: pytest.LogCaptureFixture) -> None:
    hook = LoggingHook()
    with caplog.at_level(logging.INFO, logger="integration_kit"):
        for e in sample_events():
            hook(e)  # type: ignore[arg-type]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "p attempt 1 GET https://x/a -> 503 in 0.100s"
    assert len(messages) == 7  # no record for started attempts or scheduled retries
    assert caplog.records[0].integration_kit["status"] == 503  # type: ignore[attr-defined]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="integration_kit"):
        hook(sample_events()[1])  # type: ignore[arg-type]
    assert caplog.records == []


def test_a_recorder_builds_the_rows_it_was_handed_once() -> None:
    """The engine hands a lone recorder rows; the first read builds the events and keeps them, in order."""
    recorder = Recorder()
    recorder.append((AttemptStarted, 0.0, "p", 1, 1, "GET", "/x", None, None))
    recorder(CallFinished(1.0, "p", 1, "GET", "/x", True, "success", 200, 1, 1.0))
    recorder.append((CallFinished, 2.0, "p", 2, "GET", "/x", False, "ServerError", 503, 1, 0.5))
    first = recorder.events
    assert [type(e) for e in first] == [AttemptStarted, CallFinished, CallFinished]
    assert first[2] == CallFinished(2.0, "p", 2, "GET", "/x", False, "ServerError", 503, 1, 0.5)
    assert all(a is b for a, b in zip(first, recorder.events, strict=True))  # built once, then kept
    assert recorder.summary().calls == 2


def test_rows_give_every_event_as_a_row_without_building_any() -> None:
    recorder = Recorder()
    recorder.append((AttemptStarted, 0.0, "p", 1, 1, "GET", "/x", None, None))
    recorder(CallFinished(1.0, "p", 1, "GET", "/x", True, "success", 200, 1, 1.0))
    assert recorder.rows() == [
        (AttemptStarted, 0.0, "p", 1, 1, "GET", "/x", None, None),
        (CallFinished, 1.0, "p", 1, "GET", "/x", True, "success", 200, 1, 1.0),
    ]
