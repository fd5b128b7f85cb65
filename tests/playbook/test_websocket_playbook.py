"""The websocket kind: the bundled spec, bad specs named by field, the checklist, the simulated exercise's
figures, a live run against the flaky feed, and the whole playbook through its notebooks."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.protocol import ExerciseOptions
from integration_kit.playbook.kinds.table import load_spec, spec_checklist
from integration_kit.playbook.kinds.websocket.charts import ws_dashboard
from integration_kit.playbook.kinds.websocket.kind import WEBSOCKET
from integration_kit.playbook.kinds.websocket.spec import WebSocketSpec
from integration_kit.playbook.run.runner import run_playbook
from integration_kit.playbook.verdict.bench import BenchHealth

BUNDLED = Path(__file__).parents[2] / "data" / "integrations" / "market-prices.toml"


def bundled() -> dict[str, Any]:
    return tomllib.loads(BUNDLED.read_text())


def test_the_bundled_spec_loads_as_a_websocket_spec() -> None:
    spec = load_spec("market-prices")
    assert isinstance(spec, WebSocketSpec)
    assert spec.reconnect.first_delay == 8.0
    assert [s.name for s in spec.scenarios] == ["restart-herd", "restart-with-retry-after"]
    assert all(item.passed for item in spec_checklist(spec))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "ws://prices.example.com/x"}, "url"),
        ({"auth_env": "not a name"}, "auth_env"),
        ({"keepalive": {"ping_interval": -1}}, "keepalive.ping_interval"),
        ({"keepalive": {"stale": 5}}, "keepalive.stale"),
        ({"reconnect": {"jitter": "lots"}}, "reconnect.jitter"),
        ({"reconnect": {"first": 1}}, "reconnect.first"),
        ({"feed": {"gap_strategy": "hope"}}, "feed.gap_strategy"),
        ({"feed": {"gap_strategy": "resume", "subscribe": []}}, "feed.sequence_field"),
        ({"feed": {"sequence_field": "seq", "outgoing_limit": 0}}, "feed.outgoing_limit"),
        ({"objectives": {"latency": 1}}, "objectives.latency"),
        ({"objectives": {"messages_lost": -1}}, "objectives.messages_lost"),
        ({"scenario": []}, "scenario"),
        ({"scenario": [{"name": "x", "clients": 0}]}, "scenario[0].clients"),
        ({"scenario": [{"name": "x", "restart_at": 50, "horizon": 20}]}, "scenario[0].horizon"),
        ({"scenario": [{"name": "x", "storm": 1}]}, "scenario[0].storm"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    data = {**bundled(), **change}
    with pytest.raises(ConfigurationError) as caught:
        WebSocketSpec.from_mapping(data, source="market-prices.toml")
    assert caught.value.field == field
    assert "market-prices.toml" in str(caught.value)


def test_the_checklist_flags_missing_staleness_no_jitter_and_no_gap_strategy() -> None:
    data = bundled()
    data["keepalive"] = {"ping_interval": 20.0, "ping_timeout": 20.0}
    data["reconnect"] = {"jitter": "none"}
    data["feed"] = {"gap_strategy": "none"}
    items = {i.key: i.passed for i in WEBSOCKET.checklist(WebSocketSpec.from_mapping(data))}
    assert items == {
        "keepalive": True,
        "staleness": False,
        "reconnect": False,
        "gaps": False,
        "outgoing": True,
        "tls": True,
    }


def test_the_design_document_names_the_policy_and_hides_query_secrets() -> None:
    data = {**bundled(), "url": "wss://prices.partner.example/v1?token=canary-spec-secret"}
    document = WEBSOCKET.design_document(WebSocketSpec.from_mapping(data))
    assert "uniform(0, 8) s" in document
    assert "canary-spec-secret" not in document


def test_the_simulated_exercise_measures_the_herd(tmp_path: Path) -> None:
    spec = load_spec("market-prices")
    exercise = WEBSOCKET.exercise(spec, ExerciseOptions(scenario="restart-herd"), tmp_path)
    (run,) = exercise.runs
    assert run.figures["messages_lost"] == 0
    assert 100 <= run.figures["peak_handshakes"] <= 300
    judged = exercise.summary()["scenarios"]["restart-herd"]
    assert "peak_handshakes" in {o["figure"] for o in judged["objectives"]}  # simulate mode judges the peak
    assert judged["information"] == []
    assert run.figures["stall_detect"] == 5.0
    no_resume = WebSocketSpec.from_mapping({**bundled(), "feed": {"gap_strategy": "none"}})
    (lossy,) = WEBSOCKET.exercise(no_resume, ExerciseOptions(scenario="restart-herd"), tmp_path).runs
    assert lossy.figures["messages_lost"] > 0


@pytest.mark.timeout(120)
def test_a_live_run_against_the_flaky_feed(tmp_path: Path) -> None:
    spec = load_spec("market-prices")
    options = ExerciseOptions(mode="live", scenario="restart-herd", duration=30)
    exercise = WEBSOCKET.exercise(spec, options, tmp_path)
    (run,) = exercise.runs
    assert run.figures["messages_lost"] == 0
    assert run.figures["duplicates_delivered"] == 0
    assert 4.0 <= run.figures["stall_detect"] <= 6.0  # the 5 s staleness timeout, in scenario seconds
    assert run.details["gave_up"] == 0
    # 20 live clients cannot measure the busiest second of 1,000: the peak is reported, scaled, and not judged
    assert run.figures["peak_handshakes"] == run.details["peak_handshakes_live"] * 50
    exercise.save(tmp_path)
    verdict = WEBSOCKET.judge(spec, tmp_path)
    assert "peak_handshakes" not in {check.objective for check in verdict.checks}
    assert {check.objective for check in verdict.checks} == set(spec.objectives) - {"peak_handshakes"}
    assert f"peak_handshakes {run.figures['peak_handshakes']:g} in restart-herd (bound 300)" in verdict.load_model
    (shown,) = exercise.summary()["scenarios"]["restart-herd"]["information"]
    assert shown == {"figure": "peak_handshakes", "limit": 300, "value": run.figures["peak_handshakes"]}
    # The bench judged itself while the herd played; strained, a run that missed an objective is invalid, not failed
    health = BenchHealth.from_dict(run.details["bench"])
    assert health.time_scale == exercise.live["time_scale"]  # type: ignore[index]
    assert not math.isnan(health.cpu_busy)
    strained = dataclasses.replace(health, cpu_busy=1.0, process_cpu=1.0)
    missed = dataclasses.replace(
        run, figures={**run.figures, "messages_lost": 5.0}, details={**run.details, "bench": strained.as_dict()}
    )
    dataclasses.replace(exercise, runs=(missed,)).save(tmp_path)
    verdict = WEBSOCKET.judge(spec, tmp_path)
    assert verdict.invalid["restart-herd"].startswith("invalid run")
    assert verdict.failures == []


@pytest.mark.timeout(300)
def test_the_playbook_passes_in_simulate_mode_through_the_notebooks(tmp_path: Path) -> None:
    run = run_playbook("market-prices", out=tmp_path, run_id="r1")
    assert run.ok, run.error
    assert run.verdict is not None
    assert run.verdict.passed
    assert run.verdict.kind == "websocket"
    assert (run.out_dir / "report.html").is_file()
    assert (run.out_dir / "charts" / "restart-herd-dashboard.png").stat().st_size > 5000
    report = (run.out_dir / "report.html").read_text()
    assert "restart-herd: restart-herd-dashboard.png" in report  # lists as text, not a Python list
    assert "series.csv, summary.json" in report
    assert not re.search(r"\[(&#x27;|&#39;|&quot;|')[\w-]+\.(png|csv|json)", report)
    assert "queues)" not in report  # no stage text listing some kinds and not others
    assert "websocket, one of: http" in report  # the kinds named from the table of kinds


def test_the_gaps_and_resyncs_panel_says_none_when_there_were_none() -> None:
    figures = {"gaps": 0, "resyncs": 0, "gave_up": 0, "peak_handshakes": 100}
    panel = ws_dashboard("restart-herd", pd.DataFrame(), figures).axes[3]
    assert [t.get_text() for t in panel.texts] == ["none: no gap, no resync, no client gave up"]
    assert not panel.patches
    drawn = ws_dashboard("restart-herd", pd.DataFrame(), {**figures, "resyncs": 7}).axes[3]
    assert [p.get_height() for p in drawn.patches] == [0, 7, 0]
    assert not drawn.texts


def test_the_template_passes_check_for_any_name() -> None:
    for name in ("feed", "my-feed_2"):
        text = WEBSOCKET.templates["websocket"].replace("{name}", name)
        spec = WebSocketSpec.from_mapping(tomllib.loads(text), source=f"{name}.toml")
        assert spec.name == name
        assert all(i.passed for i in WEBSOCKET.checklist(spec))
