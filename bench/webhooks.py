"""Webhook receiver: acknowledgement latency at a steady 200 deliveries/s, and the most it acknowledges per second.

    .venv/bin/python bench/webhooks.py          (about 40 s)

A receiver process (uvicorn, one worker, ``tests/webhook_app.py``: Standard Webhooks verification and a SQLite inbox
committed with ``synchronous=FULL``) is sent signed deliveries over loopback, once with a handler processing behind
it in the same process and once receiving only, side by side:

- paced: 200 deliveries/s for 10 s (open loop: each is sent at its scheduled time, whatever the others do); the
  acknowledgement latency is from the request's start to its 2xx, p50 / p99 / max in milliseconds;
- flood: 16 concurrent senders for 5 s; acknowledged deliveries per second.

Every delivery is a new event (nothing is deduplicated). The sender runs in this process: pre-signed requests over
asyncio keep-alive connections, so its own cost stays small next to the receiver's.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_webhook_loss_proof import start_receiver
from webhook_app import SECRET

from integration_kit.server.signatures import StandardWebhooks

RATE = 200.0
PACED_SECONDS = 10.0
FLOOD_SECONDS = 5.0
FLOOD_CONCURRENCY = 16


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def requests(prefix: str, count: int, port: int) -> list[bytes]:
    """``count`` signed HTTP/1.1 requests, built before the clock starts (signing is the sender's cost, not ours)."""
    scheme = StandardWebhooks(SECRET)
    built = []
    for i in range(count):
        body = f'{{"type":"order.created","id":"{prefix}_{i}"}}'.encode()
        head = f"POST / HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in scheme.sign(body, msg_id=f"{prefix}_{i}").items())
        built.append(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
    return built


class Connections:
    """A pool of keep-alive loopback connections speaking just enough HTTP/1.1 (a light load generator)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, request: bytes) -> float:
        began = time.perf_counter()
        reused = bool(self.idle)
        reader, writer = self.idle.pop() if reused else await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
            writer.close()  # the server closed it while idle (keep-alive timeout): it never saw the request
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        lines = head.lower().split(b"\r\n")
        await reader.readexactly(next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length")))
        elapsed = time.perf_counter() - began
        self.idle.append((reader, writer))
        if status != 200:
            raise RuntimeError(f"HTTP {status}")
        return elapsed

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def paced(port: int) -> list[float]:
    """Open loop: request i starts at ``i / RATE`` seconds, whatever the others do."""
    batch = requests("paced", int(RATE * PACED_SECONDS), port)
    pool = Connections(port)
    start = time.perf_counter()
    tasks = []
    for i, request in enumerate(batch):
        delay = start + i / RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(pool.post(request)))
    latencies = await asyncio.gather(*tasks)
    pool.close()
    return latencies


async def flood(port: int) -> int:
    """Closed loop: FLOOD_CONCURRENCY senders, each sending its next delivery when the last is acknowledged."""
    batch = requests("flood", 20_000, port)
    pool = Connections(port)
    stop_at = time.perf_counter() + FLOOD_SECONDS
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at and batch:
            await pool.post(batch.pop())
            done += 1

    await asyncio.gather(*(worker() for _ in range(FLOOD_CONCURRENCY)))
    pool.close()
    return done


def measure(processing: bool) -> tuple[list[float], int]:
    """Paced latencies (ms) and flood acknowledgements of a fresh receiver process, with or without processing."""
    with tempfile.TemporaryDirectory() as folder:
        env = {"IK_INBOX": os.path.join(folder, "inbox.db"), "IK_WORK": "0"}
        if processing:
            env["IK_EFFECTS"] = os.path.join(folder, "fx.db")
        process, url = start_receiver(env)
        try:
            port = int(url.rsplit(":", 1)[1])
            latencies = [s * 1000 for s in asyncio.run(paced(port))]
            return latencies, asyncio.run(flood(port))
        finally:
            process.terminate()
            process.wait()


def main() -> None:
    print(
        f"receiver paced at {RATE:.0f}/s for {PACED_SECONDS:.0f}s, then a flood of {FLOOD_CONCURRENCY} senders for "
        f"{FLOOD_SECONDS:.0f}s; ack latency in ms"
    )
    print(f"{'':<34} {'p50':>7} {'p99':>8} {'max':>8} {'acks/s':>8}")
    for label, processing in (("with the handler processing behind", True), ("receiving only", False)):
        latencies, acknowledged = measure(processing)
        print(
            f"{label:<34} {statistics.median(latencies):7.2f} {quantile(latencies, 0.99):8.2f} "
            f"{max(latencies):8.2f} {acknowledged / FLOOD_SECONDS:8.0f}"
        )
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
