"""The resilient gRPC channel against the flaky gRPC upstream over real sockets (127.0.0.1)."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import grpc
import pytest
from grpc_kit_helpers import SERVICE, Serve, retry_config, scenario

from integration_kit.errors import BudgetExhausted, DeadlineExceeded, GaveUp, RetriesExhausted
from integration_kit.events import AttemptStarted, CallFinished, Recorder, RetryScheduled
from integration_kit.grpc import (
    AsyncResilientChannel,
    GrpcPermanentError,
    GrpcRateLimited,
    GrpcRefused,
    GrpcTransientError,
    GrpcUnavailable,
    ResilientChannel,
)
from integration_kit.policies.config import BreakerPolicy
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg

pytestmark = pytest.mark.anyio

DESCRIPTORS = [pb.DESCRIPTOR.services_by_name["Inventory"]]


def channel(
    target: str, config: dict[str, object], recorder: Recorder | None = None, **kw: object
) -> AsyncResilientChannel:
    return AsyncResilientChannel(
        target,
        tls=False,
        service_config=config,
        descriptors=DESCRIPTORS,
        hooks=[recorder] if recorder is not None else [],
        **kw,  # type: ignore[arg-type]
    )


async def test_retries_listed_codes_up_to_the_cap_of_five_with_attempt_metadata(serve: Serve) -> None:
    with serve(scenario({"503": 1.0})) as (target, upstream):
        async with channel(target, retry_config(attempts=9)) as ch:
            with pytest.raises(RetriesExhausted) as info:
                await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))
    assert isinstance(info.value.last_error, GrpcUnavailable)
    told = str(info.value)  # the RPC's path, no HTTP verb, the attempts counted once, the last attempt's status
    assert "(grpc://" in told
    assert "/inventory.v1.Inventory/GetItem)" in told
    assert "POST" not in told
    assert told.count("attempts") == 1
    assert told.endswith("after 5 attempts")
    assert "the last attempt: gRPC UNAVAILABLE" in told
    assert upstream.stats()["methods"] == {"GetItem": 5}  # maxAttempts 9 is capped at 5 (gRFC A6)
    assert upstream.stats()["previous_attempts"] == {"0": 1, "1": 1, "2": 1, "3": 1, "4": 1}


async def test_success_after_retries_reports_the_attempt(serve: Serve) -> None:
    with serve(scenario({"503": 0.5})) as (target, upstream):
        async with channel(target, retry_config()) as ch:
            stub = pbg.InventoryStub(ch)
            items = [await stub.GetItem(pb.GetItemRequest(sku=str(i))) for i in range(10)]
    assert all(item.stock == 42 for item in items)
    assert sum(upstream.stats()["methods"].values()) == sum(item.attempt for item in items) > 10


async def test_unlisted_code_is_not_retried(serve: Serve) -> None:
    with serve(scenario({"500": 1.0})) as (target, upstream):
        async with channel(target, retry_config()) as ch:
            with pytest.raises(GrpcPermanentError) as info:
                await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))
    assert info.value.code is grpc.StatusCode.INTERNAL
    assert info.value.status == 13
    assert upstream.stats()["methods"] == {"GetItem": 1}


async def test_pushback_is_waited_and_makes_rate_limited(serve: Serve) -> None:
    recorder = Recorder()
    with serve(scenario({"429": 1.0, "retry_after": 0.05})) as (target, upstream):
        async with channel(target, retry_config(["RESOURCE_EXHAUSTED"], attempts=3), recorder) as ch:
            with pytest.raises(RetriesExhausted) as info:
                await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))
    assert isinstance(info.value.last_error, GrpcRateLimited)
    assert info.value.last_error.retry_after == 0.05
    retries = recorder.of(RetryScheduled)
    assert [(r.delay, r.reason) for r in retries] == [(0.05, "retry_after"), (0.05, "retry_after")]  # type: ignore[attr-defined]
    assert upstream.stats()["methods"] == {"GetItem": 3}


@pytest.mark.parametrize("pushback", ["-1", "soon", "1.5"])
async def test_negative_or_malformed_pushback_stops_retrying(serve: Serve, pushback: str) -> None:
    with serve(scenario({"429": 1.0}), pushback=pushback) as (target, upstream):
        async with channel(target, retry_config(["RESOURCE_EXHAUSTED"])) as ch:
            with pytest.raises(GrpcTransientError) as info:
                await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert upstream.stats()["methods"] == {"GetItem": 1}


async def test_one_deadline_over_all_attempts_each_sent_with_what_is_left(serve: Serve) -> None:
    recorder = Recorder()
    codes = ["UNAVAILABLE", "DEADLINE_EXCEEDED"]
    with serve(scenario({"hang": 1.0})) as (target, _):
        async with channel(target, retry_config(codes), recorder) as ch:
            began = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"), timeout=0.4)
            took = time.monotonic() - began
    assert 0.35 < took < 1.5
    timeouts = [e.timeout for e in recorder.of(AttemptStarted)]  # type: ignore[attr-defined]
    assert timeouts[0] == pytest.approx(0.4)
    assert all(t is not None and t <= 0.4 for t in timeouts)


async def test_config_timeout_is_the_deadline(serve: Serve) -> None:
    with serve(scenario({"hang": 1.0})) as (target, _):
        async with channel(target, retry_config(timeout="0.2s")) as ch:
            began = time.monotonic()
            with pytest.raises(DeadlineExceeded) as info:
                await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))
    assert time.monotonic() - began < 1.5
    assert isinstance(info.value.last_error, GrpcPermanentError)
    assert info.value.last_error.code is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_non_idempotent_method_is_not_retried_once_the_server_saw_it(serve: Serve) -> None:
    with serve(scenario({"503": 1.0})) as (target, upstream):
        async with channel(target, retry_config()) as ch:
            with pytest.raises(GrpcUnavailable):
                await pbg.InventoryStub(ch).Reserve(pb.ReserveRequest(sku="a", quantity=1))
    assert upstream.stats()["methods"] == {"Reserve": 1}


async def test_non_idempotent_method_with_a_request_id_is_retried_and_deduplicated(serve: Serve) -> None:
    with serve(scenario({"503": 0.6})) as (target, upstream):
        async with channel(target, retry_config()) as ch:
            stub = pbg.InventoryStub(ch)
            made = []
            for i in range(6):
                metadata = (("x-request-id", f"r-{i}"),)
                with contextlib.suppress(GaveUp):
                    made.append(await stub.Reserve(pb.ReserveRequest(sku="a", quantity=i), metadata=metadata))
    assert upstream.stats()["methods"]["Reserve"] > 6  # retried
    assert all(r.request_id.startswith("r-") for r in made)


async def test_a_request_that_never_left_is_retried_for_any_method() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recorder = Recorder()
    async with channel(f"127.0.0.1:{port}", retry_config(attempts=3), recorder) as ch:
        with pytest.raises(RetriesExhausted) as info:
            await pbg.InventoryStub(ch).Reserve(pb.ReserveRequest(sku="a", quantity=1), timeout=5)
    assert isinstance(info.value.last_error, GrpcUnavailable)
    assert len(recorder.of(AttemptStarted)) == 3


async def test_throttling_stops_retries_with_a6_tokens(serve: Serve) -> None:
    config = retry_config(throttling={"maxTokens": 10, "tokenRatio": 0.1})
    with serve(scenario({"503": 1.0})) as (target, upstream):
        async with channel(target, config) as ch:
            stub = pbg.InventoryStub(ch)
            with pytest.raises(RetriesExhausted):
                await stub.GetItem(pb.GetItemRequest(sku="a"))  # 10 -> 5 tokens in 5 attempts
            with pytest.raises(BudgetExhausted):
                await stub.GetItem(pb.GetItemRequest(sku="a"))  # 4 tokens: no retry
    assert upstream.stats()["methods"] == {"GetItem": 6}


async def test_breaker_per_service_opens_and_rejects(serve: Serve) -> None:
    breaker = BreakerPolicy(failure_rate_threshold=0.5, window_size=4, minimum_calls=4, wait_in_open=60)
    with serve(scenario({"500": 1.0})) as (target, upstream):
        async with channel(target, retry_config(), breaker=breaker) as ch:
            stub = pbg.InventoryStub(ch)
            errors = []
            for _ in range(8):
                try:
                    await stub.GetItem(pb.GetItemRequest(sku="a"))
                except Exception as exc:
                    errors.append(type(exc).__name__)
            assert list(ch.breakers) == [SERVICE]
    assert errors[:4] == ["GrpcPermanentError"] * 4
    assert set(errors[4:]) == {"CircuitOpenError"}
    assert upstream.stats()["methods"] == {"GetItem": 4}


async def test_hedging_sends_copies_and_the_first_answer_wins(serve: Serve) -> None:
    hedged = {
        "methodConfig": [{"name": [{"service": SERVICE}], "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.05s"}}]
    }
    recorder = Recorder()
    with serve(scenario(latency=0.3)) as (target, upstream):
        async with channel(target, hedged, recorder) as ch:
            stub = pbg.InventoryStub(ch)
            item = await stub.GetItem(pb.GetItemRequest(sku="a"))
            await stub.Reserve(pb.ReserveRequest(sku="a", quantity=1))  # not idempotent: never hedged
    assert item.attempt == 1  # the first copy answered first
    assert upstream.stats()["methods"] == {"GetItem": 3, "Reserve": 1}
    assert upstream.stats()["previous_attempts"] == {"0": 2, "1": 1, "2": 1}
    finished = recorder.of(CallFinished)
    assert [e.ok for e in finished] == [True, True]  # type: ignore[attr-defined]


async def test_hedging_rescues_a_hanging_first_copy(serve: Serve) -> None:
    hedged = {
        "methodConfig": [{"name": [{"service": SERVICE}], "hedgingPolicy": {"maxAttempts": 4, "hedgingDelay": "0.05s"}}]
    }
    with serve(scenario({"hang": 0.5})) as (target, _):
        async with channel(target, hedged) as ch:
            stub = pbg.InventoryStub(ch)
            began = time.monotonic()
            for i in range(6):
                await stub.GetItem(pb.GetItemRequest(sku=str(i)), timeout=3)
    assert time.monotonic() - began < 3  # no call waited for its hanging copy


async def test_server_stream_is_retried_until_it_commits_then_fails_as_it_comes(serve: Serve) -> None:
    with serve(scenario({"503": 0.5}), break_streams_after=2) as (target, upstream):
        async with channel(target, retry_config()) as ch:
            stub = pbg.InventoryStub(ch)
            seen: list[int] = []
            for _ in range(4):  # resume from the last cursor after each committed stream breaks
                try:
                    async for update in stub.WatchStock(
                        pb.WatchStockRequest(sku="a", after=seen[-1] if seen else 0, count=3)
                    ):
                        seen.append(update.cursor)
                    break
                except GrpcUnavailable:
                    continue
    assert seen == [1, 2, 3, 4, 5, 6, 7, 8]
    assert upstream.stats()["methods"]["WatchStock"] >= 4


async def test_health_service_is_served(serve: Serve) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with serve(scenario()) as (target, _):
        async with grpc.aio.insecure_channel(target) as raw:
            reply = await health_pb2_grpc.HealthStub(raw).Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_sync_channel_retries_through_the_same_engine(serve: Serve) -> None:
    with (
        serve(scenario({"503": 1.0})) as (target, upstream),
        ResilientChannel(target, tls=False, service_config=retry_config(attempts=3), descriptors=DESCRIPTORS) as ch,
    ):
        with pytest.raises(RetriesExhausted):
            pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))
        with pytest.raises(GrpcUnavailable):
            pbg.InventoryStub(ch).Reserve(pb.ReserveRequest(sku="a", quantity=1))
    assert upstream.stats()["methods"] == {"GetItem": 3, "Reserve": 1}
    assert upstream.stats()["previous_attempts"] == {"0": 2, "1": 1, "2": 1}


async def test_client_stream_is_retried_with_its_buffered_requests(serve: Serve) -> None:
    def items(n: int) -> Any:
        return (pb.GetItemRequest(sku=f"sku-{i}") for i in range(n))  # a generator: it can be read only once

    with serve(scenario({"503": 0.6})) as (target, upstream):
        async with channel(target, retry_config()) as ch:
            stub = pbg.InventoryStub(ch)
            answers = []
            for _ in range(5):
                with contextlib.suppress(GaveUp):
                    answers.append(await stub.CountItems(items(20)))
    assert answers
    assert all(a.stock == 20 for a in answers)  # every attempt, retries included, sent all 20 requests
    assert any(a.attempt > 1 for a in answers)
    assert upstream.stats()["methods"]["CountItems"] > 5


async def test_client_stream_past_its_buffer_commits_and_is_not_retried(serve: Serve) -> None:
    async def items() -> Any:
        for i in range(50):
            yield pb.GetItemRequest(sku=f"sku-{i}")

    with serve(scenario({"503": 1.0})) as (target, upstream):
        async with channel(target, retry_config(), retry_buffer=100) as ch:  # about 10 requests fit
            with pytest.raises(GrpcUnavailable):
                await pbg.InventoryStub(ch).CountItems(items())
        async with channel(target, retry_config(attempts=3)) as ch:  # the default buffer holds them all
            with pytest.raises(RetriesExhausted):
                await pbg.InventoryStub(ch).CountItems(items())
    assert upstream.stats()["methods"] == {"CountItems": 1 + 3}


async def test_the_service_config_keys_left_to_grpcio_reach_grpcio_which_accepts_them(serve: Serve) -> None:
    config = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "loadBalancingPolicy": "round_robin",
        "healthCheckConfig": {"serviceName": ""},
        "methodConfig": [
            {
                "name": [{"service": SERVICE}],
                "timeout": "2s",
                "waitForReady": True,
                "maxRequestMessageBytes": 1048576,
                "maxResponseMessageBytes": 1048576,
            }
        ],
    }
    with serve(scenario()) as (target, upstream):
        async with channel(target, config) as ch:
            assert (await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))).sku == "a"
        # grpcio validates them itself: the same config with a bad loadBalancingConfig is refused by grpcio
        async with channel(target, {**config, "loadBalancingConfig": "round_robin"}) as ch:
            with pytest.raises(GrpcRefused) as info:
                await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))
    assert "loadBalancingConfig" in str(info.value)
    assert upstream.stats()["methods"] == {"GetItem": 1}
