"""A scripted gRPC server for the exact channel tests: a real ``grpc.aio`` server on 127.0.0.1 (the test's own event
loop), whose every call plays the next *fate* of its method's script and records what it received.

Methods (raw bytes, no protobuf): ``/t.S/Unary``, ``/t.S/Server`` (server stream), ``/t.S/Client`` (client stream),
``/t.S/Bidi`` (bidirectional), and ``/grpc.health.v1.Health/Check`` when ``health`` is given a fate list.
A fate is a tuple:

- ``("ok", b"answer")``: the answer (a stream: ``("ok", [b"m1", b"m2"])``, then the end); ``("ok", b"answer",
  seconds)`` answers that many seconds late;
- ``("fail", code, "details")``: ends the call with that status (a stream: after its messages, ``("fail", code,
  "details", [b"m1"])``); ``("push", ms)`` is ``RESOURCE_EXHAUSTED`` with ``grpc-retry-pushback-ms``;
- ``("refused",)``: ``UNAVAILABLE`` naming ``REFUSED_STREAM`` (a transparent resend);
- ``("hang",)``: does not answer for :data:`HANG` seconds (the client's timeout ends it first).

Before playing, a fate may move the test's ``ManualClock`` (``advance``) so the client sees time pass.
With the script exhausted, every call gets ``("ok", b"done")`` (a stream: ``[b"done"]``). Since grpc-core rounds a
call's timeout up to one it sent before on the connection (HPACK), a test reads the timeouts the channel gave
grpcio with :func:`spy`, not the server's ``time_remaining``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2

from integration_kit.clock import ManualClock

SERVICE = "t.S"
UNARY = f"/{SERVICE}/Unary"
SERVER = f"/{SERVICE}/Server"
CLIENT = f"/{SERVICE}/Client"
BIDI = f"/{SERVICE}/Bidi"
HEALTH = "/grpc.health.v1.Health/Check"
REFUSED = "REFUSED_STREAM: refused before reading (scripted)"
#: How long :func:`scripted` lets grpc.aio's last callbacks run after the server stopped (real seconds).
DRAIN = 0.02
#: How long a ``("hang",)`` fate holds its call (real seconds) before it fails it.
HANG = 1.0


@dataclass
class Seen:
    """One call as the server received it."""

    method: str
    metadata: dict[str, str]
    remaining: float | None
    requests: list[bytes]


@dataclass
class Script:
    """The fates per method, what was seen, and the clock a fate may move (``advance`` seconds per call)."""

    fates: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    clock: ManualClock | None = None
    advance: float = 0.0

    def calls(self, method: str = UNARY) -> list[Seen]:
        return [s for s in self.seen if s.method == method]

    def _next(self, method: str) -> tuple[Any, ...]:
        fates = self.fates.get(method)
        if fates:
            return fates.pop(0)
        return ("ok", None) if method == HEALTH else ("ok", [b"done"]) if method in (SERVER, BIDI) else ("ok", b"done")

    def _record(self, method: str, context: Any, requests: list[bytes]) -> tuple[Any, ...]:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        self.seen.append(Seen(method, metadata, context.time_remaining(), requests))
        if self.clock is not None and self.advance:
            self.clock.advance(self.advance)
        return self._next(method)


async def _end(fate: tuple[Any, ...], context: Any) -> None:
    kind = fate[0]
    if kind == "ok" and len(fate) > 2:  # ("ok", answer, seconds): answered that late
        await asyncio.sleep(fate[2])
    if kind == "hang":  # held a second at most (a mutant that drops the deadline fails fast, not in minutes)
        await asyncio.sleep(HANG)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "held past HANG (scripted)")
    if kind == "refused":
        await context.abort(grpc.StatusCode.UNAVAILABLE, REFUSED)
    if kind == "push":
        context.set_trailing_metadata((("grpc-retry-pushback-ms", str(fate[1])),))
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")
    if kind == "fail":
        await context.abort(fate[1], fate[2])


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, script: Script) -> None:
        self.script = script

    def service(self, details: Any) -> Any:
        script = self.script
        method = details.method

        async def unary(request: bytes, context: Any) -> bytes:
            fate = script._record(method, context, [request])
            await _end(fate, context)
            return fate[1]  # type: ignore[no-any-return]

        async def health(request: Any, context: Any) -> Any:
            fate = script._record(method, context, [])
            await _end(fate, context)
            serving = fate[1] if fate[1] is not None else health_pb2.HealthCheckResponse.SERVING
            return health_pb2.HealthCheckResponse(status=serving)

        async def server(request: bytes, context: Any) -> AsyncIterator[bytes]:
            fate = script._record(method, context, [request])
            for message in _messages(fate):
                yield message
            await _end(fate, context)

        async def client(requests: Any, context: Any) -> bytes:
            got = [r async for r in requests]
            fate = script._record(method, context, got)
            await _end(fate, context)
            return fate[1]  # type: ignore[no-any-return]

        async def bidi(requests: Any, context: Any) -> AsyncIterator[bytes]:
            # every request first: a status sent while the client still writes can reach it as INTERNAL
            fate = script._record(method, context, [r async for r in requests])
            for message in _messages(fate):
                yield message
            await _end(fate, context)

        if method == UNARY:
            return grpc.unary_unary_rpc_method_handler(unary)
        if method == SERVER:
            return grpc.unary_stream_rpc_method_handler(server)
        if method == CLIENT:
            return grpc.stream_unary_rpc_method_handler(client)
        if method == BIDI:
            return grpc.stream_stream_rpc_method_handler(bidi)
        if method == HEALTH and HEALTH in script.fates:
            return grpc.unary_unary_rpc_method_handler(
                health,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )
        return None


def _messages(fate: tuple[Any, ...]) -> list[bytes]:
    if fate[0] == "ok":
        return list(fate[1])
    if fate[0] == "fail" and len(fate) > 3:
        return list(fate[3])
    return []


def spy(multicallable: Any) -> list[dict[str, Any]]:
    """The keyword arguments of every attempt a channel's multicallable hands grpcio (its ``_inner``)."""
    sent: list[dict[str, Any]] = []
    inner = multicallable._inner

    def call(request: Any, **kwargs: Any) -> Any:
        sent.append(kwargs)
        return inner(request, **kwargs)

    multicallable._inner = call
    return sent


@contextlib.asynccontextmanager
async def scripted(script: Script, *, certificate: Any = None) -> AsyncIterator[str]:
    """Serve ``script`` on 127.0.0.1 (a free port) on the running loop; yield the target (with a ``trustme``
    leaf ``certificate``, over TLS, as ``localhost:PORT``)."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_Handler(script),))
    if certificate is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        chain = b"".join(blob.bytes() for blob in certificate.cert_chain_pems)
        credentials = grpc.ssl_server_credentials([(certificate.private_key_pem.bytes(), chain)])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield f"{'127.0.0.1' if certificate is None else 'localhost'}:{port}"
    finally:
        await server.stop(0)
        # grpc.aio hands a cancelled call's last callbacks to the loop a moment later: let them run on this loop,
        # not on the next test's (where they fail with "Event loop is closed").
        await asyncio.sleep(DRAIN)
