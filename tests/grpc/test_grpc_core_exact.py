"""What both gRPC channels share (:class:`~integration_kit.grpc.core.ChannelCore`) to the letter: the checks of its
arguments (``breaker_scope``, ``idempotency``), the channel options it hands grpcio (grpc-core's retries off, the
service config, unless the caller set them), the engine of each service (or method) with every policy it is given,
the idempotency levels from descriptors then the explicit mapping, each method's plan (config, safety, hedging or
retry, deadline, the RPC's URL) and the start of each call (its metadata, its request id as the idempotency key,
its deadline). Pure logic over a plaintext loopback target (no server: nothing is sent), plus one committed stream
broken by a real loopback server for the error a caller reads."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_kit_helpers import Serve, retry_config, scenario

from integration_kit.clock import ManualClock, SystemClock
from integration_kit.engine.actions import Send
from integration_kit.errors import ConfigurationError, IntegrationError
from integration_kit.events import AttemptStarted, Recorder
from integration_kit.grpc import AsyncResilientChannel, GrpcUnavailable, MetadataCredential, ResilientChannel
from integration_kit.grpc.config import HedgingPolicy, Idempotency, ServiceConfig
from integration_kit.grpc.core import ChannelCore
from integration_kit.grpc.status import verdict
from integration_kit.policies.config import BreakerPolicy, Limits
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg

TARGET = "127.0.0.1:1"
GET = "/inventory.v1.Inventory/GetItem"
RESERVE = "/inventory.v1.Inventory/Reserve"
DESCRIPTORS = [pb.DESCRIPTOR.services_by_name["Inventory"]]
HEDGED = {
    "methodConfig": [
        {
            "name": [{"service": "inventory.v1.Inventory"}],
            "timeout": "2s",
            "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.1s", "nonFatalStatusCodes": ["UNAVAILABLE"]},
        }
    ]
}


class ScaledClock(ManualClock):
    """A manual clock that says how many of its seconds pass in one real second."""

    time_scale = 1.0


def core(**kw: Any) -> ChannelCore:
    return ChannelCore(TARGET, tls=False, **kw)


def first(calls: Any) -> Send:
    action = next(calls)
    assert isinstance(action, Send)
    return action


# -- arguments ---------------------------------------------------------------------------------------------------


def test_the_breaker_scope_is_service_or_method() -> None:
    with pytest.raises(ConfigurationError) as info:
        core(breaker_scope="call")
    assert info.value.message == "breaker_scope must be 'service' or 'method', got 'call'"
    assert info.value.field == "breaker_scope"
    assert core(breaker_scope="method")._breaker_scope == "method"
    assert core()._breaker_scope == "service"


def test_an_unknown_idempotency_level_names_the_method_and_the_choices() -> None:
    with pytest.raises(ConfigurationError) as info:
        core(idempotency={"/a.B/C": "SAFE"})
    assert info.value.message == (
        "idempotency['/a.B/C'] must be one of NO_SIDE_EFFECTS, IDEMPOTENT, IDEMPOTENCY_UNKNOWN, got 'SAFE'"
    )
    assert info.value.field == "idempotency./a.B/C"
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_idempotency_comes_from_the_descriptors_then_the_mapping_which_wins() -> None:
    described = core(descriptors=DESCRIPTORS)
    assert described._levels == {
        "inventory.v1.Inventory/GetItem": Idempotency.NO_SIDE_EFFECTS,
        "inventory.v1.Inventory/Reserve": Idempotency.UNKNOWN,
        "inventory.v1.Inventory/WatchStock": Idempotency.NO_SIDE_EFFECTS,
        "inventory.v1.Inventory/CountItems": Idempotency.NO_SIDE_EFFECTS,
        "inventory.v1.Inventory/EchoStock": Idempotency.NO_SIDE_EFFECTS,
    }
    assert described.idempotency(GET) is Idempotency.NO_SIDE_EFFECTS
    assert described.idempotency(GET.lstrip("/")) is Idempotency.NO_SIDE_EFFECTS
    assert described.idempotency("/other.S/M") is Idempotency.UNKNOWN
    mapped = core(
        descriptors=DESCRIPTORS,
        idempotency={RESERVE: "IDEMPOTENT", "inventory.v1.Inventory/GetItem": Idempotency.UNKNOWN},
    )
    assert mapped.idempotency(RESERVE) is Idempotency.IDEMPOTENT
    assert mapped.idempotency(GET) is Idempotency.UNKNOWN
    assert core().idempotency(GET) is Idempotency.UNKNOWN
    assert core().idempotency(GET).safe is False


def test_every_proto_idempotency_option_has_its_level() -> None:
    from google.protobuf import descriptor_pb2, descriptor_pool

    levels = descriptor_pb2.MethodOptions.IdempotencyLevel
    proto = descriptor_pb2.FileDescriptorProto(name="levels_test.proto", package="lv", syntax="proto3")
    proto.message_type.add(name="M")
    service = proto.service.add(name="S")
    for name, level in [("Unknown", 0), ("Pure", 1), ("Repeatable", 2)]:
        method = service.method.add(name=name, input_type=".lv.M", output_type=".lv.M")
        method.options.idempotency_level = levels.Value(levels.Name(level))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    described = core(descriptors=[pool.FindServiceByName("lv.S")])
    assert described._levels == {
        "lv.S/Unknown": Idempotency.UNKNOWN,
        "lv.S/Pure": Idempotency.NO_SIDE_EFFECTS,
        "lv.S/Repeatable": Idempotency.IDEMPOTENT,
    }


def test_the_service_config_is_parsed_once_or_taken_as_given() -> None:
    given = ServiceConfig.parse(retry_config())
    assert core(service_config=given).config is given
    assert core(service_config=retry_config()).config == given
    assert core(service_config='{"methodConfig": []}').config.source == '{"methodConfig": []}'
    assert core().config == ServiceConfig()


def test_grpc_core_retries_are_off_and_grpcio_reads_the_same_service_config() -> None:
    config = ServiceConfig.parse(retry_config())
    assert core(service_config=config)._options == [("grpc.enable_retries", 0), ("grpc.service_config", config.source)]
    mine = ("grpc.max_receive_message_length", 1024)
    assert core(service_config=config, options=[mine])._options == [
        mine,
        ("grpc.enable_retries", 0),
        ("grpc.service_config", config.source),
    ]
    # What the caller set stays as it is, and is not set twice.
    assert core(options=[("grpc.enable_retries", 1)])._options == [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", "{}"),
    ]
    assert core(service_config=config, options=[("grpc.service_config", "{}")])._options == [
        ("grpc.service_config", "{}"),
        ("grpc.enable_retries", 0),
    ]


def test_what_the_core_keeps_of_its_arguments() -> None:
    clock = ScaledClock(5.0)
    clock.time_scale = 4.0
    rng = random.Random(3)
    made = ChannelCore(
        TARGET,
        name="inventory",
        tls=False,
        retry_buffer=123,
        health_checks=True,
        clock=clock,
        rng=rng,
        request_id_key="X-Idem-Key",
        service_config=retry_config(throttling={"maxTokens": 10, "tokenRatio": 0.5}),
    )
    assert (made.target, made.name, made.retry_buffer, made.health_checks) == (TARGET, "inventory", 123, True)
    assert made.clock is clock
    assert made._rng is rng
    assert made._time_scale == 4.0
    assert made._request_id_key == "x-idem-key"
    assert made.budget is not None
    assert made.budget.policy == made.config.throttling
    assert repr(made) == "ChannelCore(name='inventory', target='127.0.0.1:1')"
    plain = core()
    assert (plain.name, plain.retry_buffer, plain.health_checks, plain.budget) == ("grpc", 256 * 1024, False, None)
    assert isinstance(plain.clock, SystemClock)
    assert isinstance(plain._rng, random.Random)
    assert plain._time_scale == 1.0
    assert plain._request_id_key == "x-request-id"
    assert (plain._auth, plain._secrets) == ((), ())


def test_a_loaded_credential_is_the_first_metadata_and_its_token_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORE_TOKEN", "tok-9")
    made = core(credential=MetadataCredential("CORE_TOKEN"))
    assert made._auth == (("authorization", "Bearer tok-9"),)
    assert made._secrets == ("Bearer tok-9", "tok-9")
    rpc = made._begin(made._plan(GET, hedged=False), "req", None, [("x-a", "1")])
    assert rpc.metadata == (("authorization", "Bearer tok-9"), ("x-a", "1"))
    assert tuple(rpc.secrets) == ("Bearer tok-9", "tok-9")
    bare = made._begin(made._plan(GET, hedged=False), "req", None, None)
    assert bare.metadata == (("authorization", "Bearer tok-9"),)


# -- engines -----------------------------------------------------------------------------------------------------


def test_one_engine_per_service_with_every_policy_given() -> None:
    clock = ManualClock()
    rng = random.Random(1)
    recorder = Recorder()
    limits = Limits(max_concurrent=3)
    made = core(
        name="inv",
        breaker=BreakerPolicy(failure_threshold=2),
        limits=limits,
        deadline=7.0,
        clock=clock,
        rng=rng,
        hooks=[recorder],
        service_config=retry_config(throttling={"maxTokens": 10, "tokenRatio": 0.5}),
    )
    engine = made.engine(GET)
    assert made.engine("inventory.v1.Inventory/Reserve") is engine  # the same service, with or without the '/'
    assert made.engine("/other.v1.Other/Get") is not engine
    assert engine.name == "inv"
    assert engine.breaker is not None
    assert engine.breaker.name == "inventory.v1.Inventory"
    assert engine.breaker._clock is clock
    assert engine.breaker._failure_threshold == 2
    assert engine.budget is made.budget
    assert engine.budget is not None
    assert engine.limits is limits
    assert engine.deadline == 7.0
    assert engine.classifier is verdict
    assert engine.clock is clock
    assert engine.rng is rng
    assert engine.hooks == [recorder]
    assert made.breakers == {
        "inventory.v1.Inventory": engine.breaker,
        "other.v1.Other": made.engine("/other.v1.Other/Get").breaker,
    }


def test_with_the_method_scope_each_method_has_its_engine_and_breaker() -> None:
    made = core(breaker=BreakerPolicy(), breaker_scope="method")
    engine = made.engine(GET)
    assert made.engine(GET) is engine
    assert made.engine(RESERVE) is not engine
    assert engine.breaker is not None
    assert engine.breaker.name == GET
    assert list(made.breakers) == [GET, RESERVE]


def test_without_a_breaker_policy_no_engine_has_a_breaker() -> None:
    made = core()
    engine = made.engine(GET)
    assert engine.breaker is None
    assert engine.budget is None
    assert engine.deadline is None
    assert made.breakers == {}


def test_a_hook_added_later_reaches_every_engine_made_before_and_after() -> None:
    early, late = Recorder(), Recorder()
    made = core(hooks=[early])
    before = made.engine(GET)
    made.add_hook(late)
    after = made.engine("/other.v1.Other/Get")
    assert before.hooks == [early, late]
    assert after.hooks == [early, late]


def test_the_hooks_given_are_copied() -> None:
    hooks = [Recorder()]
    made = core(hooks=hooks)
    made.add_hook(Recorder())
    assert len(hooks) == 1


# -- plans -------------------------------------------------------------------------------------------------------


def test_a_plan_holds_the_methods_config_safety_and_url() -> None:
    made = core(service_config=retry_config(timeout="3s"), descriptors=DESCRIPTORS)
    plan = made._plan(GET, hedged=False)
    assert plan.method == GET
    assert plan.config is made.config.method(GET)
    assert plan.safe is True
    assert plan.hedging is None
    assert plan.retry is plan.config.retry
    assert plan.retry is not None
    assert plan.limit == 3.0
    assert plan.engine is made.engine(GET)
    assert plan.target == "grpc://127.0.0.1:1/inventory.v1.Inventory/GetItem"
    assert made._plan(RESERVE, hedged=False).safe is False
    tls = ChannelCore("127.0.0.1:1", tls=True)
    assert tls._plan(GET, hedged=False).target == "grpcs://127.0.0.1:1/inventory.v1.Inventory/GetItem"
    assert tls._plan(GET.lstrip("/"), hedged=False).target == "grpcs://127.0.0.1:1/inventory.v1.Inventory/GetItem"


def test_a_method_without_a_policy_or_timeout_has_one_attempt_and_the_channels_deadline() -> None:
    plan = core(deadline=4.0)._plan(GET, hedged=False)
    assert plan.retry is False
    assert plan.limit == 4.0
    assert core()._plan(GET, hedged=False).limit is None


def test_only_a_safe_hedged_call_hedges_and_then_it_does_not_retry() -> None:
    made = core(service_config=HEDGED, descriptors=DESCRIPTORS)
    hedged = made._plan(GET, hedged=True)
    assert hedged.hedging == HedgingPolicy(3, 0.1, frozenset({grpc.StatusCode.UNAVAILABLE}))
    assert hedged.retry is False
    assert made._plan(GET, hedged=False).hedging is None
    assert made._plan(RESERVE, hedged=True).hedging is None  # not idempotent: never hedged
    assert made._plan(RESERVE, hedged=True).safe is False


# -- the start of a call -----------------------------------------------------------------------------------------


def test_a_call_starts_with_its_plans_target_safety_and_deadline() -> None:
    recorder = Recorder()
    made = core(hooks=[recorder], service_config=retry_config(timeout="3s"), descriptors=DESCRIPTORS)
    plan = made._plan(GET, hedged=False)
    request = object()
    rpc = made._begin(plan, request, None, None)
    assert (rpc.method, rpc.request, rpc.metadata, rpc.config) == (GET, request, (), plan.config)
    assert rpc.time_scale == 1.0
    assert rpc.hedging is None
    assert rpc.breaker is None
    action = first(rpc.calls)
    assert (action.attempt, action.timeout, action.idempotency_key) == (1, 3.0, None)
    started = [e for e in recorder.events if isinstance(e, AttemptStarted)]
    assert [(e.method, e.target, e.timeout) for e in started] == [("POST", plan.target, 3.0)]


def test_a_call_given_a_timeout_uses_it_instead_of_the_methods() -> None:
    made = core(service_config=retry_config(timeout="3s"))
    rpc = made._begin(made._plan(GET, hedged=False), "req", 0.5, ())
    assert first(rpc.calls).timeout == 0.5


def test_an_unsafe_call_is_not_retried_and_a_safe_one_is() -> None:
    made = core(service_config=retry_config(), descriptors=DESCRIPTORS)
    unsafe = made._begin(made._plan(RESERVE, hedged=False), "req", None, ())
    first(unsafe.calls)
    failure = unsafe.failed(
        grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")
    )
    with pytest.raises(IntegrationError):
        unsafe.calls.send(failure)
    safe = made._begin(made._plan(GET, hedged=False), "req", None, ())
    first(safe.calls)
    assert isinstance(safe.calls.send(failure), object)  # a wait or the next attempt, not an error


def test_the_callers_request_id_is_the_calls_idempotency_key_whatever_its_case() -> None:
    recorder = Recorder()
    made = core(hooks=[recorder], request_id_key="X-Request-ID")
    plan = made._plan(RESERVE, hedged=False)
    keyed = made._begin(plan, "req", None, [("x-other", "o"), ("X-REQUEST-ID", "r-1"), ("x-request-id", "r-2")])
    assert first(keyed.calls).idempotency_key == "r-1"
    assert [e.idempotency_key for e in recorder.events if isinstance(e, AttemptStarted)] == ["r-1"]
    assert keyed.metadata == (("x-other", "o"), ("X-REQUEST-ID", "r-1"), ("x-request-id", "r-2"))
    binary = made._begin(plan, "req", None, (("x-request-id", b"r-3"),))
    assert first(binary.calls).idempotency_key == "b'r-3'"
    unkeyed = made._begin(plan, "req", None, [("x-other", "o")])
    assert first(unkeyed.calls).idempotency_key is None


def test_a_call_carries_the_breaker_and_the_hedging_of_its_plan() -> None:
    clock = ScaledClock()
    clock.time_scale = 2.0
    made = core(service_config=HEDGED, descriptors=DESCRIPTORS, breaker=BreakerPolicy(), clock=clock)
    plan = made._plan(GET, hedged=True)
    rpc = made._begin(plan, "req", None, ())
    assert rpc.hedging is plan.hedging
    assert rpc.hedging is not None
    assert rpc.breaker is plan.engine.breaker
    assert rpc.breaker is not None
    assert rpc.time_scale == 2.0


# -- a committed stream's end --------------------------------------------------------------------------------------


def test_a_broken_committed_stream_names_the_integration_and_the_rpcs_url(serve: Serve) -> None:
    # Bug (session 33): the error named the RPC by its bare method, '/inventory.v1.Inventory/WatchStock', where
    # every other error of the channel names it by its URL (docs/grpc.md), 'grpc://host:port/...'.
    with (
        serve(scenario(), break_streams_after=2) as (target, _),
        ResilientChannel(
            target, name="inv", tls=False, service_config=retry_config(), descriptors=DESCRIPTORS
        ) as channel,
    ):
        updates = pbg.InventoryStub(channel).WatchStock(pb.WatchStockRequest(sku="a", count=5))
        assert [u.cursor for u in [next(updates), next(updates)]] == [1, 2]
        with pytest.raises(GrpcUnavailable) as info:
            next(updates)
    error = info.value
    url = f"grpc://{target}/inventory.v1.Inventory/WatchStock"
    assert (error.integration, error.url, error.method) == ("inv", url, None)
    assert str(error) == f"[inv] gRPC UNAVAILABLE: stream broken (simulated) ({url})"
    assert error.__cause__ is None


@pytest.mark.anyio
async def test_an_async_broken_committed_stream_names_the_rpcs_url_too(serve: Serve) -> None:
    with serve(scenario(), break_streams_after=1) as (target, _):
        async with AsyncResilientChannel(
            target, name="inv", tls=False, service_config=retry_config(), descriptors=DESCRIPTORS
        ) as channel:
            seen: list[int] = []

            async def watch() -> None:
                async for update in pbg.InventoryStub(channel).WatchStock(pb.WatchStockRequest(sku="a", count=5)):
                    seen.append(update.cursor)

            with pytest.raises(GrpcUnavailable) as info:
                await watch()
    assert seen == [1]
    assert (info.value.integration, info.value.url) == ("inv", f"grpc://{target}/inventory.v1.Inventory/WatchStock")


def test_a_broken_stream_without_a_typed_error_is_a_type_error() -> None:
    made = core()
    rpc = SimpleNamespace(method=GET, failed=lambda exc: SimpleNamespace(error=ValueError("x")))
    failure = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())
    with pytest.raises(TypeError, match=r"^no typed error for <AioRpcError"):
        made._broken(rpc, failure)  # type: ignore[arg-type]


# -- the edges of names and defaults -----------------------------------------------------------------------------

XENON = "/X.v1.Xenon/Get"  # a service whose name starts with 'X': only the leading '/' is stripped


def test_only_the_leading_slash_of_a_method_is_stripped() -> None:
    made = core(breaker=BreakerPolicy(), idempotency={XENON: "IDEMPOTENT"}, service_config={"methodConfig": []})
    assert made.idempotency(XENON) is Idempotency.IDEMPOTENT
    assert made._levels == {"X.v1.Xenon/Get": Idempotency.IDEMPOTENT}
    assert made._plan(XENON, hedged=False).target == "grpc://127.0.0.1:1/X.v1.Xenon/Get"
    made.engine(XENON)
    assert list(made.breakers) == ["X.v1.Xenon"]


def test_a_bare_service_name_has_the_services_engine() -> None:
    made = core(breaker=BreakerPolicy())
    assert made.engine("inventory.v1.Inventory") is made.engine(GET)
    assert list(made.breakers) == ["inventory.v1.Inventory"]


def test_tls_is_the_default_and_plaintext_elsewhere_than_loopback_needs_an_opt_in() -> None:
    made = ChannelCore("127.0.0.1:1")
    assert made._plan(GET, hedged=False).target == "grpcs://127.0.0.1:1/inventory.v1.Inventory/GetItem"
    assert made._credentials is not None
    with pytest.raises(ConfigurationError):
        ChannelCore("partner.example.com:443", tls=False)
    opted = ChannelCore("partner.example.com:443", tls=False, allow_plaintext=True)
    assert opted._credentials is None


@pytest.mark.parametrize(
    ("prefix", "value", "secrets"),
    [
        ("Bearer ", "tok", ("Bearer tok", "tok")),
        ("", "tok", ("tok", "tok")),  # no scheme: the value is the token
        ("Token ", "a\tb", ("Token a\tb", "a\tb")),  # only a space parts the scheme from the token
    ],
)
def test_the_secrets_are_the_credentials_value_and_its_token(
    monkeypatch: pytest.MonkeyPatch, prefix: str, value: str, secrets: tuple[str, str]
) -> None:
    monkeypatch.setenv("CORE_TOKEN", value)
    assert core(credential=MetadataCredential("CORE_TOKEN", prefix=prefix))._secrets == secrets
