"""Cost per guarded request of each store backend: memory, SQLite (a temp file), Redis (a private server).

    python3 dev.py bench bench/stores.py      (or: .venv/bin/python bench/stores.py)

For each backend, three guards of one request, in microseconds per request:

- idempotency, first: claim a fresh key and store its response (what the first POST with a key costs);
- idempotency, replay: find the completed record (what a duplicate costs);
- shared breaker: ``try_acquire()`` + ``record_success()`` on a store-backed CircuitBreaker;
- shared budget: ``record_success()`` + ``can_retry()`` on a store-backed RetryBudget.

The ``in-process`` row is the plain in-memory breaker and budget, for reference; ratios are against it (for the
idempotency rows, against MemoryStore). Redis is a private ``redis-server`` on a free loopback port, so its
figures include a loopback round trip per operation. Skipped if the binary is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from integration_kit import BreakerPolicy, CircuitBreaker, MemoryStore, RedisStore, RetryBudget, SQLiteStore
from integration_kit.server.idempotency import Claim, IdempotencyGuard
from integration_kit.stores import Store

N = {"memory": 20_000, "sqlite": 3_000, "redis": 3_000}
ROUNDS = 3


def per_call(fn: Callable[[], object], n: int) -> float:
    """Best of ROUNDS: microseconds per call."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def measure(store: Store | None, n: int) -> dict[str, float]:
    """The four figures for one store (``None``: the plain in-memory policies)."""
    policy = BreakerPolicy()
    breaker = CircuitBreaker(policy, name=f"bench-{uuid.uuid4().hex}", store=store)
    budget = RetryBudget(store=store, name=f"bench-{uuid.uuid4().hex}")
    figures = {
        "breaker": per_call(lambda: breaker.try_acquire().record_success(0.001), n),  # type: ignore[union-attr]
        "budget": per_call(lambda: budget.record_success() or budget.can_retry(), n),  # type: ignore[func-returns-value]
    }
    if store is None:
        return figures
    guard = IdempotencyGuard(store)
    fingerprint = "POST /orders sha256:" + "0" * 64
    response = b'{"status":201,"headers":[["content-type","application/json"]]}\n{"order_id":"abc"}'

    def first() -> None:
        claim = guard.begin(uuid.uuid4().hex, fingerprint)
        assert isinstance(claim, Claim)
        guard.complete(claim, response)

    replayed = guard.begin("replayed", fingerprint)
    assert isinstance(replayed, Claim)
    guard.complete(replayed, response)
    figures["idempotency first"] = per_call(first, n)
    figures["idempotency replay"] = per_call(lambda: guard.begin("replayed", fingerprint), n)
    return figures


@contextmanager
def private_redis() -> Iterator[str | None]:
    """A redis-server on a free port for the bench's lifetime, or ``None`` without the binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    rows: dict[str, dict[str, float]] = {"in-process": measure(None, N["memory"])}
    rows["MemoryStore"] = measure(MemoryStore(), N["memory"])
    with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "bench.db") as sqlite:
        rows["SQLiteStore"] = measure(sqlite, N["sqlite"])
    with private_redis() as url:
        if url is not None:
            with RedisStore(url) as redis:
                rows["RedisStore"] = measure(redis, N["redis"])
    columns = ["breaker", "budget", "idempotency first", "idempotency replay"]
    print(f"{'backend':<12}" + "".join(f"{c:>28}" for c in columns))
    for name, figures in rows.items():
        cells = []
        for column in columns:
            if column not in figures:
                cells.append(f"{'-':>28}")
                continue
            base = rows["in-process" if column in ("breaker", "budget") else "MemoryStore"][column]
            cells.append(f"{figures[column]:>14.2f} us {figures[column] / base:>8.1f}x")
        print(f"{name:<12}" + "".join(cells))


if __name__ == "__main__":
    main()
