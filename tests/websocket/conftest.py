"""Fixtures for the WebSocket tests: the flaky feed on a free 127.0.0.1 port, and the asyncio backend (the
``websockets`` asyncio client runs on asyncio only)."""

from __future__ import annotations

import json

import pytest

from integration_kit.websocket import ReconnectPolicy


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


#: Fast reconnects for live tests: tens of milliseconds, still jittered.
FAST = ReconnectPolicy(first_delay=0.05, base_delay=0.05, max_delay=0.2, max_attempts=5)

SUBSCRIBE = json.dumps({"op": "subscribe"})


def resume_after(last: int) -> str:
    """The flaky feed's resume request."""
    return json.dumps({"op": "resume", "after": last})


def seq_of(message: str | bytes) -> int:
    value = json.loads(message)
    assert isinstance(value, dict)
    seq = value["seq"]
    assert isinstance(seq, int)
    return seq
