"""Helpers of the WebSocket tests: fast reconnects, the flaky feed's subscribe and resume messages, a message's
sequence number."""

from __future__ import annotations

import json

from integration_kit.websocket import ReconnectPolicy

#: Fast reconnects for live tests: tens of milliseconds, still jittered.
FAST = ReconnectPolicy(first_delay=0.05, base_delay=0.05, max_delay=0.2, max_attempts=5)

SUBSCRIBE = json.dumps({"op": "subscribe"})


def resume_after(last: int) -> str:
    """The flaky feed's resume request."""
    return json.dumps({"op": "resume", "after": last})


def seq_of(message: str | bytes) -> int:
    """The ``seq`` of one of the flaky feed's messages."""
    value = json.loads(message)
    assert isinstance(value, dict)
    seq = value["seq"]
    assert isinstance(seq, int)
    return seq
