"""The WebSocket layer's own errors (``integration_kit.websocket.errors``) exactly (issue 29, ``websocket/errors.py``):
:class:`StreamClosed` and :class:`OutgoingQueueFull` keep their message, their fields and the call context they pass
up to :class:`~integration_kit.errors.IntegrationError`; a :class:`StreamClosed` built without ``unsent`` reports
nothing unsent (the public default a caller who builds one in a test double relies on).

Pure construction: the whole file runs in milliseconds.
"""

from __future__ import annotations

from integration_kit.errors import IntegrationError, PermanentError
from integration_kit.websocket.errors import OutgoingQueueFull, StreamClosed


def test_stream_closed_keeps_code_reason_unsent_and_context() -> None:
    error = StreamClosed("closed", code=1008, reason="policy", unsent=3, integration="feed", url="wss://feed.example/")
    assert (error.code, error.reason, error.unsent) == (1008, "policy", 3)
    assert (error.message, error.integration, error.url) == ("closed", "feed", "wss://feed.example/")
    assert isinstance(error, PermanentError)


def test_stream_closed_without_unsent_reports_nothing_unsent() -> None:
    assert StreamClosed("ended", code=None, reason="ended").unsent == 0


def test_outgoing_queue_full_keeps_limit_and_context() -> None:
    error = OutgoingQueueFull("full", limit=2, integration="q")
    assert (error.limit, error.message, error.integration) == (2, "full", "q")
    assert isinstance(error, IntegrationError)
    assert not isinstance(error, PermanentError)
