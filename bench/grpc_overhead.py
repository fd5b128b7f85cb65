"""The resilient gRPC channel against a raw ``grpc.aio`` stub, and hedging against plain retries, in one run.

    PYTHONPATH=. .venv/bin/python bench/grpc_overhead.py

(Named grpc_overhead.py, not grpc.py: a script named grpc.py would shadow the grpc package it imports.)

1. Overhead: unary ``GetItem`` calls on loopback to a ``grpc.aio`` server in a subprocess (it answers at once),
   sequential (median time per call) and with 64 calls in flight (calls per second), interleaved rounds, medians
   compared: the raw stub, the kit's ``AsyncResilientChannel`` (retry policy from the service config, no failures),
   and grpcio's own service-config retries (``grpc.service_config``, ``grpc.enable_retries=1``). Goals: the kit at
   most 1.05x the raw stub's time per call sequentially, at least 0.95x its throughput at 64 in flight.
   On a shared, loaded machine these wall-clock ratios swing by tens of percent from run to run, so the script also
   measures the kit's own cost per call with no network (the channel's path around a no-op stub, against awaiting
   the stub bare): it bounds what the kit can take from grpc.aio's throughput, independent of the load.
2. Hedging: the flaky gRPC upstream plays a long-tail latency scenario (lognormal, median 20 ms, p99 600 ms); the
   same calls with plain retries and with A6 hedging (3 copies, 50 ms apart): p50, p99 and the attempts the server
   received per call (the added load).
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import grpc.aio

from integration_kit.grpc import AsyncResilientChannel
from integration_kit.sim.grpc import inventory_pb2 as pb
from integration_kit.sim.grpc import inventory_pb2_grpc as pbg
from integration_kit.sim.grpc.upstream import GrpcFlakyUpstream, serving
from integration_kit.sim.scenarios import Scenario

ROUNDS = 5
SEQUENTIAL = 300
PARALLEL = 1500
IN_FLIGHT = 64
HEDGED_CALLS = 400
SERVICE = "inventory.v1.Inventory"
RETRY = {
    "methodConfig": [
        {
            "name": [{"service": SERVICE}],
            "timeout": "5s",
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}
HEDGED = {
    "methodConfig": [
        {"name": [{"service": SERVICE}], "timeout": "5s", "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.05s"}}
    ],
    "retryThrottling": {"maxTokens": 100, "tokenRatio": 0.5},
}

_SERVER = """
import asyncio, sys
import grpc.aio
from integration_kit.sim.grpc import inventory_pb2 as pb, inventory_pb2_grpc as pbg

class Fast(pbg.InventoryServicer):
    async def GetItem(self, request, context):
        return pb.Item(sku=request.sku, stock=1)

async def main():
    server = grpc.aio.server()
    pbg.add_InventoryServicer_to_server(Fast(), server)
    server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
    await server.start()
    await server.wait_for_termination()

asyncio.run(main())
"""

Call = Callable[[], Awaitable[Any]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _sequential(call: Call) -> float:
    began = time.perf_counter()
    for _ in range(SEQUENTIAL):
        await call()
    return (time.perf_counter() - began) / SEQUENTIAL


async def _parallel(call: Call) -> float:
    left = PARALLEL

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return PARALLEL / (time.perf_counter() - began)


async def overhead(target: str) -> None:
    request = pb.GetItemRequest(sku="a")
    raw = grpc.aio.insecure_channel(target)
    core = grpc.aio.insecure_channel(
        target, options=[("grpc.service_config", json.dumps(RETRY)), ("grpc.enable_retries", 1)]
    )
    kit = AsyncResilientChannel(
        target, tls=False, service_config=RETRY, idempotency={f"{SERVICE}/GetItem": "NO_SIDE_EFFECTS"}
    )
    clients = {"raw grpc.aio": pbg.InventoryStub(raw), "grpcio A6 retries": pbg.InventoryStub(core)}
    clients["kit channel"] = pbg.InventoryStub(kit)
    calls = {name: (lambda stub=stub: stub.GetItem(request, timeout=5)) for name, stub in clients.items()}
    for call in calls.values():  # warm up connections and code paths
        for _ in range(50):
            await call()
    seq: dict[str, list[float]] = {name: [] for name in calls}
    par: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            seq[name].append(await _sequential(call))
            par[name].append(await _parallel(call))
    base_seq, base_par = statistics.median(seq["raw grpc.aio"]), statistics.median(par["raw grpc.aio"])
    print(f"unary GetItem on loopback, {ROUNDS} interleaved rounds, medians")
    print(f"{'client':<20} {'us/call seq':>12} {'ratio':>7} {'calls/s @64':>12} {'ratio':>7}")
    for name in calls:
        s, p = statistics.median(seq[name]), statistics.median(par[name])
        print(f"{name:<20} {s * 1e6:>12.1f} {s / base_seq:>6.3f}x {p:>12.0f} {p / base_par:>6.3f}x")
    print("goals: kit <= 1.05x sequential time, >= 0.95x throughput at 64 in flight")
    cost = await _kit_cost(kit)
    print(f"kit's own cost per call (no network, median of {ROUNDS}): {cost:.1f} us,")
    print(f"  {cost * 1e-6 / base_seq:.1%} of a raw sequential call here,")
    print(f"  {cost * base_par * 1e-6:.1%} of the raw time per call at 64 in flight (1 / its throughput)")
    await kit.close()
    await raw.close()
    await core.close()


async def _kit_cost(kit: AsyncResilientChannel, calls: int = 20000) -> float:
    """Microseconds the kit's path adds to one unary call: the channel around a no-op stub, minus the bare stub."""
    answer = pb.Item(sku="a", stock=1)

    async def stub(request: object, timeout: float | None = None, metadata: object = None) -> pb.Item:
        return answer

    multicallable = kit.unary_unary(f"/{SERVICE}/GetItem", pb.GetItemRequest.SerializeToString, pb.Item.FromString)
    multicallable._inner = stub  # type: ignore[assignment]
    request = pb.GetItemRequest(sku="a")
    bare: list[float] = []
    wrapped: list[float] = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        for _ in range(calls):
            await stub(request, timeout=5, metadata=())
        bare.append(time.perf_counter() - began)
        began = time.perf_counter()
        for _ in range(calls):
            await multicallable(request, timeout=5)
        wrapped.append(time.perf_counter() - began)
    return (statistics.median(wrapped) - statistics.median(bare)) / calls * 1e6


async def _hedging_run(target: str, config: dict[str, Any]) -> list[float]:
    channel = AsyncResilientChannel(
        target, tls=False, service_config=config, idempotency={f"{SERVICE}/GetItem": "NO_SIDE_EFFECTS"}
    )
    stub = pbg.InventoryStub(channel)
    durations: list[float] = []
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with gate:
            began = time.perf_counter()
            await stub.GetItem(pb.GetItemRequest(sku=str(i)))
            durations.append(time.perf_counter() - began)

    await asyncio.gather(*(one(i) for i in range(HEDGED_CALLS)))
    await channel.close()
    return sorted(durations)


async def _served(upstream: GrpcFlakyUpstream, config: dict[str, Any]) -> list[float]:
    async with serving(upstream) as target:  # server and channel on one loop
        return await _hedging_run(target, config)


def hedging() -> None:
    tail = Scenario.from_mapping(
        {
            "name": "long-tail",
            "phases": [{"duration": 3600, "latency": {"kind": "lognormal", "median": 0.02, "p99": 0.6}}],
        }
    )
    print(f"\nlong-tail latency (lognormal median 20 ms, p99 600 ms), {HEDGED_CALLS} calls, 8 in flight")
    print(f"{'policy':<26} {'p50 ms':>8} {'p99 ms':>8} {'attempts/call':>14}")
    for name, config in (("plain retries", RETRY), ("hedging 3 x 50 ms", HEDGED)):
        upstream = GrpcFlakyUpstream(tail, seed=11)
        durations = asyncio.run(_served(upstream, config))
        n = len(durations)
        p50, p99 = durations[n // 2], durations[min(n - 1, int(0.99 * n))]
        load = sum(upstream.stats()["methods"].values()) / n
        print(f"{name:<26} {p50 * 1e3:>8.1f} {p99 * 1e3:>8.1f} {load:>14.2f}")


def main() -> None:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(port)])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as probe:
            grpc.channel_ready_future(probe).result(timeout=15)
        asyncio.run(overhead(f"127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait(10)
    hedging()


if __name__ == "__main__":
    main()
