"""The request checks, exactly: what is refused, what the message quotes, and how a streamed body is kept.

Pure logic on ``httpx.Request`` objects (nothing is sent); the same rules over real sockets are in
tests/faults/test_hardening.py (header injection, framing headers, a stream past the replay limit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from integration_kit.errors import UnsafeRequest
from integration_kit.http.safety import MAX_KEY_LENGTH, checked_headers, checked_key, checked_method, replayable, shown

URL = "http://127.0.0.1:9/upload"


def test_shown_escapes_and_keeps_up_to_forty_characters() -> None:
    assert shown("a\r\nb") == "'a\\r\\nb'"
    assert shown(12) == "'12'"
    fits = "x" * 38  # 40 characters with its quotes
    assert shown(fits) == repr(fits)
    assert shown(fits + "y") == "'" + "x" * 35 + "...'"
    assert len(shown("z" * 500)) == 40


def test_a_bad_method_is_refused_naming_it() -> None:
    with pytest.raises(UnsafeRequest, match=r"^the method 'GE T' is not an HTTP token: refused$"):
        checked_method("GE T")
    assert checked_method("propfind") == "PROPFIND"


def test_a_key_is_refused_with_the_rule_or_its_length() -> None:
    with pytest.raises(UnsafeRequest, match=r"^idempotency_key must be 1-255 printable ASCII characters$"):
        checked_key("caf\u00e9")
    assert checked_key("k" * MAX_KEY_LENGTH) == "k" * MAX_KEY_LENGTH
    with pytest.raises(UnsafeRequest, match=r"^idempotency_key has 256 characters; servers refuse more than 255$"):
        checked_key("k" * (MAX_KEY_LENGTH + 1))


@pytest.mark.parametrize(
    ("header", "key"),
    [('""', ""), ('"abc"', "abc"), ("abc", "abc"), ('  "a\\"b\\\\c"  ', 'a"b\\c'), ('"', '"')],
)
def test_an_idempotency_key_header_is_read_as_a_structured_string(header: str, key: str) -> None:
    headers, parsed = checked_headers({"Idempotency-Key": header, "Accept": "json"}, None)
    assert (headers, parsed) == ({"Accept": "json"}, key)


def _chunks(total: int, size: int = 10) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b"x" * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def test_a_stream_up_to_the_limit_is_kept_whole_with_its_length() -> None:
    request = httpx.Request("PUT", URL, content=_chunks(100))
    assert request.headers.get("Transfer-Encoding") == "chunked"
    assert replayable(request, limit=100) is True
    assert "Transfer-Encoding" not in request.headers
    assert request.headers["Content-Length"] == "100"
    assert request.read() == b"x" * 100


def test_a_stream_past_the_limit_is_sent_once_whole() -> None:
    request = httpx.Request("PUT", URL, content=_chunks(101))
    assert replayable(request, limit=100) is False
    assert b"".join(request.stream) == b"x" * 101  # type: ignore[arg-type]


def test_an_async_stream_cannot_be_replayed() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"x"

    assert replayable(httpx.Request("PUT", URL, content=body())) is False


def test_a_body_in_memory_is_replayable_as_it_is() -> None:
    request = httpx.Request("PUT", URL, content=b"abc")
    assert replayable(request, limit=1) is True
    assert request.read() == b"abc"
