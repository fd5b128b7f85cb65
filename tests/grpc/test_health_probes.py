"""Health-checked breaker probes: with ``health_checks=True``, a half-open breaker's probe asks the partner's
``grpc.health.v1`` service first, and sends nothing while the service is NOT_SERVING."""

from __future__ import annotations

import asyncio

import pytest
from grpc_kit_helpers import SERVICE, retry_config, scenario

from integration_kit.errors import CircuitOpenError, IntegrationError
from integration_kit.grpc import AsyncResilientChannel, GrpcUnavailable
from integration_kit.policies.config import BreakerPolicy
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg
from integration_kit.sim.grpc.upstream import GrpcFlakyUpstream, serving

pytestmark = pytest.mark.anyio

BREAKER = BreakerPolicy(failure_rate_threshold=0.5, window_size=4, minimum_calls=4, wait_in_open=0.1)


async def test_a_probe_waits_for_the_health_service_to_say_serving() -> None:
    upstream = GrpcFlakyUpstream(scenario({"500": 1.0}), seed=1)
    async with serving(upstream) as target:
        channel = AsyncResilientChannel(
            target,
            tls=False,
            service_config=retry_config(),
            breaker=BREAKER,
            health_checks=True,
            idempotency={f"{SERVICE}/Reserve": "IDEMPOTENCY_UNKNOWN"},
        )
        stub = pbg.InventoryStub(channel)
        for _ in range(4):  # INTERNAL four times: the breaker opens
            with pytest.raises(IntegrationError):
                await stub.Reserve(pb.ReserveRequest(sku="a", quantity=1))
        with pytest.raises(CircuitOpenError):
            await stub.Reserve(pb.ReserveRequest(sku="a", quantity=1))
        await upstream.set_serving(False)
        await asyncio.sleep(0.15)  # the breaker's wait: the next call is a probe
        with pytest.raises(CircuitOpenError) as failed:  # the probe failed unsent; its retry met the breaker again
            await stub.Reserve(pb.ReserveRequest(sku="a", quantity=1))
        assert isinstance(failed.value.__cause__, GrpcUnavailable)
        assert "NOT_SERVING" in failed.value.__cause__.details
        assert upstream.stats()["methods"] == {"Reserve": 4}  # the probe was not sent
        await upstream.set_serving(True)
        await asyncio.sleep(0.15)
        with pytest.raises(IntegrationError):  # healthy again: the probe goes out (and meets INTERNAL)
            await stub.Reserve(pb.ReserveRequest(sku="a", quantity=1))
        assert upstream.stats()["methods"] == {"Reserve": 5}
        await channel.close()
