"""Every kind's live run judges its bench the same way: webhook and queue runs record their bench's health, and a
scenario whose bench fell behind is an invalid run in the verdict (exit 3), never a failure of the integration."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from integration_kit.clock import ManualClock
from integration_kit.playbook.kinds.grpc import exercise as grpc_exercise
from integration_kit.playbook.kinds.grpc.spec import GrpcMethod
from integration_kit.playbook.kinds.protocol import ExerciseOptions
from integration_kit.playbook.kinds.queue.exercise import QueueExercise
from integration_kit.playbook.kinds.queue.kind import QUEUE
from integration_kit.playbook.kinds.queue.spec import load_queue_spec
from integration_kit.playbook.kinds.webhook.exercise import WebhookExercise
from integration_kit.playbook.kinds.webhook.kind import WEBHOOK
from integration_kit.playbook.kinds.webhook.live import _play, live_webhooks
from integration_kit.playbook.kinds.webhook.spec import WebhookSpec
from integration_kit.playbook.project import Project
from integration_kit.playbook.verdict.bench import BenchHealth, BenchMonitor, lateness_limit
from integration_kit.queues.sim import simulate_queue
from integration_kit.server.signatures import StandardWebhooks
from integration_kit.sim.scaled_clock import ScaledClock
from integration_kit.sim.upstream import serve_app

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


def test_a_slow_webhook_receiver_is_never_the_bench_falling_behind() -> None:
    """The played partner sends each delivery at its planned time whether or not the earlier ones were answered
    (an open loop): a receiver that holds its first answer until eight more deliveries have come in is the
    integration's lag, never a bench that fell behind. (A partner that waited for each answer would never send
    the other eight: the first answer would wait for its 10 s bound and every later delivery would start late.)"""
    arrived = 0
    others: asyncio.Event | None = None

    async def receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal arrived, others
        if scope["type"] != "http":
            return
        others = others or asyncio.Event()
        first, arrived = arrived == 0, arrived + 1
        if arrived == 9:
            others.set()
        if first:
            await asyncio.wait_for(others.wait(), 10)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"status":"accepted"}'})

    clock = ScaledClock(20)
    scheme = StandardWebhooks(["whsec_" + "A" * 32], clock=clock)
    deliveries = [(0.1 * i, "good", f"evt_{i}", 0.1 * i) for i in range(12)]  # 5 ms apart in real time
    counts: Counter[str] = Counter()
    received: dict[str, float] = {}
    with (
        serve_app(receiver, name="slow-receiver") as url,
        BenchMonitor(clock, 20, lag_limit=lateness_limit(20)) as monitor,
    ):
        _play(url, deliveries, {"old": scheme}, None, clock.now(), clock, monitor, counts, received, threading.Lock())
    health = monitor.health()
    assert counts["deliveries"] == counts["accepted"] == len(received) == 12
    assert health.offered == health.scheduled == 12
    assert not health.fell_behind, health.figures()


class _ScaledManualClock(ManualClock):
    """A :class:`ManualClock` read as a live run's scaled clock (scenario seconds, ``time_scale`` per real one)."""

    time_scale = 10.0


def test_the_grpc_generator_keeps_to_its_plan_when_every_wake_up_is_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gRPC kind's generator waits until each call's planned time, not for a gap after the last call: every
    wake-up 2 ms (real) late costs each call those 2 ms, never the sum of all earlier ones. (Waiting a gap after each
    call, the 300th started 300 x 2 ms late: 6 s scenario seconds at x10, a bench that "fell behind".)"""
    clock = _ScaledManualClock()
    real_sleep = asyncio.sleep
    owner = threading.get_ident()

    async def late_wake_up(delay: float) -> None:
        if threading.get_ident() != owner:  # another thread's loop (a server fixture's) keeps its own time
            await real_sleep(delay)
            return
        clock.advance((delay + 0.002) * clock.time_scale)
        await real_sleep(0)

    class Channel:
        def unary_unary(self, *_: Any) -> Any:
            async def call(*_: Any, **__: Any) -> None:
                return None

            return call

    monkeypatch.setattr(grpc_exercise.asyncio, "sleep", late_wake_up)
    monitor = BenchMonitor(clock, clock.time_scale)
    method = GrpcMethod("inventory.v1.Inventory/GetItem", rate=100.0)
    asyncio.run(grpc_exercise._drive(Channel(), method, 60.0, clock, monitor, clock.now()))  # type: ignore[arg-type]
    health = monitor.health()
    assert health.scheduled == health.offered == grpc_exercise.MAX_CALLS
    assert health.lateness_max == pytest.approx(0.02)  # one late wake-up, in scenario seconds
    assert not health.fell_behind
