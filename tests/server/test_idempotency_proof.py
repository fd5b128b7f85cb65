"""Proof of exactly-once: 8 client processes send 400 concurrent duplicate POSTs over 50 keys to a live server.

The server is the app of ``idempotency_app.py`` under uvicorn with two worker processes, so claims race across
processes through the store (SQLite once, a private Redis once). Every key's side effect must happen exactly
once, and every duplicate must get the identical replayed response or a 409.
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from asgi_server import serve_in_subprocess
from redis_server import redis_url

from integration_kit import RedisStore, SQLiteStore
from integration_kit.server.idempotency import REPLAYED_HEADER
from integration_kit.stores import Store

__all__ = ["redis_url"]

CLIENTS = 8
KEYS = 50

Result = tuple[str, int, bool, bytes, str | None]


def _send_all(base_url: str, keys: list[str]) -> list[Result]:
    """One client process: one POST per key, in the same order as every other client (maximum contention)."""
    results: list[Result] = []
    with httpx.Client(base_url=base_url, timeout=20) as client:
        for key in keys:
            response = client.post("/orders", json={"item": key[-4:]}, headers={"Idempotency-Key": f'"{key}"'})
            replayed = response.headers.get(REPLAYED_HEADER) == "true"
            results.append((key, response.status_code, replayed, response.content, response.headers.get("x-order-id")))
    return results


def _prove_exactly_once(base_url: str, store: Store, keys: list[str]) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(CLIENTS) as pool:
        batches = pool.starmap_async(_send_all, [(base_url, keys)] * CLIENTS).get(timeout=60)
    by_key: dict[str, list[Result]] = defaultdict(list)
    for batch in batches:
        for result in batch:
            by_key[result[0]].append(result)
    assert sum(len(v) for v in by_key.values()) == CLIENTS * KEYS
    conflicts = replays = 0
    for key in keys:
        assert store.get(f"effects:{key}") == b"1", f"{key} executed {store.get(f'effects:{key}')!r} times"
        answered = [r for r in by_key[key] if r[1] != 409]
        originals = [r for r in answered if not r[2]]
        assert len(originals) == 1, by_key[key]
        _, status, _, body, order_id = originals[0]
        assert status == 201
        for _, other_status, _, other_body, other_order in answered:
            assert (other_status, other_body, other_order) == (status, body, order_id)
        conflicts += CLIENTS - len(answered)
        replays += len(answered) - 1
    assert conflicts + replays == CLIENTS * KEYS - KEYS
    print(f"exactly once: {KEYS} executions, {replays} replays, {conflicts} conflicts (409)")


@pytest.mark.slow
@pytest.mark.timeout(180)  # uvicorn workers and client processes, waited for up to 60 s each
def test_exactly_once_with_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    keys = [f"order-{uuid.uuid4().hex}" for _ in range(KEYS)]
    with (
        SQLiteStore(path) as store,
        serve_in_subprocess("idempotency_app:create_app", {"IK_STORE": f"sqlite:{path}"}, workers=2) as url,
    ):
        _prove_exactly_once(url, store, keys)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(180)  # uvicorn workers and client processes, waited for up to 60 s each
def test_exactly_once_with_redis(redis_url: str) -> None:
    prefix = f"proof:{uuid.uuid4().hex}:"
    keys = [f"order-{uuid.uuid4().hex}" for _ in range(KEYS)]
    env = {"IK_STORE": redis_url, "IK_PREFIX": prefix}
    with (
        RedisStore(redis_url, prefix=prefix) as store,
        serve_in_subprocess("idempotency_app:create_app", env, workers=2) as url,
    ):
        _prove_exactly_once(url, store, keys)
