"""A Starlette app guarded by IdempotencyMiddleware, for the exactly-once proof (served by uvicorn workers).

``IK_STORE`` picks the store: ``sqlite:<path>`` or a ``redis://`` URL (with ``IK_PREFIX``). The side effect of
``POST /orders`` is a counter per key in the same store, so the test counts executions across every worker.
"""

from __future__ import annotations

import os
import uuid

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from integration_kit import IdempotencyMiddleware, RedisStore, SQLiteStore
from integration_kit.stores import Store


def make_store() -> Store:
    """The store named by the environment."""
    where = os.environ["IK_STORE"]
    if where.startswith("sqlite:"):
        return SQLiteStore(where.removeprefix("sqlite:"))
    return RedisStore(where, prefix=os.environ.get("IK_PREFIX", "ik:"))


def create_app() -> Starlette:
    """The order service: one side effect per executed POST, answered with a fresh order id."""
    store = make_store()

    async def create_order(request: Request) -> JSONResponse:
        payload = await request.json()
        key = request.headers["idempotency-key"].strip('"')
        executions = await anyio.to_thread.run_sync(lambda: store.increment(f"effects:{key}", 1))
        await anyio.sleep(0.02)  # keep the claim in flight a little, so duplicates overlap it
        order = {"order_id": uuid.uuid4().hex, "item": payload["item"], "execution": executions}
        return JSONResponse(order, status_code=201, headers={"x-order-id": order["order_id"]})

    middleware = [Middleware(IdempotencyMiddleware, store=store, required=True)]
    return Starlette(routes=[Route("/orders", create_order, methods=["POST"])], middleware=middleware)
