"""The sync :class:`~integration_kit.grpc.ResilientChannel` to the letter: each multicallable made by grpcio with
the caller's codecs, every attempt's request, timeout (what is left of the deadline, less the time a refused
stream took), metadata and extra arguments, the transparent resends of a refused stream (at most 3, never with no
time left), a stream cancelled whenever the channel leaves it, a committed stream's messages (none, one, many) and
its failure as it comes, a client or bidirectional stream's requests sent again whole on a retry and not retried
once past the buffer, the error a call ends with (its cause), and the channel options reaching grpcio over
plaintext and TLS. grpcio's multicallables are replaced by scripted fakes where an exact count or timeout matters
(an injected clock, no sleeps); the rest runs against real servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_kit_helpers import Serve, retry_config, scenario

from integration_kit.clock import ManualClock
from integration_kit.errors import DeadlineExceeded, RetriesExhausted
from integration_kit.grpc import GrpcPermanentError, GrpcUnavailable, ResilientChannel
from integration_kit.grpc.sync import _StreamUnary, _UnaryStream, _UnaryUnary
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg
from integration_kit.sim.grpc.upstream import REFUSED_STREAM_DETAILS

GET = "/inventory.v1.Inventory/GetItem"
WATCH = "/inventory.v1.Inventory/WatchStock"
COUNT = "/inventory.v1.Inventory/CountItems"
ECHO = "/inventory.v1.Inventory/EchoStock"
DESCRIPTORS = [pb.DESCRIPTOR.services_by_name["Inventory"]]
PREVIOUS = "grpc-previous-rpc-attempts"
HEDGED = {
    "methodConfig": [
        {
            "name": [{"service": "inventory.v1.Inventory"}],
            "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.1s", "nonFatalStatusCodes": ["UNAVAILABLE"]},
        }
    ]
}


def error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


UNAVAILABLE = error(grpc.StatusCode.UNAVAILABLE, "down")
REFUSED = error(grpc.StatusCode.UNAVAILABLE, REFUSED_STREAM_DETAILS)
LATE = error(grpc.StatusCode.DEADLINE_EXCEEDED, "late")


class Sent:
    """What one attempt handed grpcio."""

    def __init__(self, request: Any, timeout: float | None, metadata: Any, kwargs: dict[str, Any]) -> None:
        self.request, self.timeout, self.metadata, self.kwargs = request, timeout, metadata, kwargs


class Unary:
    """A scripted unary (or client-streaming) multicallable: each call takes the next answer (raised if an
    error); a request iterator is read whole first. ``took`` advances the clock by that much per call."""

    def __init__(self, answers: list[Any], clock: ManualClock | None = None, took: float = 0.0) -> None:
        self.answers, self.clock, self.took = list(answers), clock, took
        self.sent: list[Sent] = []
        self.read: list[list[Any]] = []

    def __call__(self, request: Any, timeout: float | None = None, metadata: Any = None, **kwargs: Any) -> Any:
        self.sent.append(Sent(request, timeout, metadata, kwargs))
        if isinstance(request, Iterator):
            self.read.append(list(request))
        if self.clock is not None:
            self.clock.advance(self.took)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


class Stream:
    """A scripted response stream: its items in order (an exception is raised where it stands); knows if it was
    cancelled."""

    def __init__(self, items: list[Any]) -> None:
        self.items = list(items)
        self.cancelled = 0

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Any:
        if not self.items:
            raise StopIteration
        item = self.items.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def cancel(self) -> bool:
        self.cancelled += 1
        return True


class Streaming(Unary):
    """A scripted streaming multicallable: each call answers the next :class:`Stream`; a request iterator is read
    whole first."""

    def __call__(self, request: Any, timeout: float | None = None, metadata: Any = None, **kwargs: Any) -> Any:
        self.sent.append(Sent(request, timeout, metadata, kwargs))
        if isinstance(request, Iterator):
            self.read.append(list(request))
        return self.answers.pop(0)


class FakeGrpcChannel:
    """Stands for the grpc channel: records the multicallables asked for and ``close``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.made: list[tuple[str, str, Any, Any]] = []
        self.closed = 0

    def _make(self, kind: str) -> Any:
        def make(method: str, serializer: Any = None, deserializer: Any = None) -> Any:
            self.made.append((kind, method, serializer, deserializer))
            return self.inner

        return make

    def __getattr__(self, name: str) -> Any:
        return self._make(name)

    def close(self) -> None:
        self.closed += 1


def channel(inner: Any = None, **kw: Any) -> tuple[ResilientChannel, FakeGrpcChannel]:
    made = ResilientChannel(
        "127.0.0.1:1", tls=False, descriptors=DESCRIPTORS, clock=kw.pop("clock", ManualClock()), **kw
    )
    made._channel.close()
    fake = FakeGrpcChannel(inner)
    made._channel = fake  # type: ignore[assignment]
    return made, fake


# -- the multicallables --------------------------------------------------------------------------------------------


def test_each_shape_is_made_by_grpcio_with_the_callers_codecs() -> None:
    def ser(m: Any) -> bytes:
        return b""

    def de(b: bytes) -> Any:
        return None

    ch, fake = channel(inner="inner", service_config=HEDGED)
    unary = ch.unary_unary(GET, ser, de)
    server = ch.unary_stream(WATCH, ser, de)
    client = ch.stream_unary(COUNT, ser, de)
    both = ch.stream_stream(ECHO, ser, de)
    assert fake.made == [
        ("unary_unary", GET, ser, de),
        ("unary_stream", WATCH, ser, de),
        ("stream_unary", COUNT, ser, de),
        ("stream_stream", ECHO, ser, de),
    ]
    assert isinstance(unary, _UnaryUnary)
    assert (unary._channel, unary._method, unary._inner) == (ch, GET, "inner")
    assert unary._plan.method == GET
    assert isinstance(server, _UnaryStream)
    assert (server._channel, server._inner, server._plan.method, server._streaming) == (ch, "inner", WATCH, False)
    assert isinstance(client, _StreamUnary)
    assert (client._channel, client._inner, client._plan.method) == (ch, "inner", COUNT)
    assert isinstance(both, _UnaryStream)
    assert (both._channel, both._inner, both._plan.method, both._streaming) == (ch, "inner", ECHO, True)
    # The sync channel never hedges (hedging is the async channel's): a hedged method has one attempt here.
    assert [m._plan.hedging for m in (unary, server, client, both)] == [None] * 4


def test_the_channel_closes_grpcios_on_close_and_on_leaving_its_block() -> None:
    ch, fake = channel()
    with ch as entered:
        assert entered is ch
    assert fake.closed == 1
    ch.close()
    assert fake.closed == 2


# -- unary -------------------------------------------------------------------------------------------------------


def test_a_unary_call_sends_the_request_its_deadline_metadata_and_extra_arguments() -> None:
    inner = Unary(["answer"])
    ch, _ = channel(inner, service_config=retry_config(timeout="3s"))
    request = object()
    assert ch.unary_unary(GET)(request, metadata=[("x-a", "1")], wait_for_ready=True) == "answer"
    [sent] = inner.sent
    assert (sent.request, sent.timeout, sent.metadata, sent.kwargs) == (
        request,
        3.0,
        (("x-a", "1"),),
        {"wait_for_ready": True},
    )


def test_the_callers_timeout_is_every_shapes_deadline() -> None:
    unary, client = Unary(["u"]), Unary(["c"])
    server, both = Streaming([Stream(["s"])]), Streaming([Stream(["b"])])
    ch, _ = channel(service_config=retry_config(timeout="3s"))
    ch._channel.inner = unary  # type: ignore[attr-defined]
    assert ch.unary_unary(GET)("req", timeout=0.5) == "u"
    ch._channel.inner = server  # type: ignore[attr-defined]
    assert list(ch.unary_stream(WATCH)("req", 0.25)) == ["s"]
    ch._channel.inner = client  # type: ignore[attr-defined]
    assert ch.stream_unary(COUNT)(iter(["r"]), 0.75) == "c"
    ch._channel.inner = both  # type: ignore[attr-defined]
    assert list(ch.stream_stream(ECHO)(iter(["r"]), timeout=1.5)) == ["b"]
    assert [m.sent[0].timeout for m in (unary, server, client, both)] == [0.5, 0.25, 0.75, 1.5]


def test_a_retry_says_how_many_attempts_came_before_and_waits_on_the_clock() -> None:
    clock = ManualClock()
    inner = Unary([UNAVAILABLE, UNAVAILABLE, "answer"])
    ch, _ = channel(inner, clock=clock, service_config=retry_config(), rng=__import__("random").Random(1))
    assert ch.unary_unary(GET)("req") == "answer"
    assert [s.metadata for s in inner.sent] == [(), ((PREVIOUS, "1"),), ((PREVIOUS, "2"),)]
    assert 0 < clock.now() <= 0.03  # two backoffs of at most 0.01s and 0.02s, slept on the channel's clock


def test_a_refused_stream_is_resent_with_what_is_left_of_the_deadline() -> None:
    clock = ManualClock(100.0)  # not 0: the time used is the clock's now less the attempt's start
    inner = Unary([REFUSED, REFUSED, "answer"], clock=clock, took=0.5)
    ch, _ = channel(inner, clock=clock, deadline=3.0)
    assert ch.unary_unary(GET)("req") == "answer"
    assert [s.timeout for s in inner.sent] == [3.0, 2.5, 2.0]
    assert [s.metadata for s in inner.sent] == [(), (), ()]  # the same attempt, sent again


def test_a_refused_stream_is_resent_at_most_three_times_then_is_the_attempts_end() -> None:
    inner = Unary([REFUSED] * 4)
    ch, _ = channel(inner)
    with pytest.raises(GrpcPermanentError) as info:
        ch.unary_unary(GET)("req")
    assert len(inner.sent) == 4
    assert [s.timeout for s in inner.sent] == [None] * 4
    assert info.value.details == REFUSED_STREAM_DETAILS


def test_a_refused_stream_with_no_time_left_is_not_resent() -> None:
    # Bug (session 33, the async channel's sibling): the resend was decided on the refused attempt's own timeout,
    # so a refusal at the deadline went out again with a timeout of 0 (grpcio fails it on the client side).
    clock = ManualClock()
    inner = Unary([REFUSED, REFUSED], clock=clock, took=1.0)
    ch, _ = channel(inner, clock=clock, deadline=1.0)
    with pytest.raises(GrpcPermanentError):
        ch.unary_unary(GET)("req")
    assert [s.timeout for s in inner.sent] == [1.0]


def test_a_call_that_ran_out_of_retries_ends_with_the_engines_error_and_its_cause() -> None:
    inner = Unary([UNAVAILABLE] * 2)
    ch, _ = channel(inner, service_config=retry_config(attempts=2))
    with pytest.raises(RetriesExhausted) as info:
        ch.unary_unary(GET)("req")
    assert isinstance(info.value.last_error, GrpcUnavailable)
    assert info.value.__cause__ is info.value.last_error
    assert info.value.method is None
    assert info.value.message == "retries exhausted; the last attempt: gRPC UNAVAILABLE: down"


def test_an_attempts_deadline_exceeded_ends_the_call_with_its_deadline_caused_by_the_attempt() -> None:
    # Bug (session 33): the call's DeadlineExceeded was raised 'from' the attempt error's own cause (None), which
    # dropped the cause as_deadline gives it: a traceback showed no gRPC status at all.
    inner = Unary([LATE])
    ch, _ = channel(inner, deadline=1.0)
    with pytest.raises(DeadlineExceeded) as info:
        ch.unary_unary(GET)("req")
    assert info.value.__cause__ is info.value.last_error
    assert info.value.message == "gRPC DEADLINE_EXCEEDED: the call's deadline passed"


# -- server and bidirectional streams --------------------------------------------------------------------------


def test_a_server_stream_is_retried_until_it_commits_then_read_whole() -> None:
    broken, good = Stream([UNAVAILABLE]), Stream(["a", "b", "c"])
    inner = Streaming([broken, good])
    clock = ManualClock()
    ch, _ = channel(inner, clock=clock, service_config=retry_config(timeout="2s"))
    request = object()
    updates = ch.unary_stream(WATCH)(request, metadata=[("x-a", "1")], compression=None)
    assert broken.cancelled == 1  # the failed attempt's stream is let go at once
    assert [s.request for s in inner.sent] == [request, request]
    assert 0 < clock.now() <= 0.01  # one backoff
    assert [s.timeout for s in inner.sent] == [2.0, 2.0 - clock.now()]
    assert [s.metadata for s in inner.sent] == [(("x-a", "1"),), (("x-a", "1"), (PREVIOUS, "1"))]
    assert [s.kwargs for s in inner.sent] == [{"compression": None}] * 2
    assert good.cancelled == 0
    assert list(updates) == ["a", "b", "c"]
    assert good.cancelled == 1


def test_a_stream_that_ends_at_once_has_no_messages() -> None:
    empty = Stream([])
    ch, _ = channel(Streaming([empty]))
    assert list(ch.unary_stream(WATCH)("req")) == []
    assert empty.cancelled == 1


def test_a_committed_stream_fails_as_it_comes_and_is_cancelled() -> None:
    stream = Stream(["a", "b", UNAVAILABLE])
    inner = Streaming([stream])
    ch, _ = channel(inner, name="inv", service_config=retry_config())
    updates = ch.unary_stream(WATCH)("req")
    assert next(updates) == "a"
    assert next(updates) == "b"
    with pytest.raises(GrpcUnavailable) as info:
        next(updates)
    assert len(inner.sent) == 1  # never retried after the commit
    assert stream.cancelled == 1
    assert info.value.url == "grpc://127.0.0.1:1/inventory.v1.Inventory/WatchStock"
    assert info.value.integration == "inv"
    assert info.value.__cause__ is None


def test_a_stream_left_unread_is_cancelled_when_closed() -> None:
    stream = Stream(["a", "b"])
    ch, _ = channel(Streaming([stream]))
    updates = ch.unary_stream(WATCH)("req")
    assert next(updates) == "a"
    updates.close()  # type: ignore[attr-defined]
    assert stream.cancelled == 1


def test_a_bidirectional_stream_sends_its_requests_again_whole_until_it_commits() -> None:
    inner = Streaming([Stream([UNAVAILABLE]), Stream(["x"])])
    ch, _ = channel(inner, service_config=retry_config())
    requests = (f"r{i}" for i in range(3))  # a generator: read once
    assert list(ch.stream_stream(ECHO)(requests)) == ["x"]
    assert inner.read == [["r0", "r1", "r2"], ["r0", "r1", "r2"]]


def test_a_bidirectional_stream_past_its_buffer_is_not_retried() -> None:
    inner = Streaming([Stream([UNAVAILABLE]), Stream(["x"])])
    ch, _ = channel(inner, service_config=retry_config(), retry_buffer=3)
    with pytest.raises(GrpcUnavailable):
        ch.stream_stream(ECHO)(iter(["ab", "cd"]))
    assert inner.read == [["ab", "cd"]]


def test_a_bidirectional_stream_refuses_async_requests_before_sending_anything() -> None:
    async def requests() -> Any:
        yield "r"

    inner = Streaming([Stream(["x"])])
    ch, _ = channel(inner)
    with pytest.raises(TypeError, match="a sync channel needs an iterable of requests"):
        ch.stream_stream(ECHO)(requests())
    assert inner.sent == []


# -- client streams ----------------------------------------------------------------------------------------------


def test_a_client_stream_sends_its_requests_again_whole_on_a_retry() -> None:
    inner = Unary([UNAVAILABLE, "answer"])
    clock = ManualClock()
    ch, _ = channel(inner, clock=clock, service_config=retry_config(timeout="2s"))
    requests = (f"r{i}" for i in range(3))
    assert ch.stream_unary(COUNT)(requests, metadata=[("x-a", "1")], wait_for_ready=True) == "answer"
    assert inner.read == [["r0", "r1", "r2"], ["r0", "r1", "r2"]]
    assert 0 < clock.now() <= 0.01
    assert [s.timeout for s in inner.sent] == [2.0, 2.0 - clock.now()]
    assert [s.metadata for s in inner.sent] == [(("x-a", "1"),), (("x-a", "1"), (PREVIOUS, "1"))]
    assert [s.kwargs for s in inner.sent] == [{"wait_for_ready": True}] * 2


def test_a_client_stream_past_its_buffer_is_not_retried() -> None:
    inner = Unary([UNAVAILABLE, "answer"])
    ch, _ = channel(inner, service_config=retry_config(), retry_buffer=3)
    with pytest.raises(GrpcUnavailable):
        ch.stream_unary(COUNT)(iter(["ab", "cd"]))
    assert inner.read == [["ab", "cd"]]


# -- the options reaching grpcio ---------------------------------------------------------------------------------

SMALL = [("grpc.max_receive_message_length", 4)]  # an Item is more than 4 bytes


def test_a_plaintext_channel_hands_grpcio_its_options(serve: Serve) -> None:
    with serve(scenario()) as (target, _):
        with ResilientChannel(target, tls=False, options=SMALL) as ch, pytest.raises(GrpcPermanentError) as info:
            pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="abcdef"), timeout=10)
        assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        with ResilientChannel(target, tls=False) as ch:
            assert pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="abcdef"), timeout=10).sku == "abcdef"


def test_a_tls_channel_speaks_tls_and_hands_grpcio_its_options(tls_server: tuple[str, bytes]) -> None:
    target, roots = tls_server
    with ResilientChannel(target, root_certificates=roots) as ch:
        assert pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="abcdef"), timeout=10).stock == 3
    with (
        ResilientChannel(target, root_certificates=roots, options=SMALL) as ch,
        pytest.raises(GrpcPermanentError) as info,
    ):
        pbg.InventoryStub(ch).GetItem(pb.GetItemRequest(sku="abcdef"), timeout=10)
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
