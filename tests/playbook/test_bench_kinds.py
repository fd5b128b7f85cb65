"""Every kind's live run judges its bench the same way: webhook and queue runs record their bench's health, and a
scenario whose bench fell behind is an invalid run in the verdict (exit 3), never a failure of the integration."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from integration_kit.playbook.kinds.protocol import ExerciseOptions
from integration_kit.playbook.kinds.queue.exercise import QueueExercise
from integration_kit.playbook.kinds.queue.kind import QUEUE
from integration_kit.playbook.kinds.queue.spec import load_queue_spec
from integration_kit.playbook.kinds.webhook.exercise import WebhookExercise
from integration_kit.playbook.kinds.webhook.kind import WEBHOOK
from integration_kit.playbook.kinds.webhook.live import live_webhooks
from integration_kit.playbook.kinds.webhook.spec import WebhookSpec
from integration_kit.playbook.project import Project
from integration_kit.playbook.verdict.bench import BenchHealth, lateness_limit
from integration_kit.queues.sim import simulate_queue

pytestmark = pytest.mark.timeout(120)

FELL_BEHIND = BenchHealth(
    scheduled=200,
    offered=150,
    on_time=120,
    lateness_p99=4.2,
    lateness_max=31.0,
    timer_lag_p99=0.02,
    cpu_busy=0.99,
    cores=2,
    time_scale=20.0,
)


def receiving_spec() -> WebhookSpec:
    with (Project.discover().integrations / "github-events.toml").open("rb") as fh:
        data: dict[str, Any] = tomllib.load(fh)
    data["receiver"] = {"scheme": "standard-webhooks", "secret_env": "HOOK_SECRET"}
    data["scenario"] = [
        {"name": "live", "description": "a few duplicates, over HTTP", "events": 40, "rate": 10.0, "duplicates": 0.2}
    ]
    return WebhookSpec.from_mapping(data)


def test_a_live_webhook_run_judges_its_bench(tmp_path: Path) -> None:
    spec = receiving_spec()
    run = live_webhooks(spec, "live", seed=1, time_scale=20)
    assert run.bench is not None
    assert run.bench.scheduled == run.bench.offered == run.counts["deliveries"]  # every delivery was planned
    assert run.bench.time_scale == 20
    assert run.bench.lag_limit == lateness_limit(20) == 2.0  # webhook objectives: counts and lags in seconds
    WebhookExercise(spec, (run,), "live", 1).save(tmp_path)
    verdict = WEBHOOK.judge(spec, tmp_path)
    assert verdict.valid, verdict.invalid
    assert verdict.status() == "PASS"

    # The same run, had its sender fallen behind: invalid, with the figure, and nothing failed.
    WebhookExercise(spec, (dataclasses.replace(run, bench=FELL_BEHIND),), "live", 1).save(tmp_path)
    verdict = WEBHOOK.judge(spec, tmp_path)
    assert verdict.invalid["live"].startswith("invalid run: the load generator fell behind by 31.00 s")
    assert verdict.status() == "INVALID RUN"
    assert verdict.failures == []
    assert json.loads((tmp_path / "verdict.json").read_text())["invalid"] == verdict.invalid


def test_a_simulated_webhook_run_has_no_bench_and_is_never_invalid(tmp_path: Path) -> None:
    spec = receiving_spec()
    exercise = WEBHOOK.exercise(spec, ExerciseOptions("simulate"), tmp_path)
    exercise.save(tmp_path)
    assert all(run.bench is None for run in exercise.runs)
    assert "bench" not in json.loads((tmp_path / "summary.json").read_text())["scenarios"]["live"]
    assert WEBHOOK.judge(spec, tmp_path).valid


def test_a_queue_scenario_whose_bench_fell_behind_is_invalid_not_failed(tmp_path: Path) -> None:
    spec = load_queue_spec("order-events-consumer")
    scenario = spec.scenarios[0]
    live = {"broker": spec.broker, "time_scale": 20.0, "max_messages": 400}
    results = (simulate_queue(scenario, spec.settings),)  # the counts of a run; the bench's health is the point
    QueueExercise(spec, results, "live", 0, live, {scenario.name: FELL_BEHIND}).save(tmp_path)
    saved = json.loads((tmp_path / "summary.json").read_text())["scenarios"][scenario.name]["bench"]
    assert BenchHealth.from_dict(saved) == FELL_BEHIND
    verdict = QUEUE.judge(spec, tmp_path)
    assert verdict.invalid[scenario.name].startswith("invalid run: the load generator fell behind by 31.00 s")
    assert verdict.status() == "INVALID RUN"
    assert verdict.failures == []
