"""Scenarios that name gRPC statuses: loading, the simulator, and the live grpc.aio upstream playing them."""

from __future__ import annotations

import contextlib
import random

import grpc
import pytest
from grpc_kit_helpers import SERVICE, Serve, retry_config, scenario

from integration_kit.errors import ConfigurationError, IntegrationError, RetriesExhausted
from integration_kit.events import CallFinished, Recorder
from integration_kit.grpc import AsyncResilientChannel, GrpcPermanentError, GrpcRateLimited
from integration_kit.grpc.rpc import MAX_TRANSPARENT
from integration_kit.grpc.status import GrpcRefused
from integration_kit.policies.config import RetryPolicy
from integration_kit.sim.faults import GRPC_FAULTS, GRPC_STAND_INS
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg
from integration_kit.sim.hedged import GrpcAttempts
from integration_kit.sim.scenarios import FAULT_ORDER, FaultKind, Scenario, bundled_scenarios
from integration_kit.sim.simulate import simulate

NO_RETRY = {"methodConfig": [{"name": [{"service": SERVICE}], "timeout": "2s"}]}


def test_http_faults_keep_their_codes_and_grpc_statuses_come_after() -> None:
    assert FAULT_ORDER[:8] == ("500", "502", "503", "504", "429", "refused", "reset", "hang")
    assert (
        FAULT_ORDER[8:] == GRPC_FAULTS == ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL", "ABORTED", "REFUSED_STREAM")
    )
    stand_ins = {"UNAVAILABLE": "503", "RESOURCE_EXHAUSTED": "429", "INTERNAL": "500", "ABORTED": "409"}
    assert stand_ins | {"REFUSED_STREAM": "refused"} == GRPC_STAND_INS


def test_an_http_scenario_draws_no_grpc_status() -> None:
    played = bundled_scenarios()["brownout"]
    rng = random.Random(3)
    decisions = [played.decide(t * 0.5, rng) for t in range(400)]
    assert all(d.grpc is None for d in decisions)
    assert {d.status for d in decisions} <= {0, 200, 500, 502, 503, 504, 429}


@pytest.mark.parametrize(
    ("name", "fault", "status"),
    [
        ("UNAVAILABLE", FaultKind.RESPOND, 503),
        ("RESOURCE_EXHAUSTED", FaultKind.RESPOND, 429),
        ("INTERNAL", FaultKind.RESPOND, 500),
        ("ABORTED", FaultKind.RESPOND, 409),
        ("REFUSED_STREAM", FaultKind.REFUSE, 0),
    ],
)
def test_a_mix_names_a_grpc_status_with_its_http_stand_in(name: str, fault: FaultKind, status: int) -> None:
    decision = scenario({name: 1.0, "retry_after": 0.3}).decide(1.0, random.Random(0))
    assert (decision.grpc, decision.fault, decision.status) == (name, fault, status)
    assert decision.retry_after == (0.3 if name == "RESOURCE_EXHAUSTED" else None)


@pytest.mark.parametrize("key", ["UNAVAILBLE", "unavailable", "DEADLINE_EXCEEDED"])
def test_an_unknown_status_name_is_a_configuration_error_naming_the_field(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Scenario.from_mapping({"name": "x", "phases": [{"duration": 1, "errors": {key: 0.1}}]}, source="s.toml")
    assert info.value.field == f"phases[0].errors.{key}"
    assert key in str(info.value)
    assert "UNAVAILABLE" in str(info.value)


def test_grpc_probabilities_count_towards_the_sum() -> None:
    with pytest.raises(ConfigurationError) as info:
        scenario({"503": 0.6, "UNAVAILABLE": 0.6})
    assert "sum to at most 1" in str(info.value)
    with pytest.raises(ConfigurationError) as bad:
        scenario({"ABORTED": 1.5})
    assert bad.value.field == "phases[0].errors.ABORTED"


def test_the_simulator_plays_the_stand_ins() -> None:
    mix = scenario({"UNAVAILABLE": 0.5, "ABORTED": 0.25}, latency=0.01)
    result = simulate(mix, rate=200, duration=5, seed=2, retry=RetryPolicy.disabled(), breaker=None, budget=None)
    statuses = result.to_frame()["status"].dropna()
    assert set(statuses.astype(int)) <= {200, 503, 409}
    assert 0.4 < (statuses == 503).mean() < 0.6


def test_the_simulator_resends_a_refused_stream_without_using_an_attempt() -> None:
    refused = scenario({"REFUSED_STREAM": 0.5}, latency=0.01)
    options = {"rate": 100.0, "duration": 10.0, "seed": 4, "retry": RetryPolicy.disabled(), "breaker": None}
    plain = simulate(refused, **options)  # type: ignore[arg-type]
    resent = simulate(refused, grpc=GrpcAttempts(transparent_retries=MAX_TRANSPARENT), **options)  # type: ignore[arg-type]
    assert plain.summary.amplification == resent.summary.amplification == 1.0  # one attempt per call
    assert 0.4 < 1 - plain.summary.success_rate < 0.6
    assert 1 - resent.summary.success_rate < 0.5 ** (MAX_TRANSPARENT + 1) * 2  # four refusals in a row
    assert resent.server.received == resent.summary.succeeded  # a refused stream is never received
    with pytest.raises(ValueError, match="transparent_retries"):
        GrpcAttempts(transparent_retries=-1)


def channel(target: str, config: object, recorder: Recorder | None = None) -> AsyncResilientChannel:
    hooks = [recorder] if recorder is not None else []
    descriptors = [pb.DESCRIPTOR.services_by_name["Inventory"]]
    return AsyncResilientChannel(target, tls=False, service_config=config, hooks=hooks, descriptors=descriptors)  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "error", "code"),
    [
        ("UNAVAILABLE", GrpcPermanentError, grpc.StatusCode.UNAVAILABLE),  # not retried here: no retry policy
        ("INTERNAL", GrpcPermanentError, grpc.StatusCode.INTERNAL),
        ("ABORTED", GrpcRefused, grpc.StatusCode.ABORTED),
        ("RESOURCE_EXHAUSTED", GrpcPermanentError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
async def test_the_live_upstream_plays_each_status_as_itself(
    serve: Serve, name: str, error: type[Exception], code: grpc.StatusCode
) -> None:
    with serve(scenario({name: 1.0})) as (target, upstream):
        async with channel(target, NO_RETRY) as ch:
            with pytest.raises(error) as info:
                await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))
    assert info.value.code is code  # type: ignore[attr-defined]
    assert name in info.value.details  # type: ignore[attr-defined]
    assert upstream.stats()["methods"] == {"GetItem": 1}


@pytest.mark.anyio
async def test_resource_exhausted_carries_the_mix_pushback(serve: Serve) -> None:
    with serve(scenario({"RESOURCE_EXHAUSTED": 1.0, "retry_after": 0.05})) as (target, upstream):
        async with channel(target, retry_config(["RESOURCE_EXHAUSTED"], attempts=2)) as ch:
            with pytest.raises(RetriesExhausted) as info:
                await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))
    assert isinstance(info.value.last_error, GrpcRateLimited)
    assert info.value.last_error.retry_after == 0.05
    assert upstream.stats()["methods"] == {"GetItem": 2}


@pytest.mark.anyio
async def test_a_refused_stream_is_resent_transparently_and_bounded(serve: Serve) -> None:
    recorder = Recorder()
    with serve(scenario({"REFUSED_STREAM": 1.0})) as (target, upstream):
        async with channel(target, NO_RETRY, recorder) as ch:
            with pytest.raises(GrpcPermanentError) as info:  # UNAVAILABLE, which this config does not retry
                await pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="a"))
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert "REFUSED_STREAM" in info.value.details
    stats = upstream.stats()
    assert stats["methods"] == {"GetItem": MAX_TRANSPARENT + 1}  # the first send and three resends, then it stops
    assert (stats["refused"], stats["received"]) == (MAX_TRANSPARENT + 1, 0)
    assert [e.attempts for e in recorder.of(CallFinished)] == [1]  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_non_idempotent_call_survives_refused_streams(serve: Serve) -> None:
    recorder = Recorder()
    with serve(scenario({"REFUSED_STREAM": 0.5})) as (target, upstream):
        async with channel(target, NO_RETRY, recorder) as ch:
            stub = pbg.InventoryStub(ch)
            for i in range(20):
                metadata = (("x-fault-key", str(i + 1)),)
                with contextlib.suppress(IntegrationError):
                    await stub.Reserve(pb.ReserveRequest(sku="a", quantity=1), metadata=metadata)
    calls = recorder.of(CallFinished)
    assert all(e.attempts == 1 for e in calls)  # type: ignore[attr-defined]
    assert sum(e.ok for e in calls) >= 17  # type: ignore[attr-defined]  # 1 - 0.5**4 each
    assert upstream.stats()["refused"] > 0
