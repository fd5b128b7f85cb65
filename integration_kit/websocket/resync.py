"""Filling a gap from the partner's HTTP API: a :data:`~integration_kit.websocket.client.Resync` built on the kit's
:class:`~integration_kit.http.AsyncResilientClient`, so the snapshot request has the same retries, breaker,
deadline and redaction as any other call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from integration_kit.errors import InvalidResponse
from integration_kit.http.client import AsyncResilientClient
from integration_kit.websocket.client import Resync
from integration_kit.websocket.config import Message

__all__ = ["http_resync"]


def http_resync(client: AsyncResilientClient, path: str, *, first: str = "from", last: str = "to") -> Resync:
    """A resync that GETs ``path`` with the query ``{first}=<first missing>&{last}=<last missing>`` and expects a
    JSON array of the missing messages (objects), returned as JSON text in order.

    Raises :class:`~integration_kit.errors.InvalidResponse` when the answer is not a JSON array, and whatever the
    client raises for the request (its retries spent, its breaker open).
    """

    async def resync(expected: int, received: int) -> Sequence[Message]:
        response = await client.get(path, params={first: expected, last: received - 1})
        try:
            items = response.json()
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise InvalidResponse(f"resync: {path} did not answer a JSON array")
        return [json.dumps(item, separators=(",", ":")) for item in items]

    return resync
