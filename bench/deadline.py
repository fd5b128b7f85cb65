"""How far past its deadline a call ends: the precise figure behind the tests' loose wall-clock bounds.

    python3 dev.py bench bench/deadline.py        # or: .venv/bin/python bench/deadline.py [--calls 50]

A uvicorn server on 127.0.0.1 either never answers (``/hang``) or sends headers and then one byte every 100 ms
(``/trickle``). Sync and async clients call it with ``deadline=0.5`` and long per-phase timeouts, alone and
``--calls`` at once (threads for sync, tasks for async). Printed: the median and worst overshoot past the deadline,
in milliseconds. The tests assert only ``< deadline + 1 s`` (which holds on a loaded 2-core machine); the target
here is tens of milliseconds on a quiet one. Bounded: each case is one round of calls, about a second.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from integration_kit import AsyncResilientClient, ClientConfig, ResilientClient
from integration_kit.errors import IntegrationError
from integration_kit.policies.config import RetryPolicy, Timeouts

DEADLINE = 0.5


async def hang(request: Request) -> Response:
    await anyio.sleep(5)
    return PlainTextResponse("late")


async def trickle(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"x"
            await anyio.sleep(0.1)

    return StreamingResponse(body())


def serve() -> tuple[str, Callable[[], None]]:
    """Start the server on a free port; return its URL and a stop function."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = Starlette(routes=[Route("/hang", hang), Route("/trickle", trickle)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


def config(url: str, calls: int) -> ClientConfig:
    return ClientConfig(
        name="bench",
        base_url=url,
        deadline=DEADLINE,
        timeouts=Timeouts(connect=10.0, read=10.0, write=10.0, pool=10.0),
        retry=RetryPolicy(max_attempts=3, base_delay=0.05),
        breaker=None,
        budget=None,
    )


def sync_overshoots(url: str, path: str, calls: int) -> list[float]:
    with ResilientClient(config(url, calls)) as client:

        def one(_: int) -> float:
            started = time.monotonic()
            with contextlib.suppress(IntegrationError):
                client.get(path)
            return time.monotonic() - started - DEADLINE

        with ThreadPoolExecutor(calls) as pool:
            return list(pool.map(one, range(calls)))


def async_overshoots(url: str, path: str, calls: int) -> list[float]:
    results: list[float] = []

    async def main() -> None:
        async with AsyncResilientClient(config(url, calls)) as client:

            async def one() -> None:
                started = time.monotonic()
                with contextlib.suppress(IntegrationError):
                    await client.get(path)
                results.append(time.monotonic() - started - DEADLINE)

            async with anyio.create_task_group() as group:
                for _ in range(calls):
                    group.start_soon(one)

    anyio.run(main)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="concurrent calls in the loaded case (default 50)")
    args = parser.parse_args()
    url, stop = serve()
    try:
        print(f"deadline {DEADLINE * 1000:.0f} ms; overshoot past it, ms (median / worst)")
        for path in ("/hang", "/trickle"):
            for calls in (1, args.calls):
                for name, measure in (("sync", sync_overshoots), ("async", async_overshoots)):
                    over = [o * 1000 for o in measure(url, path, calls)]
                    print(f"{path:<9} {name:<6} x{calls:<4} {statistics.median(over):8.1f} / {max(over):8.1f}")
    finally:
        stop()


if __name__ == "__main__":
    main()
