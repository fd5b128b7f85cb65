"""Queue integrations in the playbook: the spec kind, its validation, checklist, objectives and simulated run."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.app import main
from integration_kit.playbook.kinds.http.spec import load_integration
from integration_kit.playbook.kinds.protocol import ExerciseOptions
from integration_kit.playbook.kinds.queue import live as queue_live
from integration_kit.playbook.kinds.queue.exercise import LIVE_TIME_SCALE
from integration_kit.playbook.kinds.queue.kind import QUEUE
from integration_kit.playbook.kinds.queue.spec import (
    QueueSpec,
    judge,
    load_queue_spec,
    queue_checklist,
    queue_design_document,
)
from integration_kit.playbook.kinds.table import load_spec, spec_checklist
from integration_kit.playbook.project import Project
from integration_kit.playbook.run.runner import run_playbook
from integration_kit.queues.sim import QueueResult, QueueScenario, simulate_queue

BUNDLED = Project.discover().integrations / "order-events-consumer.toml"


def bundled() -> dict[str, Any]:
    return tomllib.loads(BUNDLED.read_text())


def test_the_bundled_queue_spec_loads_as_a_queue_spec() -> None:
    spec = load_spec("order-events-consumer")
    assert isinstance(spec, QueueSpec)
    assert spec.topology.name == "order-events"
    assert spec.topology.dead_letter == "order-events.dlq"
    assert spec.objectives["lost"] == 0
    assert spec.objectives["applied_twice"] == 0
    assert all(item.passed for item in spec_checklist(spec))
    assert "| dead-letter queue | order-events.dlq |" in queue_design_document(spec)


def test_a_queue_spec_is_refused_where_an_http_spec_is_needed() -> None:
    with pytest.raises(ConfigurationError, match="'order-events-consumer' is a 'queue' spec, and this needs an HTTP"):
        load_integration("order-events-consumer")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"objectives": {"lost": 3}}, "objectives.lost"),
        ({"consumer": {"prefetch": 4, "concurrency": 16}}, "consumer.prefetch"),
        ({"broker": {"kind": "kafka"}}, "broker.kind"),
        ({"scenario": [{"name": "x", "rate": -1}]}, "scenario[0]"),
        ({"scenario": [{"name": "x", "wind": 3}]}, "scenario[0].wind"),
        ({"queue": {"name": "order events"}}, "queue"),
        ({"objectives": {"latncy_p99": 10}}, "objectives.latncy_p99"),
        ({"queue": {"name": "q", "max_attempt": 5}}, "queue.max_attempt"),  # a typo, not a silent default
        ({"broker": {"kind": "rabbitmq", "routingkey": "x"}}, "broker.routingkey"),
        ({"consumer": {"max_attempts": 3}}, "consumer.max_attempts"),  # the queue's setting, in the wrong table
        ({"scenario": [{"name": "../../escape"}]}, "scenario[0].name"),  # it names the chart files
        ({"scenario": [{"name": "a"}, {"name": "a"}]}, "scenario[1].name"),
        ({"scenario": [{"rate": 5}]}, "scenario[0].name"),
        ({"scenario": [{"name": "x", "slow_consumer": [90, 30]}]}, "scenario[0]"),
        ({"scenario": [{"name": "x", "backlog": "lots"}]}, "scenario[0]"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    data = {**bundled(), **change}
    with pytest.raises(ConfigurationError, match="spec.toml: " + re.escape(field)):
        QueueSpec.from_mapping(data, source="spec.toml")


def test_checklist_flags_a_consumer_without_inbox_or_pause() -> None:
    data = bundled()
    data["consumer"] = {**data["consumer"], "inbox": False, "pause_on_open_breaker": False, "outbox": False}
    failed = {item.key for item in queue_checklist(QueueSpec.from_mapping(data)) if not item.passed}
    assert failed == {"inbox", "pause", "outbox"}


@pytest.mark.slow
@pytest.mark.timeout(300)  # papermill starts a kernel per stage
def test_the_simulated_run_meets_the_objectives_and_writes_the_report(tmp_path: Path) -> None:
    run = run_playbook("order-events-consumer", out=tmp_path, run_id="r1")
    assert run.ok, run.error
    summary = json.loads((run.out_dir / "summary.json").read_text())
    assert summary["ok"]
    for figures in summary["scenarios"].values():
        assert figures["lost"] == 0
        assert figures["applied_twice"] == 0
    assert summary["scenarios"]["warehouse-outage"]["pauses"] > 0
    assert summary["scenarios"]["duplicates-and-crash"]["duplicates_suppressed"] > 0
    slow = summary["scenarios"]["slow-consumer-backlog"]
    assert slow["max_depth"] >= 2000  # the backlog at the start, then the slow minute's growth
    assert slow["max_lag"] > 10 > summary["scenarios"]["steady-with-poison"]["max_lag"]
    assert (run.out_dir / "report.html").is_file()
    assert (run.out_dir / "charts" / "warehouse-outage-dashboard.png").stat().st_size > 5000
    assert run.verdict is not None
    assert run.verdict.passed
    assert run.verdict.kind == "queue"
    for stage in ("01_design.ipynb", "02_exercise.ipynb", "03_charts.ipynb"):  # the same notebooks as every kind
        assert (run.out_dir / stage).is_file(), stage


@pytest.mark.slow
@pytest.mark.timeout(300)  # papermill starts a kernel per stage
def test_without_inbox_and_pause_the_objectives_fail(tmp_path: Path) -> None:
    path = tmp_path / "careless" / "order-events-consumer.toml"  # a spec's file is named after it
    path.parent.mkdir()
    path.write_text(
        BUNDLED.read_text()
        .replace("inbox = true", "inbox = false")
        .replace("pause_on_open_breaker = true", "pause_on_open_breaker = false")
    )
    run = run_playbook(str(path), out=tmp_path, run_id="r2")
    assert run.ok, run.error
    assert run.verdict is not None
    assert not run.verdict.passed
    assert "applied_twice" in {c.objective for c in run.verdict.failures}
    figures = run.summary["scenarios"]["duplicates-and-crash"]
    verdicts = {o.figure: o.met for o in judge(load_queue_spec(str(path)), figures)}
    assert verdicts["applied_twice"] is False


@pytest.mark.slow
@pytest.mark.timeout(300)  # papermill starts a kernel per stage
def test_run_plays_one_scenario_for_the_given_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    args = ["run", "order-events-consumer", "--scenario", "steady-with-poison", "--duration", "20", "--out", str(out)]
    assert main(args) == 0
    table = capsys.readouterr().out.splitlines()
    header = next(line for line in table if "max lag s" in line)
    assert header.split() == [
        "integration",
        "scenario",
        "messages",
        "lost",
        "twice",
        "dead",
        "p99",
        "s",
        "max",
        "lag",
        "s",
        "objectives",
    ]
    row = next(line.split() for line in table if line.startswith("order-events-consumer steady-with-poison"))
    assert row[3:5] == ["0", "0"]  # lost, applied twice
    assert row[-1] == "met"
    (run_dir,) = (out / "order-events-consumer").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary["scenarios"]) == ["steady-with-poison"]
    assert 800 < summary["scenarios"]["steady-with-poison"]["messages"] < 1200  # 20 s at 50 a second, not 120 s
    assert main(["run", "order-events-consumer", "--scenario", "nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no scenario 'nope'" in err
    assert "slow-consumer-backlog" in err  # the ones there are
    assert main(["run", "--all", "--scenario", "slow-consumer-backlog", "--out", str(out)]) == 0
    assert "order-events-consumer" in capsys.readouterr().out  # --all keeps the queue spec that has it


def test_live_runs_take_the_time_scale_as_times_faster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, float, int]] = []

    def fake(kind: str, topology: object, scenario: QueueScenario, settings: object, **kw: Any) -> QueueResult:
        seen.append((scenario.name, kw["time_scale"], kw["max_messages"]))  # the broker itself: tests/test_queue_live
        result = simulate_queue(scenario)
        result.thinning = 0.25
        return result

    monkeypatch.setattr(queue_live, "play_on_broker", fake)
    spec = load_queue_spec("order-events-consumer")
    QUEUE.exercise(spec, ExerciseOptions("live", "broker-outage"), tmp_path / "a")
    QUEUE.exercise(spec, ExerciseOptions("live", "broker-outage", time_scale=4), tmp_path / "b").save(tmp_path / "b")
    assert seen == [("broker-outage", 1 / LIVE_TIME_SCALE, 400), ("broker-outage", 0.25, 400)]
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["live"] == {"broker": "rabbitmq", "time_scale": 4, "max_messages": 400}
    assert summary["scenarios"]["broker-outage"]["thinning"] == 0.25
    verdict = QUEUE.judge(spec, tmp_path / "b")
    assert "on rabbitmq, 4 times faster than real time, at most 400 messages per scenario" in verdict.load_model
    assert "broker-outage: 25.0% of its messages" in verdict.load_model
    with pytest.raises(ConfigurationError, match="time_scale must be a positive number"):
        QUEUE.preflight(spec, ExerciseOptions("live", time_scale=0))
    with pytest.raises(ConfigurationError, match="duration must be a positive number"):
        QUEUE.preflight(spec, ExerciseOptions("simulate", duration=-1))


def test_checklist_flags_consumers_that_cannot_keep_up() -> None:
    data = bundled()
    data["consumer"] = {**data["consumer"], "concurrency": 2}  # 2 handlers at 0.05 s: 40 a second against 50
    (item,) = [i for i in queue_checklist(QueueSpec.from_mapping(data)) if i.key == "capacity"]
    assert not item.passed
    assert "40 a second against 50" in item.detail
    data["role"] = "publisher"
    (item,) = [i for i in queue_checklist(QueueSpec.from_mapping(data)) if i.key == "capacity"]
    assert item.passed


def test_live_mode_without_the_queues_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "aio_pika", None)  # as if the queues extra were not installed
    monkeypatch.delitem(sys.modules, "integration_kit.playbook.kinds.queue.live")
    monkeypatch.delitem(sys.modules, "integration_kit.queues.rabbitmq", raising=False)
    assert main(["run", "order-events-consumer", "--mode", "live", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "live mode needs the queues extra" in err
    assert "pip install 'integration_kit[queues]'" in err
    assert "Traceback" not in err
