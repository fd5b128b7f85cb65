"""TLS by default, plaintext only to loopback or on request, credentials from the environment, and no secret in
any event, log line or error (a canary over a real server that echoes the credential in its status details)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_kit_helpers import Serve, retry_config, scenario

from integration_kit.errors import ConfigurationError, IntegrationError, PermanentError
from integration_kit.events import LoggingHook, Recorder
from integration_kit.grpc import AsyncResilientChannel, GrpcTlsError, MetadataCredential, ResilientChannel
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg

pytestmark = pytest.mark.anyio

CANARY = "grpc-canary-5e1d0c"


def test_plaintext_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        ResilientChannel("partner.example.com:443", tls=False)
    assert info.value.field == "tls"
    ResilientChannel("partner.example.com:443", tls=False, allow_plaintext=True).close()
    ResilientChannel("localhost:50051", tls=False).close()
    ResilientChannel("[::1]:50051", tls=False).close()
    ResilientChannel("partner.example.com:443").close()  # TLS by default


def test_credential_comes_from_a_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INVENTORY_TOKEN", raising=False)
    with pytest.raises(ConfigurationError) as info:
        ResilientChannel("localhost:1", tls=False, credential=MetadataCredential("INVENTORY_TOKEN"))
    assert "INVENTORY_TOKEN" in info.value.message
    for bad in ("1TOKEN", "A-B", ""):
        with pytest.raises(ConfigurationError):
            MetadataCredential(bad)
    with pytest.raises(ConfigurationError):
        MetadataCredential("TOKEN", key="grpc-secret")
    monkeypatch.setenv("INVENTORY_TOKEN", CANARY)
    channel = ResilientChannel("localhost:1", tls=False, credential=MetadataCredential("INVENTORY_TOKEN"))
    assert CANARY not in repr(channel)
    assert CANARY not in repr(MetadataCredential("INVENTORY_TOKEN"))
    rpc = channel._begin(channel._plan("/a.B/C", hedged=False), "request", None, None)
    assert ("authorization", f"Bearer {CANARY}") in rpc.metadata  # sent...
    assert CANARY not in repr(rpc)  # ...but never shown
    rpc.calls.close()
    channel.close()


class _Echo(pbg.InventoryServicer):
    """A careless partner: it echoes the caller's metadata in its status details."""

    async def GetItem(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        seen = dict(context.invocation_metadata() or ())
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"bad token {seen.get('authorization')}")


@pytest.fixture
async def echo() -> Iterator[str]:
    server = grpc.aio.server()
    pbg.add_InventoryServicer_to_server(_Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


async def test_the_credential_never_reaches_events_logs_or_errors(
    echo: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("INVENTORY_TOKEN", CANARY)
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    config = {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.01s",
                    "backoffMultiplier": 1,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    async with AsyncResilientChannel(
        echo,
        tls=False,
        service_config=config,
        credential=MetadataCredential("INVENTORY_TOKEN"),
        idempotency={"inventory.v1.Inventory/GetItem": "NO_SIDE_EFFECTS"},
        hooks=[recorder, LoggingHook()],
    ) as channel:
        with pytest.raises(IntegrationError) as info:
            await pbg.InventoryStub(channel).GetItem(pb.GetItemRequest(sku="a"))
    error = info.value
    texts = [str(error), repr(error), *(str(e) for e in recorder.events), caplog.text]
    last = getattr(error, "last_error", None)
    texts += [str(last), getattr(last, "details", "")]
    assert "[REDACTED]" in getattr(last, "details", "")  # the partner did echo it; the kit removed it
    assert len(recorder.events) > 3
    for text in texts:
        assert CANARY not in text
    assert error.__cause__ is None or CANARY not in str(error.__cause__)


DESCRIPTORS = [pb.DESCRIPTOR.services_by_name["Inventory"]]


def _told_tls(error: GrpcTlsError, upstream_methods: dict[str, int]) -> None:
    text = str(error)
    assert isinstance(error, PermanentError)
    assert len(error.attempts) == 1  # not retried, though the policy retries UNAVAILABLE 5 times
    assert "TLS handshake failed" in text
    assert "tls=False" in text
    assert "/inventory.v1.Inventory/GetItem" in text
    assert "POST" not in text
    assert "attempts" not in text
    assert upstream_methods == {}  # the plaintext server never saw a call


def test_a_tls_handshake_with_a_plaintext_server_is_permanent_and_hints_tls_false(serve: Serve) -> None:
    with serve(scenario()) as (target, upstream):
        channel = ResilientChannel(target, tls=True, service_config=retry_config(), descriptors=DESCRIPTORS)
        with pytest.raises(GrpcTlsError) as info:
            pbg.InventoryStub(channel).GetItem(pb.GetItemRequest(sku="a"))
        channel.close()
        _told_tls(info.value, upstream.stats()["methods"])


async def test_the_async_channel_tells_a_failed_tls_handshake_the_same_way(serve: Serve) -> None:
    with serve(scenario()) as (target, upstream):
        async with AsyncResilientChannel(
            target, tls=True, service_config=retry_config(), descriptors=DESCRIPTORS
        ) as channel:
            with pytest.raises(GrpcTlsError) as info:
                await pbg.InventoryStub(channel).GetItem(pb.GetItemRequest(sku="a"))
        _told_tls(info.value, upstream.stats()["methods"])
