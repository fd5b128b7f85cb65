"""Streaming RPCs on both channels over the flaky grpc.aio upstream (127.0.0.1): the sync channel's server and client
streams, and bidirectional streams on both, under the engine until they commit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from concurrent import futures

import grpc
import pytest
from grpc_kit_helpers import Serve, retry_config, scenario

from integration_kit.errors import GaveUp, RetriesExhausted
from integration_kit.events import CallFinished, Recorder
from integration_kit.grpc import AsyncResilientChannel, GrpcUnavailable, MetadataCredential, ResilientChannel
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg

DESCRIPTORS = [pb.DESCRIPTOR.services_by_name["Inventory"]]


def sync_channel(target: str, config: dict[str, object], **kw: object) -> ResilientChannel:
    return ResilientChannel(target, tls=False, service_config=config, descriptors=DESCRIPTORS, **kw)  # type: ignore[arg-type]


def watch(n: int) -> Iterator[pb.WatchStockRequest]:
    return (pb.WatchStockRequest(sku=f"sku-{i}") for i in range(n))  # a generator: it can be read only once


def test_sync_server_stream_is_retried_until_it_commits_then_fails_as_it_comes(serve: Serve) -> None:
    recorder = Recorder()
    with (
        serve(scenario({"503": 0.5}), break_streams_after=2) as (target, upstream),
        sync_channel(target, retry_config(), hooks=[recorder]) as ch,
    ):
        stub = pbg.InventoryStub(ch)
        seen: list[int] = []
        for _ in range(4):  # resume from the last cursor after each committed stream breaks
            try:
                for update in stub.WatchStock(pb.WatchStockRequest(sku="a", after=seen[-1] if seen else 0, count=3)):
                    seen.append(update.cursor)
                break
            except GrpcUnavailable:
                continue
    assert seen == [1, 2, 3, 4, 5, 6, 7, 8]
    calls = recorder.of(CallFinished)
    assert all(e.ok for e in calls)  # type: ignore[attr-defined]  # the engine's call ends at the commit
    assert sum(e.attempts for e in calls) == upstream.stats()["methods"]["WatchStock"]  # type: ignore[attr-defined]
    assert any(e.attempts > 1 for e in calls)  # type: ignore[attr-defined]


def test_sync_client_stream_is_retried_with_its_buffered_requests(serve: Serve) -> None:
    def items(n: int) -> Iterator[pb.GetItemRequest]:
        return (pb.GetItemRequest(sku=f"sku-{i}") for i in range(n))

    with serve(scenario({"503": 0.6})) as (target, upstream), sync_channel(target, retry_config()) as ch:
        answers = []
        for _ in range(5):
            with contextlib.suppress(GaveUp):
                answers.append(pbg.InventoryStub(ch).CountItems(items(20)))
    assert answers
    assert all(a.stock == 20 for a in answers)  # every attempt, retries included, sent all 20 requests
    assert any(a.attempt > 1 for a in answers)
    assert upstream.stats()["methods"]["CountItems"] > 5


def test_sync_client_stream_past_its_buffer_commits_and_is_not_retried(serve: Serve) -> None:
    def items() -> Iterator[pb.GetItemRequest]:
        return (pb.GetItemRequest(sku=f"sku-{i}") for i in range(50))

    with serve(scenario({"503": 1.0})) as (target, upstream):
        with sync_channel(target, retry_config(), retry_buffer=100) as ch, pytest.raises(GrpcUnavailable):
            pbg.InventoryStub(ch).CountItems(items())
        with sync_channel(target, retry_config(attempts=3)) as ch, pytest.raises(RetriesExhausted):
            pbg.InventoryStub(ch).CountItems(items())
    assert upstream.stats()["methods"] == {"CountItems": 1 + 3}


def test_sync_bidirectional_stream_is_retried_with_its_requests_until_it_commits(serve: Serve) -> None:
    with serve(scenario({"503": 0.5})) as (target, upstream), sync_channel(target, retry_config()) as ch:
        runs = []
        for _ in range(6):
            with contextlib.suppress(GaveUp):
                runs.append([u.sku for u in pbg.InventoryStub(ch).EchoStock(watch(4))])
    assert runs
    assert all(run == ["sku-0", "sku-1", "sku-2", "sku-3"] for run in runs)  # a retry resent the buffered requests
    assert upstream.stats()["methods"]["EchoStock"] > len(runs)


def test_sync_bidirectional_stream_fails_as_it_comes_after_the_commit(serve: Serve) -> None:
    with (
        serve(scenario(), break_streams_after=2) as (target, upstream),
        sync_channel(target, retry_config()) as ch,
    ):
        updates = pbg.InventoryStub(ch).EchoStock(watch(5))
        seen = [next(updates).cursor, next(updates).cursor]
        with pytest.raises(GrpcUnavailable):
            next(updates)
    assert seen == [1, 2]
    assert upstream.stats()["methods"] == {"EchoStock": 1}  # committed: not retried


def test_a_sync_channel_refuses_an_async_request_iterator(serve: Serve) -> None:
    async def items() -> AsyncIterator[pb.GetItemRequest]:
        yield pb.GetItemRequest(sku="a")

    with (
        serve(scenario()) as (target, upstream),
        sync_channel(target, retry_config()) as ch,
        pytest.raises(TypeError, match="async iterable"),
    ):
        pbg.InventoryStub(ch).CountItems(items())
    assert upstream.stats()["methods"] == {}


@pytest.mark.anyio
async def test_async_bidirectional_stream_is_retried_until_it_commits(serve: Serve) -> None:
    async def updates() -> AsyncIterator[pb.WatchStockRequest]:
        for i in range(4):
            yield pb.WatchStockRequest(sku=f"sku-{i}")

    with serve(scenario({"503": 0.5})) as (target, upstream):
        async with AsyncResilientChannel(
            target, tls=False, service_config=retry_config(), descriptors=DESCRIPTORS
        ) as ch:
            runs = []
            for _ in range(6):
                with contextlib.suppress(GaveUp):
                    runs.append([u.sku async for u in pbg.InventoryStub(ch).EchoStock(updates())])
    assert runs
    assert all(run == ["sku-0", "sku-1", "sku-2", "sku-3"] for run in runs)
    assert upstream.stats()["methods"]["EchoStock"] > len(runs)


CANARY = "canary-5f1e-stream-token"


class _CarelessStream(pbg.InventoryServicer):
    """A partner that breaks a committed stream and echoes the caller's credential in the status details."""

    def WatchStock(self, request: pb.WatchStockRequest, context: grpc.ServicerContext) -> Iterator[pb.StockUpdate]:
        yield pb.StockUpdate(sku=request.sku, cursor=1)
        seen = dict(context.invocation_metadata() or ())
        context.abort(grpc.StatusCode.UNAVAILABLE, f"bad token {seen.get('authorization')}")


def test_a_broken_sync_stream_never_shows_the_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVENTORY_TOKEN", CANARY)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pbg.add_InventoryServicer_to_server(_CarelessStream(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    recorder = Recorder()
    try:
        with sync_channel(
            f"127.0.0.1:{port}", retry_config(), credential=MetadataCredential("INVENTORY_TOKEN"), hooks=[recorder]
        ) as ch:
            updates = pbg.InventoryStub(ch).WatchStock(pb.WatchStockRequest(sku="a"))
            assert next(updates).cursor == 1
            with pytest.raises(GrpcUnavailable) as info:
                next(updates)
    finally:
        server.stop(0)
    assert "[REDACTED]" in info.value.details  # the partner did echo it; the kit removed it
    for text in (str(info.value), repr(info.value), info.value.details, *(str(e) for e in recorder.events)):
        assert CANARY not in text
