"""The virtual-time queue model: deterministic, and each pattern shows the effect it exists for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from integration_kit.queues.sim import QueueScenario, QueueSettings, simulate_queue


def test_same_seed_same_result() -> None:
    scenario = QueueScenario("steady", duration=30, rate=40, failure_rate=0.05, poison_rate=0.02)
    assert simulate_queue(scenario, seed=3).figures() == simulate_queue(scenario, seed=3).figures()


def test_poison_goes_to_the_dead_letter_queue_and_nothing_is_lost() -> None:
    f = simulate_queue(QueueScenario("p", duration=60, rate=50, failure_rate=0.05, poison_rate=0.01), seed=1).figures()
    assert f["lost"] == 0
    assert f["applied_twice"] == 0
    assert f["dead_poison"] == f["poison"] > 0
    assert f["dead_good"] == 0
    assert f["redeliveries"] > 0


def test_the_outbox_keeps_messages_through_a_broker_outage_direct_publishing_loses_them() -> None:
    scenario = QueueScenario("outage", duration=120, rate=20, broker_outage=(30, 90))
    with_outbox = simulate_queue(scenario, QueueSettings(outbox=True), seed=1).figures()
    without = simulate_queue(scenario, QueueSettings(outbox=False), seed=1).figures()
    assert with_outbox["lost"] == 0
    assert without["lost"] > 0


def test_pausing_on_an_open_breaker_keeps_good_messages_out_of_the_dead_letter_queue() -> None:
    scenario = QueueScenario("downstream", duration=180, rate=20, downstream_outage=(30, 150))
    paused = simulate_queue(scenario, QueueSettings(pause_on_open_breaker=True), seed=2).figures()
    drained = simulate_queue(scenario, QueueSettings(pause_on_open_breaker=False), seed=2).figures()
    assert paused["dead_good"] == 0
    assert paused["pauses"] > 0
    assert drained["dead_good"] > 0


def test_the_inbox_suppresses_duplicates_from_republishing_and_a_crash() -> None:
    scenario = QueueScenario("dups", duration=60, rate=30, duplicate_rate=0.05, consumer_crash_at=30)
    with_inbox = simulate_queue(scenario, QueueSettings(inbox=True), seed=4).figures()
    without = simulate_queue(scenario, QueueSettings(inbox=False), seed=4).figures()
    assert with_inbox["applied_twice"] == 0
    assert with_inbox["duplicates_suppressed"] > 0
    assert without["applied_twice"] > 0


def test_a_slow_consumer_builds_a_backlog_in_its_window_that_drains_after_it() -> None:
    scenario = QueueScenario("slow", duration=180, rate=50, slow_consumer=(30, 90), slow_processing_time=0.5)
    settings = QueueSettings(concurrency=16)  # 32 messages/s while slow, 320 otherwise
    result = simulate_queue(scenario, settings, seed=1)
    f = result.figures()
    normal = simulate_queue(replace(scenario, slow_consumer=None), settings, seed=1).figures()
    depth = {int(row["t"]): row["depth"] for row in result.series}
    assert max(depth[t] for t in range(0, 30)) <= 5 < 500 < depth[89]  # about 18 more a second while slow
    assert depth[89] == f["max_depth"] or depth[89] > 0.95 * f["max_depth"]
    assert max(depth[t] for t in range(110, 180)) <= 5  # drained at 320 a second once the window ends
    assert f["max_lag"] > 10 > normal["max_lag"]
    assert f["latency_p99"] > 10 > normal["latency_p99"]
    assert (f["lost"], f["applied_twice"], f["applied"]) == (0, 0, f["messages"])


def test_a_backlog_waiting_at_the_start_is_applied_oldest_first() -> None:
    scenario = QueueScenario("backlog", duration=60, rate=10, backlog=2000, poison_rate=0.01)
    result = simulate_queue(scenario, QueueSettings(concurrency=16), seed=2)
    f = result.figures()
    assert f["messages"] > 2000
    assert result.series[0]["depth"] == 2000 == f["max_depth"]
    assert (f["lost"], f["dead_good"], f["dead_poison"]) == (0, 0, f["poison"])
    assert f["applied"] == f["messages"] - f["poison"]
    assert f["max_lag"] >= 5  # 2000 messages at 320 a second: the last waits about 6 s
    assert max(row["depth"] for row in result.series if row["t"] >= 15) <= 5


@pytest.mark.parametrize(
    "bad",
    [
        {"rate": 0},
        {"poison_rate": 1.5},
        {"broker_outage": (50, 10)},
        {"processing_time": float("nan")},
        {"slow_consumer": (90, 30)},
        {"slow_processing_time": 0},
        {"backlog": -1},
        {"backlog": 1.5},
        {"backlog": True},
        {"rate": 1e6, "duration": 1e6},  # a trillion messages: refused, not simulated for ever
        {"rate": 5000, "duration": 200, "backlog": 1},
    ],
)
def test_bad_scenarios_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        QueueScenario("bad", **bad)  # type: ignore[arg-type]


def test_failed_probes_in_a_long_outage_dead_letter_no_good_message() -> None:
    # Few messages and a long outage: about 60 half-open probes, 5 attempts per message.
    scenario = QueueScenario("long-outage", duration=360, rate=0.2, downstream_outage=(10, 330))
    f = simulate_queue(scenario, QueueSettings(pause_on_open_breaker=True), seed=3).figures()
    assert f["pauses"] > 0
    assert (f["dead_good"], f["lost"]) == (0, 0)
    assert f["redeliveries"] <= 5  # only the failures that did not leave the breaker open used attempts
