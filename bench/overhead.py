"""What the resilient clients cost over raw httpx, on loopback, sequentially and under concurrency.

    python3 dev.py bench bench/overhead.py

The server is a bare ASGI app under uvicorn in a *subprocess* (so it does not share the client's GIL), on a free
127.0.0.1 port. Contenders, measured in interleaved rounds so machine noise hits all alike:

- sequential GETs: raw ``httpx.Client``; ``ResilientClient`` with retry, breaker, budget and a Recorder on;
  ``httpx.Client`` wrapped by tenacity (retry) and pybreaker (breaker);
- 16 threads sharing one client: raw httpx, ours, and httpx behind pybreaker;
- 64 asyncio tasks sharing one client: raw ``httpx.AsyncClient`` and ``AsyncResilientClient`` (pybreaker's async
  support needs tornado, so it is not measured there).

Targets (issue 3): ours at most 1.05x raw latency sequentially; at least 0.9x raw throughput under concurrency.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pybreaker
import tenacity

from integration_kit import AsyncResilientClient, BreakerPolicy, BudgetPolicy, ClientConfig, Recorder, ResilientClient

SEQUENTIAL_CALLS = 150
SEQUENTIAL_ROUNDS = 15
THREADS = 16
THREAD_CALLS = 25  # per thread and round
TASKS = 64
TASK_CALLS = 10  # per task and round
CONCURRENT_ROUNDS = 9
BODY = b'{"ok":true}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The smallest useful JSON endpoint."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def serve(port: int) -> None:
    """Run the app on 127.0.0.1:``port`` until killed (the subprocess's job)."""
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.05)  # a separate process is starting: nothing to step
    process.kill()
    raise RuntimeError("the benchmark server did not start")


def config(url: str) -> ClientConfig:
    return ClientConfig(name="bench", base_url=url, breaker=BreakerPolicy(), budget=BudgetPolicy())


def tenacity_pybreaker(client: httpx.Client) -> Callable[[str], httpx.Response]:
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)

    def call(path: str) -> httpx.Response:
        response = client.get(path)
        response.raise_for_status()
        return response

    @tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_random_exponential(multiplier=0.2, max=20),
        retry=tenacity.retry_if_exception_type(httpx.TransportError),
        reraise=True,
    )
    def get(path: str) -> httpx.Response:
        return breaker.call(call, path)  # type: ignore[no-any-return]

    return get


def pybreaker_only(client: httpx.Client) -> Callable[[str], httpx.Response]:
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
    return lambda path: breaker.call(client.get, path)  # type: ignore[no-any-return]


def sync_contenders(
    url: str, peer_name: str, peer: Callable[[httpx.Client], Callable[[str], httpx.Response]]
) -> tuple[dict[str, Callable[[str], object]], list[httpx.Client | ResilientClient]]:
    """Raw httpx, ours (retry, breaker, budget, Recorder on) and a peer library, each with its own client."""
    raw = httpx.Client(base_url=url)
    ours = ResilientClient(config(url), hooks=[Recorder(max_events=10_000)])
    peers = httpx.Client(base_url=url)
    contenders = {"raw httpx": raw.get, "ResilientClient": ours.get, peer_name: peer(peers)}
    return contenders, [raw, ours, peers]


def sequential(url: str) -> dict[str, list[float]]:
    """Microseconds per call, one figure per round, for each contender."""
    contenders, clients = sync_contenders(url, "tenacity + pybreaker", tenacity_pybreaker)
    for get in contenders.values():  # warm up: connections open, code paths hot
        for _ in range(50):
            get("/")
    results: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(SEQUENTIAL_ROUNDS):
        order = list(contenders.items())
        order = order[round_ % len(order) :] + order[: round_ % len(order)]  # rotate who goes first
        for name, get in order:
            started = time.perf_counter()
            for _ in range(SEQUENTIAL_CALLS):
                get("/")
            results[name].append((time.perf_counter() - started) / SEQUENTIAL_CALLS * 1e6)
    for client in clients:
        client.close()
    return results


def threaded(url: str) -> dict[str, list[float]]:
    """Calls per second with 16 threads sharing one client, one figure per round."""
    contenders, clients = sync_contenders(url, "httpx + pybreaker", pybreaker_only)
    results: dict[str, list[float]] = {name: [] for name in contenders}

    def worker(get: Callable[[str], object]) -> None:
        for _ in range(THREAD_CALLS):
            get("/")

    with ThreadPoolExecutor(THREADS) as pool:
        for get in contenders.values():
            list(pool.map(lambda _, g=get: worker(g), range(THREADS)))  # type: ignore[misc]  # warm up
        for round_ in range(CONCURRENT_ROUNDS):
            order = list(contenders.items())
            order = order[round_ % len(order) :] + order[: round_ % len(order)]
            for name, get in order:
                started = time.perf_counter()
                list(pool.map(lambda _, g=get: worker(g), range(THREADS)))  # type: ignore[misc]
                results[name].append(THREADS * THREAD_CALLS / (time.perf_counter() - started))
    for client in clients:
        client.close()
    return results


async def tasks(url: str) -> dict[str, list[float]]:
    """Calls per second with 64 asyncio tasks sharing one client, one figure per round."""
    raw = httpx.AsyncClient(base_url=url)
    ours = AsyncResilientClient(config(url), hooks=[Recorder(max_events=10_000)])
    contenders: dict[str, Callable[[str], Any]] = {"raw httpx": raw.get, "AsyncResilientClient": ours.get}
    results: dict[str, list[float]] = {name: [] for name in contenders}

    async def worker(get: Callable[[str], Any]) -> None:
        for _ in range(TASK_CALLS):
            await get("/")

    for get in contenders.values():
        await asyncio.gather(*(worker(get) for _ in range(TASKS)))
    for round_ in range(CONCURRENT_ROUNDS):
        order = list(contenders.items())
        order = order[round_ % len(order) :] + order[: round_ % len(order)]
        for name, get in order:
            started = time.perf_counter()
            await asyncio.gather(*(worker(get) for _ in range(TASKS)))
            results[name].append(TASKS * TASK_CALLS / (time.perf_counter() - started))
    await raw.aclose()
    await ours.aclose()
    return results


def table(title: str, unit: str, results: dict[str, list[float]], *, lower_is_better: bool) -> str:
    """A plain-text table: each contender's median, and the median of its per-round ratios to raw httpx.

    Rounds are interleaved, so a per-round ratio compares runs made seconds apart: on a shared, noisy machine it
    is a steadier figure than the ratio of the medians.
    """
    raw = results["raw httpx"]
    lines = [title, f"  {'contender':<24}{unit:>12}{'ratio vs raw':>15}   ratio spread (quartiles)"]
    for name, values in results.items():
        ratios = sorted(v / r for v, r in zip(values, raw, strict=True))
        q1, median, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        median = statistics.median(ratios)
        lines.append(f"  {name:<24}{statistics.median(values):>12.0f}{median:>14.2f}x   {q1:.2f}-{q3:.2f}")
    lines.append(f"  ({'lower' if lower_is_better else 'higher'} is better)")
    return "\n".join(lines)


def main() -> None:
    process, url = start_server()
    try:
        started = time.monotonic()
        print(f"server: uvicorn in a subprocess on {url}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
        seq = sequential(url)
        print(
            table(
                f"Sequential GETs ({SEQUENTIAL_CALLS} calls x {SEQUENTIAL_ROUNDS} rounds)",
                "us/call",
                seq,
                lower_is_better=True,
            )
        )
        print()
        thr = threaded(url)
        calls = THREADS * THREAD_CALLS
        print(
            table(
                f"{THREADS} threads, one client ({calls} calls x {CONCURRENT_ROUNDS} rounds)",
                "calls/s",
                thr,
                lower_is_better=False,
            )
        )
        print()
        asy = asyncio.run(tasks(url))
        calls = TASKS * TASK_CALLS
        print(
            table(
                f"{TASKS} asyncio tasks, one client ({calls} calls x {CONCURRENT_ROUNDS} rounds)",
                "calls/s",
                asy,
                lower_is_better=False,
            )
        )
        print(f"\ntotal {time.monotonic() - started:.1f}s")
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        threading.current_thread().name = "bench"
        main()
