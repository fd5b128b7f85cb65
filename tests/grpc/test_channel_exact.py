"""The async resilient channel to the letter, against a scripted ``grpc.aio`` server on 127.0.0.1 and a
``ManualClock`` (no sleeps): each shape's answer, metadata and per-attempt timeout; a refused stream resent at most
three times with what is left of the attempt's time; a committed stream's messages, its end and its break (never
retried, the cause dropped); a client stream's buffered requests resent, committing past ``retry_buffer``; the
engine's backoff waited on the injected clock; health-checked probes bounded by the attempt's time; hedges on the
direct path only when there is nothing to hedge or gate; ``close`` with a grace; the errors a caller reads."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import grpc
import grpc.aio
import pytest
import trustme
from grpc_health.v1 import health_pb2
from grpc_script import BIDI, CLIENT, HEALTH, SERVER, SERVICE, UNARY, Script, scripted, spy

from integration_kit.clock import Clock, ManualClock, SystemClock
from integration_kit.errors import CircuitOpenError, DeadlineExceeded, IntegrationError, RetriesExhausted
from integration_kit.grpc import AsyncResilientChannel, GrpcPermanentError, GrpcUnavailable
from integration_kit.policies.config import BreakerPolicy

pytestmark = pytest.mark.anyio

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
INTERNAL = grpc.StatusCode.INTERNAL


def config(
    attempts: int = 3, *, timeout: str | None = None, initialBackoff: str = "1s", **policy: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": [{"service": SERVICE}]}
    if policy.get("hedging"):
        entry["hedgingPolicy"] = policy["hedging"]
    elif attempts > 1:
        entry["retryPolicy"] = {
            "maxAttempts": attempts,
            "initialBackoff": initialBackoff,
            "maxBackoff": "1s",
            "backoffMultiplier": 1,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    if timeout is not None:
        entry["timeout"] = timeout
    result: dict[str, Any] = {"methodConfig": [entry]}
    if "throttling" in policy:
        result["retryThrottling"] = policy["throttling"]
    return result


def channel(target: str, clock: Clock | None = None, **kw: Any) -> AsyncResilientChannel:
    kw.setdefault("service_config", config())
    kw.setdefault("idempotency", {f"{SERVICE}/{m}": "IDEMPOTENT" for m in ("Unary", "Server", "Client", "Bidi")})
    return AsyncResilientChannel(
        target, tls=False, clock=clock if clock is not None else ManualClock(), rng=random.Random(1), **kw
    )


NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def collect(stream: AsyncIterator[bytes], into: list[bytes] | None = None) -> list[bytes]:
    got = [] if into is None else into
    async for message in stream:
        got.append(message)
    return got


async def requests(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def test_a_unary_answer_with_its_metadata_and_timeout() -> None:
    script = Script({UNARY: [("fail", UNAVAILABLE, "busy"), ("ok", b"pong")]})
    clock = ManualClock()
    async with scripted(script) as target, channel(target, clock) as ch:
        assert isinstance(ch.channel, grpc.aio.Channel)
        call = ch.unary_unary(UNARY)
        sent = spy(call)
        assert await call(b"ping", timeout=5.0, metadata=(("x-k", "v"),)) == b"pong"
    first, second = script.calls()
    assert first.requests == second.requests == [b"ping"]
    assert first.metadata["x-k"] == second.metadata["x-k"] == "v"
    assert "grpc-previous-rpc-attempts" not in first.metadata
    assert second.metadata["grpc-previous-rpc-attempts"] == "1"
    waited = clock.now()  # the engine's backoff, waited on the injected clock (not in real time)
    assert 0.0 < waited <= 1.0
    assert [s["timeout"] for s in sent] == [5.0, 5.0 - waited]
    assert first.remaining == pytest.approx(5.0, abs=0.2)


async def test_a_refused_stream_is_resent_three_times_with_what_is_left() -> None:
    script = Script({UNARY: [("refused",)] * 3 + [("ok", b"pong")]}, clock=ManualClock(), advance=0.5)
    async with scripted(script) as target, channel(target, script.clock) as ch:
        call = ch.unary_unary(UNARY)
        sent = spy(call)
        assert await call(b"ping", timeout=5.0) == b"pong"
    seen = script.calls()
    assert [s["timeout"] for s in sent] == [5.0, 4.5, 4.0, 3.5]
    assert all("grpc-previous-rpc-attempts" not in s.metadata for s in seen)  # one attempt, resent


async def test_a_stream_refused_four_times_is_one_failed_attempt() -> None:
    script = Script({UNARY: [("refused",)] * 4 + [("ok", b"pong")]})
    async with scripted(script) as target, channel(target, service_config=config(1)) as ch:
        with pytest.raises(GrpcPermanentError) as info:  # UNAVAILABLE is not retried here: one attempt
            await ch.unary_unary(UNARY)(b"ping")
    assert info.value.details.startswith("REFUSED_STREAM")
    assert len(script.calls()) == 4


async def test_no_time_left_is_not_resent() -> None:
    script = Script({UNARY: [("refused",), ("ok", b"pong")]}, clock=ManualClock(), advance=2.0)
    async with scripted(script) as target, channel(target, script.clock, service_config=config(1)) as ch:
        with pytest.raises(IntegrationError):
            await ch.unary_unary(UNARY)(b"ping", timeout=2.0)
    assert len(script.calls()) == 1


async def test_an_attempts_deadline_exceeded_ends_the_call_with_its_deadline_caused_by_the_attempt() -> None:
    # Bug (session 33, the sync channel's sibling): the call's DeadlineExceeded was raised 'from' the attempt
    # error's own cause, which dropped the cause as_deadline gives it (a traceback showed no gRPC status).
    script = Script({UNARY: [("fail", grpc.StatusCode.DEADLINE_EXCEEDED, "late")]})
    async with scripted(script) as target, channel(target, service_config=config(1)) as ch:
        with pytest.raises(DeadlineExceeded) as info:
            await ch.unary_unary(UNARY)(b"ping", timeout=2.0)
    assert info.value.__cause__ is info.value.last_error
    assert info.value.message == "gRPC DEADLINE_EXCEEDED: the call's deadline passed"


async def test_the_callers_grpc_options_reach_every_attempt() -> None:
    script = Script({UNARY: [("fail", UNAVAILABLE, "busy"), ("ok", b"pong")]})
    async with scripted(script) as target, channel(target) as ch:
        assert await ch.unary_unary(UNARY)(b"ping", wait_for_ready=True, compression=grpc.Compression.Gzip)
        for call in (
            ch.unary_unary(UNARY)(b"ping", no_such_option=1),
            ch.stream_unary(CLIENT)(requests(b"1"), no_such_option=1),
            collect(ch.unary_stream(SERVER)(b"q", no_such_option=1)),
            collect(ch.stream_stream(BIDI)(requests(b"1"), no_such_option=1)),
        ):
            with pytest.raises(TypeError, match="no_such_option"):
                await call
    assert len(script.calls()) == 2


async def test_over_tls_the_channel_retries_with_its_own_metadata() -> None:
    ca = trustme.CA()
    script = Script({UNARY: [("fail", UNAVAILABLE, "busy"), ("ok", b"pong")]})
    async with scripted(script, certificate=ca.issue_cert("localhost", "127.0.0.1")) as target:
        ch = AsyncResilientChannel(
            target, service_config=config(), idempotency={f"{SERVICE}/Unary": "IDEMPOTENT"},
            root_certificates=ca.cert_pem.bytes(), clock=ManualClock(),
        )  # fmt: skip
        async with ch:
            assert await ch.unary_unary(UNARY)(b"ping", timeout=5.0) == b"pong"
    first, second = script.calls()
    assert "grpc-previous-rpc-attempts" not in first.metadata
    assert second.metadata["grpc-previous-rpc-attempts"] == "1"  # grpc-core's own retries stayed off


async def test_health_checks_without_a_breaker_send_every_call() -> None:
    script = Script({HEALTH: [("ok", NOT_SERVING)]})
    async with scripted(script) as target, channel(target, health_checks=True) as ch:
        for method in (UNARY, CLIENT, SERVER):
            await shape(ch, method)
    assert script.calls(HEALTH) == []


class WallOnly:
    """A clock with no ``asleep``: the channel waits with anyio."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:  # pragma: no cover - the async channel must not block
        raise AssertionError("the async channel slept on the sync clock")


async def test_a_clock_without_asleep_is_waited_with_anyio() -> None:
    script = Script({UNARY: [("fail", UNAVAILABLE, "busy"), ("ok", b"pong")]})
    fast = config(initialBackoff="0.01s")
    async with scripted(script) as target, channel(target, WallOnly(), service_config=fast) as ch:
        assert await ch.unary_unary(UNARY)(b"ping") == b"pong"


@pytest.mark.parametrize("method", [SERVER, CLIENT])
async def test_a_stream_is_never_hedged_and_its_non_fatal_codes_are_not_retryable(method: str) -> None:
    script = Script({method: [("fail", UNAVAILABLE, "busy")]})
    async with scripted(script) as target, channel(target, service_config=config(hedging=HEDGING)) as ch:
        with pytest.raises(GrpcPermanentError):
            await shape(ch, method)
    assert len(script.calls(method)) == 1


async def test_the_errors_a_caller_reads_keep_their_cause_and_no_verb() -> None:
    script = Script({UNARY: [("fail", INTERNAL, "broken")]})
    async with scripted(script) as target, channel(target) as ch:
        with pytest.raises(GrpcPermanentError) as info:
            await ch.unary_unary(UNARY)(b"ping")
    assert info.value.method is None
    assert info.value.url == f"grpc://{target}{UNARY}"
    script = Script({UNARY: [("fail", UNAVAILABLE, "busy")] * 3})
    async with scripted(script) as target, channel(target) as ch:
        with pytest.raises(RetriesExhausted) as exhausted:
            await ch.unary_unary(UNARY)(b"ping")
    assert exhausted.value.message == "retries exhausted; the last attempt: gRPC UNAVAILABLE: busy"
    assert exhausted.value.__cause__ is exhausted.value.last_error
    assert isinstance(exhausted.value.__cause__, GrpcUnavailable)


async def test_a_hanging_attempt_is_the_calls_deadline() -> None:
    script = Script({UNARY: [("hang",)]})
    async with scripted(script) as target, channel(target, service_config=config(1)) as ch:
        with pytest.raises(DeadlineExceeded) as info:
            await ch.unary_unary(UNARY)(b"ping", timeout=0.05)
    assert info.value.message == "gRPC DEADLINE_EXCEEDED: the call's deadline passed"


async def test_a_server_stream_yields_every_message_after_the_commit() -> None:
    script = Script({SERVER: [("fail", UNAVAILABLE, "busy"), ("ok", [b"a", b"b", b"c"]), ("ok", [])]})
    async with scripted(script) as target, channel(target) as ch:
        call = ch.unary_stream(SERVER)
        sent = spy(call)
        assert [m async for m in call(b"q", timeout=3.0, metadata=(("x-k", "v"),))] == [b"a", b"b", b"c"]
        assert [m async for m in call(b"q")] == []  # ended without a message: committed, nothing yielded
    _, second, third = script.calls(SERVER)
    assert second.metadata["grpc-previous-rpc-attempts"] == "1"
    assert second.metadata["x-k"] == "v"
    assert "x-k" not in third.metadata
    assert [s["timeout"] for s in sent] == [3.0, 3.0 - ch.clock.now(), None]


async def test_a_committed_stream_that_breaks_raises_at_once_without_its_cause() -> None:
    script = Script({SERVER: [("fail", UNAVAILABLE, "cut", [b"a", b"b"])]})
    async with scripted(script) as target, channel(target) as ch:
        got: list[bytes] = []
        with pytest.raises(GrpcUnavailable) as info:
            await collect(ch.unary_stream(SERVER)(b"q"), got)
    assert got == [b"a", b"b"]
    assert info.value.details == "cut"
    assert info.value.__cause__ is None
    assert info.value.integration == "grpc"
    assert info.value.url == f"grpc://{target}{SERVER}"  # as every other error names its RPC
    assert info.value.method is None
    assert len(script.calls(SERVER)) == 1  # never retried


async def test_a_stream_left_early_is_cancelled() -> None:
    script = Script({SERVER: [("ok", [b"a", b"b"])]})
    async with scripted(script) as target, channel(target) as ch:
        stream = ch.unary_stream(SERVER)(b"q")
        assert await stream.__anext__() == b"a"
        await stream.aclose()


async def test_a_bidirectional_stream_resends_its_buffered_requests() -> None:
    script = Script({BIDI: [("fail", UNAVAILABLE, "busy"), ("ok", [b"x", b"y"])]})
    async with scripted(script) as target, channel(target) as ch:
        call = ch.stream_stream(BIDI)
        sent = spy(call)
        got = await collect(call(requests(b"1", b"2"), timeout=3.0, metadata=(("x-k", "v"),)))
    assert got == [b"x", b"y"]
    first, second = script.calls(BIDI)
    assert first.requests[0] == second.requests[0] == b"1"
    assert second.metadata["grpc-previous-rpc-attempts"] == "1"
    assert second.metadata["x-k"] == "v"
    assert [s["timeout"] for s in sent] == [3.0, 3.0 - ch.clock.now()]


async def test_a_bidirectional_stream_past_its_buffer_is_not_retried() -> None:
    script = Script({BIDI: [("fail", UNAVAILABLE, "busy"), ("ok", [b"x"])]})
    async with scripted(script) as target, channel(target, retry_buffer=1) as ch:
        with pytest.raises(GrpcUnavailable):
            await collect(ch.stream_stream(BIDI)(requests(b"12"), timeout=2.0))
    assert len(script.calls(BIDI)) == 1


async def test_a_client_stream_resends_its_buffered_requests() -> None:
    script = Script({CLIENT: [("fail", UNAVAILABLE, "busy"), ("ok", b"counted")]})
    async with scripted(script) as target, channel(target) as ch:
        call = ch.stream_unary(CLIENT)
        sent = spy(call)
        answer = await call(requests(b"1", b"2"), timeout=3.0, metadata=(("x-k", "v"),))
    assert answer == b"counted"
    first, second = script.calls(CLIENT)
    assert first.requests == second.requests == [b"1", b"2"]
    assert second.metadata["grpc-previous-rpc-attempts"] == "1"
    assert second.metadata["x-k"] == "v"
    assert [s["timeout"] for s in sent] == [3.0, 3.0 - ch.clock.now()]


async def test_a_client_stream_past_its_buffer_commits() -> None:
    script = Script({CLIENT: [("fail", UNAVAILABLE, "busy"), ("ok", b"counted")]})
    async with scripted(script) as target, channel(target, retry_buffer=3) as ch:
        with pytest.raises(GrpcUnavailable):
            await ch.stream_unary(CLIENT)(requests(b"12", b"34"), timeout=2.0)
    assert len(script.calls(CLIENT)) == 1


BREAKER = BreakerPolicy(failure_rate_threshold=0.5, window_size=2, minimum_calls=2, wait_in_open=10.0)


async def shape(ch: AsyncResilientChannel, method: str, timeout: float | None = 2.0) -> Any:
    """One call of ``method`` in its shape (a stream: its messages), with a deadline (a mutant that opens a
    stream with no requests leaves it waiting for them: it fails in seconds, not at mutmut's time limit)."""
    if method == UNARY:
        return await ch.unary_unary(UNARY)(b"ping", timeout=timeout)
    if method == CLIENT:
        return await ch.stream_unary(CLIENT)(requests(b"1"), timeout=timeout)
    return await collect(ch.unary_stream(SERVER)(b"q", timeout=timeout))


async def open_breaker(ch: AsyncResilientChannel, clock: ManualClock, method: str) -> None:
    for _ in range(2):
        with pytest.raises(IntegrationError):
            await shape(ch, method)
    clock.advance(10.0)  # half-open: the next call is a probe


@pytest.mark.parametrize("method", [UNARY, SERVER, CLIENT])
async def test_a_probe_asks_the_health_service_within_the_attempts_time(method: str) -> None:
    script = Script({method: [("fail", INTERNAL, "broken")] * 2, HEALTH: [("hang",)]})
    clock = ManualClock()
    async with scripted(script) as target, channel(target, clock, breaker=BREAKER, health_checks=True) as ch:
        await open_breaker(ch, clock, method)
        with pytest.raises(IntegrationError) as info:
            await shape(ch, method, timeout=0.05)
    error = info.value
    while not isinstance(error, GrpcUnavailable) and error is not None:
        error = error.last_error if isinstance(error, IntegrationError) and error.last_error else error.__cause__
    assert isinstance(error, GrpcUnavailable)
    assert error.details == "health check of t.S failed with DEADLINE_EXCEEDED"
    assert len(script.calls(method)) == 2  # the probe was not sent
    remaining = script.calls(HEALTH)[0].remaining
    assert remaining is not None
    assert remaining <= 0.06


async def test_a_serving_health_lets_the_probe_go_and_a_closed_breaker_asks_nothing() -> None:
    script = Script({UNARY: [("fail", INTERNAL, "broken")] * 2, HEALTH: [("ok", None)]})
    clock = ManualClock()
    async with scripted(script) as target, channel(target, clock, breaker=BREAKER, health_checks=True) as ch:
        await open_breaker(ch, clock, UNARY)
        assert len(script.calls(HEALTH)) == 0  # closed: no health check
        assert await ch.unary_unary(UNARY)(b"ping") == b"done"
        assert len(script.calls(HEALTH)) == 1


async def test_without_health_checks_a_probe_goes_unasked() -> None:
    script = Script({UNARY: [("fail", INTERNAL, "broken")] * 2, HEALTH: [("ok", NOT_SERVING)]})
    clock = ManualClock()
    async with scripted(script) as target, channel(target, clock, breaker=BREAKER) as ch:
        await open_breaker(ch, clock, UNARY)
        assert await ch.unary_unary(UNARY)(b"ping") == b"done"
    assert script.calls(HEALTH) == []


async def test_an_unhealthy_service_fails_a_server_stream_probe_unsent() -> None:
    script = Script({SERVER: [("fail", INTERNAL, "broken")] * 2, HEALTH: [("ok", NOT_SERVING)]})
    clock = ManualClock()
    async with scripted(script) as target, channel(target, clock, breaker=BREAKER, health_checks=True) as ch:
        await open_breaker(ch, clock, SERVER)
        with pytest.raises((CircuitOpenError, GrpcUnavailable)):
            _ = [m async for m in ch.unary_stream(SERVER)(b"q")]
    assert len(script.calls(SERVER)) == 2


HEDGING = {"maxAttempts": 3, "hedgingDelay": "0.05s", "nonFatalStatusCodes": ["UNAVAILABLE"]}


async def test_a_hedged_unary_sends_copies_numbered_and_the_first_answer_wins() -> None:
    script = Script({UNARY: [("hang",), ("fail", UNAVAILABLE, "busy"), ("ok", b"third")]})
    async with scripted(script) as target, channel(target, SystemClock(), service_config=config(hedging=HEDGING)) as ch:
        assert await ch.unary_unary(UNARY)(b"ping", timeout=2.0) == b"third"
    seen = script.calls()
    assert [s.metadata.get("grpc-previous-rpc-attempts") for s in seen] == [None, "1", "2"]


async def test_hedges_draw_on_the_channels_retry_budget() -> None:
    throttling = {"maxTokens": 2, "tokenRatio": 0.1}
    script = Script({UNARY: [("hang",)] * 3})
    cfg = config(hedging={**HEDGING, "hedgingDelay": "0.01s"}, throttling=throttling)
    async with scripted(script) as target, channel(target, SystemClock(), service_config=cfg) as ch:
        assert ch.budget is not None
        for _ in range(2):
            ch.budget.record_failure()  # at the threshold: the budget refuses every hedge
        with pytest.raises(IntegrationError):
            await ch.unary_unary(UNARY)(b"ping", timeout=0.5)
    assert ch.budget.stats().retries_refused == 1  # asked once, refused: no hedge went
    assert len(script.calls()) == 1


async def test_close_lets_calls_in_flight_finish_within_the_grace() -> None:
    script = Script({UNARY: [("ok", b"pong", 0.2)]})
    async with scripted(script) as target:
        ch = channel(target)
        result: list[Any] = []

        async def call() -> None:
            result.append(await ch.unary_unary(UNARY)(b"ping"))

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            while not script.seen:  # in flight: the server has it
                await anyio.sleep(0.01)
            await ch.close(grace=1.0)
        assert result == [b"pong"]
        assert ch.channel.get_state() is grpc.ChannelConnectivity.SHUTDOWN


async def test_leaving_the_block_closes_the_channel() -> None:
    async with scripted(Script()) as target:
        async with channel(target) as ch:
            assert await ch.unary_unary(UNARY)(b"ping") == b"done"
        assert ch.channel.get_state() is grpc.ChannelConnectivity.SHUTDOWN
