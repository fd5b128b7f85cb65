"""Helpers of the gRPC tests: scenarios and service configs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from integration_kit.sim.grpc.upstream import GrpcFlakyUpstream
from integration_kit.sim.scenarios import Scenario

SERVICE = "inventory.v1.Inventory"


Serve = Callable[..., AbstractContextManager[tuple[str, GrpcFlakyUpstream]]]


def scenario(errors: dict[str, float] | None = None, latency: float = 0.001, **extra: Any) -> Scenario:
    """A one-phase scenario (an hour long) with ``errors`` and a constant ``latency`` (seconds)."""
    phase: dict[str, Any] = {"duration": 3600, "latency": latency, "errors": errors or {}, **extra}
    return Scenario.from_mapping({"name": "test", "phases": [phase]})


def retry_config(
    codes: list[str] | None = None, attempts: int = 5, throttling: dict[str, float] | None = None, **entry: Any
) -> dict[str, Any]:
    """A service config retrying every inventory method on ``codes`` (default UNAVAILABLE), fast backoff."""
    config: dict[str, Any] = {
        "methodConfig": [
            {
                "name": [{"service": SERVICE}],
                "retryPolicy": {
                    "maxAttempts": attempts,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.02s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": codes or ["UNAVAILABLE"],
                },
                **entry,
            }
        ]
    }
    if throttling is not None:
        config["retryThrottling"] = throttling
    return config
