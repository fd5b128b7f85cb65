"""Simulated and live agree on gRPC scenarios, by the HTTP rule (same breaker transitions, success rate and
amplification within 10 %): one method of the inventory spec, simulated and then called over the flaky grpc.aio
upstream on 127.0.0.1. Bounded: 300 calls per comparison (5 per scenario second for 60 s), played 10 times faster,
so each live run takes about 6 s."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from integration_kit.playbook.kinds.grpc.spec import GrpcSpec
from integration_kit.playbook.kinds.table import load_spec
from integration_kit.playbook.project import Project
from integration_kit.research.fidelity import relative_gap
from integration_kit.research.grpc_fidelity import compare_grpc
from integration_kit.sim.scenarios import Scenario

TOLERANCE = 0.10
BUNDLED = Project.discover().integrations / "inventory.toml"
HEALTHY = {"kind": "lognormal", "median": 0.05, "p99": 0.3}
#: Every gRPC status the mix can name, and an outage the breaker must see.
GRPC_OUTAGE = Scenario.from_mapping(
    {
        "name": "grpc-outage",
        "phases": [
            {
                "name": "up",
                "duration": 20,
                "latency": HEALTHY,
                "errors": {"UNAVAILABLE": 0.05, "RESOURCE_EXHAUSTED": 0.03, "retry_after": 0.2, "REFUSED_STREAM": 0.05},
            },
            {"name": "down", "duration": 20, "latency": 0.02, "errors": {"UNAVAILABLE": 0.85, "REFUSED_STREAM": 0.1}},
            {"name": "up again", "duration": 20, "latency": HEALTHY, "errors": {"INTERNAL": 0.02, "ABORTED": 0.02}},
        ],
    }
)
LONG_TAIL = Scenario.from_mapping(
    {
        "name": "long-tail",
        "phases": [
            {
                "duration": 60,
                "latency": {"kind": "lognormal", "median": 0.05, "p99": 1.5},
                "errors": {"UNAVAILABLE": 0.05},
            }
        ],
    }
)


@pytest.mark.parametrize("method", ["GetItem", "Reserve"])
def test_the_grpc_mix_agrees_simulated_and_live(method: str) -> None:
    report = compare_grpc(load_spec(BUNDLED), method, GRPC_OUTAGE, seed=1, rate=5.0, time_scale=10.0)  # type: ignore[arg-type]
    assert report.simulated.calls == report.live.calls == 300
    assert ("closed", "open") in report.simulated_transitions  # the outage trips the breaker
    assert report.agrees(TOLERANCE), "\n".join(report.lines())


def test_hedging_agrees_simulated_and_live() -> None:
    data: dict[str, Any] = tomllib.loads(BUNDLED.read_text())
    data["service_config"]["methodConfig"][0] = {
        "name": [{"service": "inventory.v1.Inventory", "method": "GetItem"}],
        "timeout": "2s",
        "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.2s", "nonFatalStatusCodes": ["UNAVAILABLE"]},
    }
    report = compare_grpc(GrpcSpec.from_mapping(data), "GetItem", LONG_TAIL, seed=1, rate=5.0, time_scale=10.0)
    assert report.agrees(TOLERANCE), "\n".join(report.lines())
    assert report.simulated_received > 1.1 * report.simulated.calls  # hedges went out
    assert relative_gap(report.simulated_received, report.live_received) <= TOLERANCE, "\n".join(report.lines())


def test_an_unknown_or_streaming_method_is_refused() -> None:
    with pytest.raises(ValueError, match="WatchStock"):
        compare_grpc(load_spec(BUNDLED), "WatchStock", LONG_TAIL)
    with pytest.raises(ValueError, match="calls"):
        compare_grpc(load_spec(BUNDLED), "GetItem", LONG_TAIL, rate=1000.0)
