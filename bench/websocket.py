"""WebSocket: the kit's client against a bare ``websockets`` client, in one run.

    PYTHONPATH=. .venv/bin/python bench/websocket.py [--messages 50000] [--rounds 3] [--seconds 4]

1. Throughput on loopback: a ``websockets`` server in another process sends ``--messages`` small JSON messages as
   fast as it can, then closes (1000). Each client reads them all; printed: messages per second, best of
   ``--rounds``, and the ratio to the bare client (goal >= 0.9x). The kit is measured without a sequence field
   (the cost of the driver itself) and with one (``sequence="seq"``: one ``json.loads`` per message, compared with
   a bare client that parses too).
2. Outcomes on the same drops: the flaky feed (:class:`~integration_kit.sim.ws_upstream.FlakyFeed`, 200 messages a
   second) drops each of the first connections after 150 messages (1006, 1012, 1006); each client reads for
   ``--seconds``. Printed: messages lost (numbers skipped), delivered twice, and time disconnected (the sum of the
   silences longer than 50 ms between two messages) for the kit (resume, ``first_delay=0.5``), the ``websockets``
   reconnect iterator (``async for ws in connect(...)``) and a naive ``while True`` loop (one second after a
   failure).

Bounded: every client stops after ``--messages`` messages or ``--seconds`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from integration_kit.sim.ws_upstream import ConnectionFault, FeedScript, FlakyFeed
from integration_kit.websocket import ReconnectPolicy, ResilientWebSocket, WebSocketConfig

SUBSCRIBE = json.dumps({"op": "subscribe"})


# -- 1. throughput --------------------------------------------------------------------------------------------


def _blaster(port: int, messages: int, ready: Any) -> None:
    async def handler(conn: ServerConnection) -> None:
        for n in range(1, messages + 1):
            await conn.send(f'{{"seq": {n}, "price": 100.25}}')
        await conn.close(1000)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, max_queue=None):
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


async def bare(url: str, parse: bool) -> int:
    count = 0
    async with connect(url, max_queue=None) as ws:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if parse:
                    json.loads(message)
                count += 1
    return count


async def kit(url: str, parse: bool) -> int:
    count = 0
    config = WebSocketConfig(url=url, sequence="seq" if parse else None)
    async with ResilientWebSocket(config) as ws:
        async for _ in ws:
            count += 1
    return count


def throughput(messages: int, rounds: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_blaster, args=(port, messages, ready), daemon=True)
    server.start()
    ready.wait(10)
    url = f"ws://127.0.0.1:{port}/"
    cases: dict[str, Callable[[], Awaitable[int]]] = {
        "bare websockets": lambda: bare(url, False),
        "kit": lambda: kit(url, False),
        "bare websockets + json.loads": lambda: bare(url, True),
        "kit, sequence='seq'": lambda: kit(url, True),
    }
    best: dict[str, float] = dict.fromkeys(cases, 0.0)
    try:
        for _ in range(rounds):
            for name, case in cases.items():  # interleaved, so drift in the machine's load hits every case
                start = time.perf_counter()
                got = asyncio.run(case())
                rate = got / (time.perf_counter() - start)
                if got != messages:
                    raise SystemExit(f"{name}: read {got} of {messages} messages")
                best[name] = max(best[name], rate)
    finally:
        server.terminate()
        server.join(5)
    print(f"\n1. throughput on loopback, {messages:,} messages, best of {rounds}")
    print(f"{'client':32} {'msgs/s':>10} {'ratio':>7}")
    for name, rate in best.items():
        base = best["bare websockets + json.loads" if "seq" in name or "json" in name else "bare websockets"]
        print(f"{name:32} {rate:10,.0f} {rate / base:6.2f}x")


# -- 2. outcomes on the same drops ----------------------------------------------------------------------------


def _script() -> FeedScript:
    drops = (ConnectionFault(150, None), ConnectionFault(150, 1012), ConnectionFault(150, None))
    return FeedScript(rate=200.0, connections=drops)


class Tally:
    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.times: list[float] = []

    def add(self, message: str | bytes) -> None:
        self.seqs.append(json.loads(message)["seq"])
        self.times.append(time.monotonic())

    def row(self, name: str) -> str:
        seqs = self.seqs
        lost = max(seqs) - min(seqs) + 1 - len(set(seqs)) if seqs else 0
        twice = len(seqs) - len(set(seqs))
        away = sum(b - a for a, b in zip(self.times, self.times[1:], strict=False) if b - a > 0.05)
        return f"{name:34} {len(seqs):9,} {lost:6} {twice:6} {away:12.2f}"


async def kit_client(url: str, tally: Tally, seconds: float) -> None:
    config = WebSocketConfig(
        url=url,
        subscribe=(SUBSCRIBE,),
        sequence="seq",
        resume=lambda last: json.dumps({"op": "resume", "after": last}),
        reconnect=ReconnectPolicy(first_delay=0.5, base_delay=0.5),
    )
    async with ResilientWebSocket(config) as ws:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for message in ws:
                    tally.add(message)


async def iterator_client(url: str, tally: Tally, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for ws in connect(url):
                await ws.send(SUBSCRIBE)
                with contextlib.suppress(ConnectionClosed):
                    async for message in ws:
                        tally.add(message)


async def naive_client(url: str, tally: Tally, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                try:
                    async with connect(url) as ws:
                        await ws.send(SUBSCRIBE)
                        async for message in ws:
                            tally.add(message)
                except (OSError, ConnectionClosed):
                    await asyncio.sleep(1.0)


def outcomes(seconds: float) -> None:
    print(f"\n2. the same three drops (1006, 1012, 1006) of a 200 messages/s feed, {seconds:g} s per client")
    print(f"{'client':34} {'delivered':>9} {'lost':>6} {'twice':>6} {'disconnected':>12}")
    clients = {
        "kit (resume, first_delay 0.5 s)": kit_client,
        "websockets reconnect iterator": iterator_client,
        "naive while True loop": naive_client,
    }
    for name, client in clients.items():
        tally = Tally()
        with FlakyFeed(_script()) as feed:
            asyncio.run(client(feed.url, tally, seconds))
        print(tally.row(name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    throughput(args.messages, args.rounds)
    outcomes(args.seconds)


if __name__ == "__main__":
    main()
