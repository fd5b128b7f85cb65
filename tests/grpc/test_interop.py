"""Interoperability: the kit's retry decisions against grpcio's own gRFC A6 implementation (C-core), on the same
flaky gRPC upstream with the same service config (grpcio gets it as the ``grpc.service_config`` channel option with
``grpc.enable_retries=1``). The server counts the attempts of each; they must agree on which codes are retried,
the cap of 5, server pushback (waited, or stopping retries when malformed) and throttling that stops retries."""

from __future__ import annotations

import itertools
import json
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_kit_helpers import SERVICE, Serve, retry_config, scenario

from integration_kit.errors import IntegrationError
from integration_kit.grpc import AsyncResilientChannel
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg
from integration_kit.sim.grpc.upstream import GrpcFlakyUpstream

pytestmark = pytest.mark.anyio


async def by_grpcio(target: str, config: dict[str, Any], calls: int) -> list[str]:
    options = [("grpc.service_config", json.dumps(config)), ("grpc.enable_retries", 1)]
    codes = []
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        stub = pbg.InventoryStub(channel)
        for _ in range(calls):
            try:
                await stub.GetItem(pb.GetItemRequest(sku="a"), timeout=10)
                codes.append("OK")
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code().name)
    return codes


async def by_kit(target: str, config: dict[str, Any], calls: int) -> list[str]:
    codes = []
    idempotency = {f"{SERVICE}/GetItem": "NO_SIDE_EFFECTS"}
    async with AsyncResilientChannel(target, tls=False, service_config=config, idempotency=idempotency) as channel:
        stub = pbg.InventoryStub(channel)
        for _ in range(calls):
            try:
                await stub.GetItem(pb.GetItemRequest(sku="a"), timeout=10)
                codes.append("OK")
            except IntegrationError as exc:
                last = getattr(exc, "last_error", None) or exc
                codes.append(last.code.name)  # type: ignore[union-attr]
    return codes


async def both(
    serve: Serve, played: dict[str, float], config: dict[str, Any], calls: int = 1, **options: Any
) -> list[tuple[list[str], GrpcFlakyUpstream]]:
    results = []
    for client in (by_grpcio, by_kit):
        with serve(scenario(played), **options) as (target, upstream):
            results.append((await client(target, config, calls), upstream))
    return results


def attempts(upstream: GrpcFlakyUpstream) -> int:
    return int(upstream.stats()["methods"].get("GetItem", 0))


@pytest.mark.parametrize(
    ("played", "codes", "expected"),
    [
        ({"503": 1.0}, ["UNAVAILABLE"], 5),  # a listed code: retried to maxAttempts
        ({"500": 1.0}, ["UNAVAILABLE"], 1),  # INTERNAL is not listed: one attempt
        ({"500": 1.0}, ["UNAVAILABLE", "INTERNAL"], 5),
        ({"429": 1.0, "retry_after": -1}, ["UNAVAILABLE"], 1),  # RESOURCE_EXHAUSTED, not listed
    ],
)
async def test_same_codes_are_retried(serve: Serve, played: dict[str, float], codes: list[str], expected: int) -> None:
    (grpcio_codes, grpcio_up), (kit_codes, kit_up) = await both(serve, played, retry_config(codes))
    assert grpcio_codes == kit_codes
    assert attempts(grpcio_up) == attempts(kit_up) == expected


async def test_same_cap_of_five_attempts(serve: Serve) -> None:
    (_, grpcio_up), (_, kit_up) = await both(serve, {"503": 1.0}, retry_config(attempts=9))
    assert attempts(grpcio_up) == attempts(kit_up) == 5
    assert grpcio_up.stats()["previous_attempts"] == kit_up.stats()["previous_attempts"]


async def test_same_pushback_is_waited(serve: Serve) -> None:
    config = retry_config(["RESOURCE_EXHAUSTED"], attempts=3)
    (_, grpcio_up), (_, kit_up) = await both(serve, {"429": 1.0, "retry_after": 0.15}, config)
    for upstream in (grpcio_up, kit_up):
        times = [t for _, t in upstream.arrivals()]
        assert len(times) == 3
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= 0.15 for gap in gaps), gaps  # the pushback, not the 0.01-0.02 s backoff


@pytest.mark.parametrize("pushback", ["-1", "soon"])
async def test_same_stop_on_negative_or_malformed_pushback(serve: Serve, pushback: str) -> None:
    config = retry_config(["RESOURCE_EXHAUSTED"])
    (_, grpcio_up), (_, kit_up) = await both(serve, {"429": 1.0}, config, pushback=pushback)
    assert attempts(grpcio_up) == attempts(kit_up) == 1


async def test_same_throttling_stops_retries(serve: Serve) -> None:
    config = retry_config(throttling={"maxTokens": 10, "tokenRatio": 0.1})
    (grpcio_codes, grpcio_up), (kit_codes, kit_up) = await both(serve, {"503": 1.0}, config, calls=3)
    # 10 tokens: the first call's 5 failures leave 5 (not above half): every later call gets one attempt
    assert attempts(grpcio_up) == attempts(kit_up) == 7
    assert grpcio_codes == kit_codes == ["UNAVAILABLE"] * 3
