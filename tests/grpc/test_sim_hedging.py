"""Hedging in simulate mode: the simulator plays A6 hedges in virtual time (the channel's race), for the gRPC kind."""

from __future__ import annotations

import tomllib
from typing import Any

from integration_kit.playbook.kinds.grpc.exercise import simulate_method
from integration_kit.playbook.kinds.grpc.spec import GrpcSpec
from integration_kit.playbook.project import Project
from integration_kit.sim.scenarios import Scenario

SERVICE = "inventory.v1.Inventory"
LONG_TAIL = Scenario.from_mapping(
    {
        "name": "long-tail",
        "phases": [{"duration": 60, "latency": {"kind": "lognormal", "median": 0.05, "p99": 1.5}}],
    }
)


def spec(hedging: dict[str, Any] | None, throttling: dict[str, float] | None = None) -> GrpcSpec:
    """The bundled inventory spec; GetItem and Reserve get ``hedging`` (a hedgingPolicy) instead of retries."""
    data = tomllib.loads((Project.discover().integrations / "inventory.toml").read_text())
    entry: dict[str, Any] = {"name": [{"service": SERVICE, "method": m} for m in ("GetItem", "Reserve")]}
    entry |= {"timeout": "2s"} | ({"hedgingPolicy": hedging} if hedging else {})
    data["service_config"]["methodConfig"] = [entry]
    data["service_config"].pop("retryThrottling")
    data.pop("breaker")  # the race alone, not the breaker, decides the load here
    if throttling is not None:
        data["service_config"]["retryThrottling"] = throttling
    return GrpcSpec.from_mapping(data)


HEDGING = {"maxAttempts": 3, "hedgingDelay": "0.2s", "nonFatalStatusCodes": ["UNAVAILABLE"]}


def method(s: GrpcSpec, short: str) -> Any:
    return next(m for m in s.methods if m.short == short)


def test_hedges_cut_the_p99_and_add_bounded_load() -> None:
    plain, hedged = spec(None), spec(HEDGING)
    before = simulate_method(plain, method(plain, "GetItem"), LONG_TAIL, 1, rate=20)
    after = simulate_method(hedged, method(hedged, "GetItem"), LONG_TAIL, 1, rate=20)
    assert before.summary.calls == after.summary.calls > 1000
    assert after.summary.latency_p99 < 0.5 * before.summary.latency_p99
    assert after.summary.amplification == 1.0  # the hedged group is one engine attempt
    added = after.server.received / after.summary.calls
    assert 1.05 < added < 1.5  # only the slow tail is hedged
    assert before.server.received == before.summary.calls


def test_a_method_that_is_not_idempotent_is_never_hedged() -> None:
    hedged = spec(HEDGING)
    reserve = method(hedged, "Reserve")
    assert not reserve.idempotency.safe
    result = simulate_method(hedged, reserve, LONG_TAIL, 1, rate=20)
    assert result.server.received == result.summary.calls


def test_hedges_draw_on_the_retry_budget() -> None:
    down = Scenario.from_mapping(
        {"name": "down", "phases": [{"duration": 30, "latency": 0.05, "errors": {"UNAVAILABLE": 1.0}}]}
    )
    free = spec(HEDGING)
    throttled = spec(HEDGING, throttling={"maxTokens": 10, "tokenRatio": 0.1})
    unthrottled = simulate_method(free, method(free, "GetItem"), down, 1, rate=10)
    limited = simulate_method(throttled, method(throttled, "GetItem"), down, 1, rate=10)
    calls = unthrottled.summary.calls
    assert unthrottled.server.received == 3 * calls  # every non-fatal failure sends the next copy
    assert limited.server.received < 1.2 * calls  # the budget is soon spent: hedges stop
    assert limited.budget is not None
    assert limited.budget.stats().failures > calls
