"""The live flaky upstream, the in-process fault transports, and fidelity between simulation and reality."""

from __future__ import annotations

import itertools
import time

import anyio
import httpx
import pytest

from integration_kit.clock import ManualClock
from integration_kit.errors import CircuitOpenError, IntegrationError
from integration_kit.http.client import ResilientClient
from integration_kit.http.config import ClientConfig
from integration_kit.policies.breaker import CircuitState
from integration_kit.policies.config import BreakerPolicy, RetryPolicy
from integration_kit.research.fidelity import compare, relative_gap
from integration_kit.sim.scenarios import Scenario, load_scenario
from integration_kit.sim.testing import AsyncFaultTransport, FaultTransport
from integration_kit.sim.upstream import FlakyUpstream, ScaledClock, serve_scenario


def scenario(*phases: dict[str, object]) -> Scenario:
    return Scenario.from_mapping({"name": "test", "phases": list(phases)})


HEALTHY = {"duration": 10, "latency": 0.0}


def test_stats_count_requests_over_real_sockets() -> None:
    keys = [f"key-{i % 7}" for i in range(20)]
    with serve_scenario(scenario(HEALTHY), seed=1) as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, timeout=5) as http:
            statuses = [http.get("/orders", headers={"Idempotency-Key": key}).status_code for key in keys]
            http.post("/orders")
            stats = http.get("/stats").json()
    assert statuses == [200] * 20
    assert stats["received"] == 21
    assert sum(stats["per_second"].values()) == 21
    assert stats["idempotency_keys_seen"] == 7
    assert stats["duplicate_keys"] == sorted(set(keys))
    assert stats["answers"] == {"200": 21}


def test_the_server_stops_cleanly_and_frees_the_port() -> None:
    with serve_scenario(scenario(HEALTHY)) as url:
        httpx.get(f"{url}/x", timeout=5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/x", timeout=5)


def test_faults_over_real_sockets() -> None:
    mix = {"429": 0.25, "retry_after": 1.5, "reset": 0.25, "refused": 0.25, "hang": 0.25}
    faults = scenario({"duration": 1000, "latency": 0.0, "errors": mix})
    seen: dict[str, int] = {}
    with serve_scenario(faults, seed=2, max_hang=5) as url, httpx.Client(base_url=url, timeout=0.3) as http:
        for _ in range(24):
            try:
                response = http.get("/x")
                answer = f"{response.status_code} retry-after {response.headers['retry-after']}"
            except httpx.HTTPError as exc:
                answer = type(exc).__name__
            seen[answer] = seen.get(answer, 0) + 1
        stats = http.get("/stats").json()
    # Retry-After in whole seconds, rounded up, as HTTP requires; resets and refusals both drop the connection.
    assert set(seen) == {"429 retry-after 2", "RemoteProtocolError", "ReadTimeout"}
    assert seen["429 retry-after 2"] == stats["answers"]["429"]
    assert seen["RemoteProtocolError"] == stats["answers"]["reset"] + stats["answers"]["refuse"]
    assert seen["ReadTimeout"] == stats["answers"]["hang"]
    assert stats["refused"] == stats["answers"]["refuse"] > 0
    assert stats["received"] == 24 - stats["refused"]  # a refusal never counts as received


def test_time_scale_plays_the_phases_faster() -> None:
    clock = ManualClock()
    upstream = FlakyUpstream(
        scenario(HEALTHY, {"duration": 10, "latency": 0.0, "errors": {"503": 1.0}}), time_scale=10, clock=clock
    )
    assert upstream.decide().status == 200
    clock.advance(0.99)  # 9.9 scenario seconds
    assert upstream.decide("k").status == 200
    clock.advance(0.02)
    assert upstream.decide("k").status == 503
    stats = upstream.stats()
    assert stats["per_second"] == {"0": 1, "9": 1, "10": 1}
    assert stats["duplicate_keys"] == ["k"]
    upstream.restart()
    assert upstream.stats()["received"] == 0
    assert upstream.decide().status == 200


def test_scaled_clock() -> None:
    clock = ScaledClock(100)
    before = clock.now()
    clock.sleep(1.0)  # 10 ms of real time
    assert clock.now() - before >= 1.0
    with pytest.raises(ValueError, match="time_scale"):
        ScaledClock(0)


def test_fault_transport_plays_a_scenario_on_a_manual_clock() -> None:
    clock = ManualClock()
    transport = FaultTransport(load_scenario("outage-and-recovery"), clock=clock, seed=1)
    with httpx.Client(transport=transport, base_url="https://partner.test") as http:
        healthy = [http.get("/orders").status_code for _ in range(50)]
        assert clock.now() > 0  # each answer took its latency, on the manual clock
        clock.set(70)
        outage: list[int | str] = []
        for _ in range(50):
            try:
                outage.append(http.get("/orders").status_code)
            except httpx.ConnectError:
                outage.append("refused")
    assert healthy.count(200) >= 48
    assert outage.count(503) > 35
    assert "refused" in outage
    assert len(transport.requests) == 100


def test_fault_transport_times_out_at_the_read_timeout() -> None:
    clock = ManualClock()
    slow = scenario({"duration": 10, "latency": 3.0}, {"duration": 10, "errors": {"hang": 1.0}})
    transport = FaultTransport(slow, clock=clock)
    with httpx.Client(transport=transport, timeout=httpx.Timeout(5, read=1.0)) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get("https://partner.test/")
        assert clock.now() == 1.0
        clock.set(10)
        with pytest.raises(httpx.ReadTimeout):
            http.get("https://partner.test/")
        assert clock.now() == 11.0


def test_async_fault_transport_shares_the_decisions() -> None:
    limited = scenario({"duration": 10, "latency": 0.5, "errors": {"429": 1.0, "retry_after": 3}})

    async def main() -> tuple[int, str, float]:
        clock = ManualClock()
        transport = AsyncFaultTransport(limited, clock=clock)
        async with httpx.AsyncClient(transport=transport) as http:
            response = await http.get("https://partner.test/")
        return response.status_code, response.headers["retry-after"], clock.now()

    assert anyio.run(main) == (429, "3", 0.5)


def test_the_resilient_client_trips_its_breaker_on_the_fault_transport() -> None:
    clock = ManualClock()
    down = scenario({"duration": 100, "latency": 0.01, "errors": {"503": 1.0}})
    config = ClientConfig(
        name="partner",
        base_url="https://partner.test",
        retry=RetryPolicy(max_attempts=2),
        breaker=BreakerPolicy(failure_threshold=4, failure_rate_threshold=None),
    )
    transport = FaultTransport(down, clock=clock)
    with ResilientClient(config, transport=transport, clock=clock) as client:
        errors: list[type[IntegrationError]] = []
        for _ in range(5):
            try:
                client.get("/orders")
            except IntegrationError as exc:
                errors.append(type(exc))
        assert client.breaker is not None
        assert client.breaker.state is CircuitState.OPEN
    assert errors[-1] is CircuitOpenError
    assert len(transport.requests) == 4


def test_relative_gap() -> None:
    assert relative_gap(1.0, 1.0) == 0
    assert relative_gap(0.0, 0.0) == 0
    assert relative_gap(0.9, 1.0) == pytest.approx(0.1)


def test_simulation_predicts_a_live_run() -> None:
    """The fidelity check: the simulation's transitions exactly; a live run's within what a loaded machine allows."""
    short_outage = scenario(
        {"name": "up", "duration": 20, "latency": {"kind": "lognormal", "median": 0.05, "p99": 0.2}},
        {"name": "down", "duration": 20, "latency": 0.02, "errors": {"503": 1.0}},
        {"name": "up again", "duration": 20, "latency": {"kind": "lognormal", "median": 0.05, "p99": 0.2}},
    )
    config = ClientConfig(
        name="fidelity",
        base_url="http://127.0.0.1",
        retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=1.0),
        breaker=BreakerPolicy(
            failure_threshold=3, failure_rate_threshold=None, wait_in_open=8.0, half_open_max_calls=2
        ),
    )
    report = compare(short_outage, config=config, seed=3, time_scale=10)
    assert report.simulated_transitions == (
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    )
    # The live run is real time on a shared machine: a stalled process can add or drop one probe cycle. It must
    # open in the outage, probe, and close after it; the exact agreement (same transitions, gaps within 10 %) is
    # measured on a quiet machine by bench/fidelity.py.
    live = report.live_transitions
    assert live[0] == ("closed", "open"), "\n".join(report.lines())
    assert live[-1] == ("half_open", "closed"), "\n".join(report.lines())
    assert abs(len(live) - len(report.simulated_transitions)) <= 2, "\n".join(report.lines())
    assert all(new == following[0] for (_, new), following in itertools.pairwise(live))
    assert report.amplification_gap <= 0.25, "\n".join(report.lines())
    assert report.success_gap <= 0.25, "\n".join(report.lines())


def test_early_retries_are_requests_for_a_call_sent_before_its_retry_after_passed() -> None:
    clock = ManualClock()
    throttled = scenario({"duration": 100, "latency": 0.5, "errors": {"429": 1.0, "retry_after": 1.5}})
    upstream = FlakyUpstream(throttled, clock=clock)
    upstream.decide(call_id="a")  # 429 at t=0, sent at 0.5 with Retry-After: 2 (rounded up): not before 2.5
    upstream.decide(call_id="b")
    clock.advance(2.0)
    upstream.decide(call_id="a")  # early by 0.5 s; the new hint says not before 2 + 0.5 + 2 = 4.5
    upstream.decide()  # a request without a call id is never early
    clock.advance(2.6)
    upstream.decide(call_id="a")  # t=4.6: on time
    upstream.decide(call_id="b")  # t=4.6: on time
    assert upstream.stats()["early_retries"] == 1


def test_stats_report_the_upstreams_own_loop_lag() -> None:
    slow = scenario({"duration": 10, "latency": 0.01})
    with serve_scenario(slow, time_scale=2.0) as url, httpx.Client(base_url=url, timeout=5) as http:
        before = http.get("/stats").json()["loop_lag"]
        for _ in range(10):
            http.get("/x")
        lag = http.get("/stats").json()["loop_lag"]
    assert before == {"p99": None, "max": None, "samples": 0}  # JSON has no NaN
    assert lag["samples"] == 10  # one per latency played
    assert 0 <= lag["p99"] <= lag["max"] < 1.0


def test_a_blocked_loop_shows_as_lag() -> None:
    upstream = FlakyUpstream(scenario(HEALTHY))

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(upstream.play, 0.01)
            await anyio.sleep(0)  # the wait starts
            time.sleep(0.2)  # the fault: something holds the loop (a busy client thread, a starved CPU)

    anyio.run(main)
    lag = upstream.loop_lag()
    assert lag["samples"] == 1
    assert lag["max"] is not None
    assert 0.15 < lag["max"] < 1.0
