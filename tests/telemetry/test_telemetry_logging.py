"""LoggingHook's structured mode: one JSON object per event with stable names, on stdlib logging and structlog."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
import structlog
from builders import client_config
from scripted_upstream import Reply, Upstream

from integration_kit import ManualClock, ResilientClient
from integration_kit.events import LoggingHook

SEQUENCE = [
    "attempt_started",
    "attempt_finished",
    "retry_scheduled",
    "attempt_started",
    "attempt_finished",
    "call_finished",
]


config = client_config


def run(upstream: Upstream, hook: Any) -> None:
    upstream.script(Reply(503), Reply(200))
    with ResilientClient(config(upstream.base_url), clock=ManualClock(), hooks=[hook]) as client:
        client.get("/orders")


def test_stdlib_logging_gets_one_json_object_per_event(upstream: Upstream, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("integration_kit.test.structured")
    with caplog.at_level(logging.INFO, logger=logger.name):
        run(upstream, LoggingHook(logger, structured=True))
    rows = [json.loads(r.getMessage()) for r in caplog.records if r.name == logger.name]
    assert [r["event"] for r in rows] == SEQUENCE
    assert {r["integration"] for r in rows} == {"partner"}
    assert len({r["call_id"] for r in rows}) == 1
    finished = rows[1]
    assert (finished["attempt"], finished["status"], finished["verdict"]) == (1, 503, "transient")
    assert rows[2]["delay"] == pytest.approx(0.1)
    assert rows[-1]["ok"] is True
    assert caplog.records[0].integration_kit["event"] == "attempt_started"  # the same fields, for formatters


def test_a_disabled_level_costs_no_formatting(upstream: Upstream, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("integration_kit.test.quiet")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        run(upstream, LoggingHook(logger, structured=True))
    assert [r for r in caplog.records if r.name == logger.name] == []


def test_structlog_renders_the_events_with_its_processors(upstream: Upstream) -> None:
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    ).bind(service="checkout")
    run(upstream, LoggingHook(logger))  # a structlog logger always gets the structured form
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in rows] == SEQUENCE
    assert {(r["integration"], r["service"], r["level"]) for r in rows} == {("partner", "checkout", "info")}
    assert rows[1]["status"] == 503


def test_structlog_capture_logs(upstream: Upstream) -> None:
    with structlog.testing.capture_logs() as captured:
        run(upstream, LoggingHook(structlog.get_logger(), level=logging.WARNING, structured=True))
    assert [c["event"] for c in captured] == SEQUENCE
    assert {c["log_level"] for c in captured} == {"warning"}
