"""The live flaky gRPC upstream: ``inventory.v1.Inventory`` on a ``grpc.aio`` server that plays a scenario.

It plays the same scenario files as the HTTP flaky upstream, through the same decisions
(:meth:`~integration_kit.sim.upstream.FlakyUpstream.decide`: keyed draws, so a request naming its logical call in
``x-fault-key`` metadata meets the fate the simulator gives it). A gRPC status the error mix names
(:data:`~integration_kit.sim.faults.GRPC_FAULTS`) is played as it is (``RESOURCE_EXHAUSTED`` with the mix's
``retry_after`` as pushback); the HTTP error mix is mapped onto gRPC statuses:

======================  ==========================================================================================
scenario                gRPC answer
======================  ==========================================================================================
200                     the response, after the sampled latency
503, 502, 504           ``UNAVAILABLE``
429                     ``RESOURCE_EXHAUSTED`` with ``grpc-retry-pushback-ms`` (the 429's Retry-After), or none
500                     ``INTERNAL``
reset                   ``UNAVAILABLE`` after the latency (the server read the request, as a dropped connection)
refused                 ``UNAVAILABLE`` at once (a server cannot refuse one stream of a connection it accepted)
hang                    never answers: the client's deadline ends the attempt (held at most ``max_hang`` seconds)
======================  ==========================================================================================

``REFUSED_STREAM``: a grpc.aio server cannot reset one HTTP/2 stream with ``REFUSED_STREAM`` (the servicer API has
no such call; grpc-core refuses streams on its own only past ``SETTINGS_MAX_CONCURRENT_STREAMS``, which its
clients respect by queueing). The upstream plays the closest real thing: it ends the RPC at once, before any
work and without counting it as received, with ``UNAVAILABLE`` and details naming ``REFUSED_STREAM``, which the channel
classifies as a stream that never reached the server and resends transparently
(:func:`~integration_kit.grpc.status.is_refused_stream`).

The service: ``GetItem`` (``NO_SIDE_EFFECTS``) answers the item and which attempt it served (from the request's
``grpc-previous-rpc-attempts``); ``Reserve`` (non-idempotent) makes a reservation, deduplicated by the ``x-request-id``
metadata when there is one; ``WatchStock`` streams stock updates after a cursor, ``CountItems`` (client
streaming) reads every request and answers how many there were (its fate is played after reading them),
``EchoStock`` (bidirectional) answers each request with a stock update (its fate played after the first); with
``break_streams_after=N``
fails each stream with ``UNAVAILABLE`` after N messages (to show resuming from the last cursor). The standard
``grpc.health.v1.Health`` service reports the inventory service ``SERVING``.

:meth:`GrpcFlakyUpstream.stats` adds to the HTTP upstream's counts the attempts per method, the
``grpc-previous-rpc-attempts`` values seen, and reservations made twice for one request id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from integration_kit.clock import Clock
from integration_kit.sim.grpc import inventory_pb2, inventory_pb2_grpc
from integration_kit.sim.scenarios import Decision, FaultKind, Scenario
from integration_kit.sim.upstream import MAX_HANG, FlakyUpstream

__all__ = [
    "REFUSED_STREAM_DETAILS",
    "SERVICE",
    "STATUS_FOR_HTTP",
    "STATUS_FOR_NAME",
    "GrpcFlakyUpstream",
    "serve_grpc_scenario",
    "serving",
]

#: The full name of the test service.
SERVICE = "inventory.v1.Inventory"
#: The gRPC status each HTTP status of the error mix is played as.
STATUS_FOR_HTTP: dict[int, grpc.StatusCode] = {
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.UNAVAILABLE,
}
#: The gRPC status each status name of the error mix (:data:`~integration_kit.sim.faults.GRPC_FAULTS`) is played as.
STATUS_FOR_NAME: dict[str, grpc.StatusCode] = {
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "INTERNAL": grpc.StatusCode.INTERNAL,
    "ABORTED": grpc.StatusCode.ABORTED,
    "REFUSED_STREAM": grpc.StatusCode.UNAVAILABLE,
}
#: The details of a refused stream (what grpc-core's classifier and the channel's recognise as one).
REFUSED_STREAM_DETAILS = "REFUSED_STREAM: the server refused the stream before reading it (simulated)"
#: How long :func:`serve_grpc_scenario` waits for the server to start (real seconds).
START_TIMEOUT = 10.0


class GrpcFlakyUpstream:
    """A scenario played over gRPC. ``pushback`` replaces the pushback value sent with every
    ``RESOURCE_EXHAUSTED`` (for tests of malformed values; ``None``: the scenario's Retry-After in ms)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int = 0,
        time_scale: float = 1.0,
        max_hang: float = MAX_HANG,
        clock: Clock | None = None,
        pushback: str | None = None,
        break_streams_after: int | None = None,
    ) -> None:
        self.play = FlakyUpstream(scenario, seed=seed, time_scale=time_scale, max_hang=max_hang, clock=clock)
        self.pushback = pushback
        self.break_streams_after = break_streams_after
        self.health: Any = None  # the health servicer, once served
        self._lock = threading.Lock()
        self.restart()

    def restart(self) -> None:
        """Start the scenario again from time 0 with fresh statistics."""
        self.play.restart()
        with self._lock:
            self._methods: collections.Counter[str] = collections.Counter()
            self._previous: collections.Counter[int] = collections.Counter()
            self._reservations: dict[str, inventory_pb2.Reservation] = {}
            self._repeats: collections.Counter[str] = collections.Counter()
            self._arrivals: list[tuple[str, float]] = []

    def stats(self) -> dict[str, Any]:
        """What the upstream received: the HTTP upstream's counts plus ``methods`` (attempts per method),
        ``previous_attempts`` (``grpc-previous-rpc-attempts`` values seen) and ``repeated_request_ids``."""
        stats = self.play.stats()
        with self._lock:
            stats["methods"] = dict(self._methods)
            stats["previous_attempts"] = {str(k): v for k, v in sorted(self._previous.items())}
            stats["repeated_request_ids"] = sorted(k for k, n in self._repeats.items() if n > 1)
        return stats

    def arrivals(self) -> list[tuple[str, float]]:
        """Every request so far: its method and its arrival (scenario seconds since the start), in order."""
        with self._lock:
            return list(self._arrivals)

    async def fault(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> int:
        """Play this request's fate: return (after its latency) when it is answered, else abort the RPC.

        Returns the request's ``grpc-previous-rpc-attempts`` (0 for a first attempt).
        """
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        previous = int(metadata.get("grpc-previous-rpc-attempts", "0") or 0)
        with self._lock:
            self._methods[method] += 1
            self._previous[previous] += 1
            self._arrivals.append((method, self.play.now()))
        decision = self.play.decide(metadata.get("x-request-id"), metadata.get("x-fault-key"))
        await self._answer(context, decision)
        return previous

    async def _answer(self, context: grpc.aio.ServicerContext[Any, Any], decision: Decision) -> None:
        scale = self.play.time_scale
        if decision.grpc == "REFUSED_STREAM":
            await context.abort(grpc.StatusCode.UNAVAILABLE, REFUSED_STREAM_DETAILS)
        if decision.fault is FaultKind.REFUSE:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is not taking requests (simulated)")
        if decision.fault is FaultKind.HANG:
            await asyncio.sleep(self.play.max_hang)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "held past max_hang (simulated)")
        await asyncio.sleep(decision.latency / scale)
        if decision.fault is FaultKind.RESET:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset (simulated)")
        if decision.grpc is not None:
            code: grpc.StatusCode | None = STATUS_FOR_NAME[decision.grpc]
        else:
            code = STATUS_FOR_HTTP.get(decision.status) if decision.status != 200 else None
        if code is None:
            return
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            pushback = self.pushback
            if pushback is None and decision.retry_after is not None:
                pushback = str(round(decision.retry_after * 1000))
            if pushback is not None:
                context.set_trailing_metadata((("grpc-retry-pushback-ms", pushback),))
        await context.abort(code, f"{decision.grpc or 'HTTP'} {decision.status} (simulated)")

    async def set_serving(self, serving: bool) -> None:
        """Make the health service report the inventory service ``SERVING`` or ``NOT_SERVING`` (on the server's
        loop: with :func:`serving`, from the same loop)."""
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set(SERVICE, status)

    def reserve(self, request: inventory_pb2.ReserveRequest, request_id: str | None) -> inventory_pb2.Reservation:
        """Make a reservation; the same request id gets the first reservation back (and is counted)."""
        with self._lock:
            if request_id:
                self._repeats[request_id] += 1
                if request_id in self._reservations:
                    return self._reservations[request_id]
            reservation = inventory_pb2.Reservation(
                sku=request.sku, quantity=request.quantity, request_id=request_id or ""
            )
            if request_id:
                self._reservations[request_id] = reservation
            return reservation


class _Inventory(inventory_pb2_grpc.InventoryServicer):
    def __init__(self, upstream: GrpcFlakyUpstream) -> None:
        self.upstream = upstream

    async def GetItem(
        self, request: inventory_pb2.GetItemRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> inventory_pb2.Item:
        previous = await self.upstream.fault(context, "GetItem")
        return inventory_pb2.Item(sku=request.sku, stock=42, attempt=previous + 1)

    async def Reserve(
        self, request: inventory_pb2.ReserveRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> inventory_pb2.Reservation:
        await self.upstream.fault(context, "Reserve")
        request_id = next((v for k, v in context.invocation_metadata() or () if k == "x-request-id"), None)
        return self.upstream.reserve(request, str(request_id) if request_id else None)

    async def CountItems(self, requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> inventory_pb2.Item:
        count = 0
        async for _ in requests:
            count += 1
        previous = await self.upstream.fault(context, "CountItems")
        return inventory_pb2.Item(sku="count", stock=count, attempt=previous + 1)

    async def EchoStock(self, requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        limit = self.upstream.break_streams_after
        cursor = 0
        async for request in requests:
            if cursor == 0:
                await self.upstream.fault(context, "EchoStock")  # its fate, once the first request is read
            if limit is not None and cursor >= limit:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "stream broken (simulated)")
            cursor += 1
            yield inventory_pb2.StockUpdate(sku=request.sku, cursor=cursor, stock=100 - cursor)

    async def WatchStock(
        self, request: inventory_pb2.WatchStockRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        await self.upstream.fault(context, "WatchStock")
        limit = self.upstream.break_streams_after
        for sent, cursor in enumerate(range(request.after + 1, request.after + 1 + (request.count or 10))):
            if limit is not None and sent >= limit:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "stream broken (simulated)")
            yield inventory_pb2.StockUpdate(sku=request.sku, cursor=cursor, stock=100 - cursor)


async def _start(upstream: GrpcFlakyUpstream, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    inventory_pb2_grpc.add_InventoryServicer_to_server(_Inventory(upstream), server)  # type: ignore[no-untyped-call]
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    upstream.health = health
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, bound


@contextlib.asynccontextmanager
async def serving(upstream: GrpcFlakyUpstream, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``upstream`` on the running event loop (a free port unless ``port``); yield its target, stop on exit.

    Clients on the same loop avoid grpc.aio's complaints about loops closed under it (see :func:`serve_grpc_scenario`
    for a server on a thread of its own)."""
    server, bound = await _start(upstream, host, port)
    try:
        yield f"{host}:{bound}"
    finally:
        await server.stop(0)


@contextlib.contextmanager
def serve_grpc_scenario(upstream: GrpcFlakyUpstream, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``upstream`` on ``host`` (a free port unless ``port``) from a thread with its own event loop;
    yield its target (``127.0.0.1:PORT``), and stop the server on exit."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    started: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started["server"], started["port"] = loop.run_until_complete(_start(upstream, host, port))
        except BaseException as exc:  # handed to the caller's thread below
            started["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="grpc-flaky-upstream", daemon=True)
    thread.start()
    if not ready.wait(START_TIMEOUT) or "error" in started:
        raise RuntimeError(f"the gRPC upstream did not start: {started.get('error')!r}")
    try:
        yield f"{host}:{started['port']}"
    finally:
        stop = asyncio.run_coroutine_threadsafe(started["server"].stop(0), loop)
        with contextlib.suppress(Exception):
            stop.result(START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT)
        loop.close()
