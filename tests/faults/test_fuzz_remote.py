"""Fuzzing the remote-input side: whatever a partner sends in Retry-After, Date and the body, the client raises
only an IntegrationError, and every call ends with exactly one call-finished event.

The transport is ``httpx.MockTransport`` (pure logic under test: header and body parsing); the same paths run
on real sockets in ``test_matrix.py``.
"""

from __future__ import annotations

import contextlib
import math

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_kit import ClientConfig, ManualClock, Recorder, ResilientClient
from integration_kit.errors import IntegrationError, InvalidResponse
from integration_kit.events import CallFinished
from integration_kit.http.exchange import retry_after_seconds
from integration_kit.policies.config import RetryPolicy

# Header values httpx can carry: latin-1 without CR, LF or NUL.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=60)
http_dates = st.builds(
    "{}, {:02d} {} {} {:02d}:{:02d}:{:02d} {}".format,
    st.sampled_from(["Mon", "Tue", "Sun", "Xyz", ""]),
    st.integers(-5, 99),
    st.sampled_from(["Jan", "Feb", "Dec", "Foo"]),
    st.one_of(st.integers(-10, 10_000), st.integers(10**6, 10**30)),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["GMT", "-0000", "+2400", "UTC", ""]),
)
hints = st.one_of(header_text, http_dates, st.integers(-(10**30), 10**30).map(str), st.floats().map(str))


@settings(max_examples=300, deadline=None)
@given(retry_after=hints, date=st.one_of(st.none(), header_text, http_dates))
def test_retry_after_and_date_never_raise(retry_after: str, date: str | None) -> None:
    headers = _latin1({"Retry-After": retry_after, **({"Date": date} if date is not None else {})})
    seconds = retry_after_seconds(httpx.Response(503, headers=headers))
    assert seconds is None or (seconds >= 0 and not math.isnan(seconds))


def _latin1(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Headers as bytes, the way they come off the wire (httpx encodes str values as ASCII only)."""
    return [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]


def _client(handler: httpx.MockTransport, recorder: Recorder) -> ResilientClient:
    config = ClientConfig(
        name="fuzz",
        base_url="http://127.0.0.1:9",
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
        deadline=30.0,
        breaker=None,
    )
    return ResilientClient(config, transport=handler, clock=ManualClock(), hooks=[recorder])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.sampled_from([200, 301, 400, 401, 404, 429, 500, 503, 504, 599]),
    retry_after=hints,
    date=st.one_of(st.none(), header_text, http_dates),
    body=st.binary(max_size=300),
)
def test_any_response_ends_in_a_value_or_an_integration_error(
    status: int, retry_after: str, date: str | None, body: bytes
) -> None:
    headers = {"Retry-After": retry_after, "Content-Type": "application/json"}
    if date is not None:
        headers["Date"] = date
    recorder = Recorder()
    transport = httpx.MockTransport(lambda request: httpx.Response(status, headers=_latin1(headers), content=body))
    with _client(transport, recorder) as client, contextlib.suppress(IntegrationError):
        client.json("/x")
    assert len(recorder.of(CallFinished)) == 1


def _nested(depth: int, opener: bytes, closer: bytes) -> bytes:
    return opener * depth + closer * depth


json_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.builds(_nested, st.integers(1, 300_000), st.sampled_from([b"[", b'{"a":']), st.sampled_from([b"]", b"}"])),
    st.integers(0, 10**5).map(lambda n: b"1" * n),
    st.sampled_from([b"NaN", b"-Infinity", b'"\\ud800"', b"\xff\xfe{}", b"\xef\xbb\xbf{}", b"1e999999"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_bodies, content_type=st.sampled_from(["application/json", "application/problem+json", "text/html"]))
def test_json_of_any_body_is_a_value_or_invalid_response(body: bytes, content_type: str) -> None:
    recorder = Recorder()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"Content-Type": content_type}, content=body)
    )
    with _client(transport, recorder) as client, contextlib.suppress(InvalidResponse):
        client.json("/x")
    assert len(recorder.of(CallFinished)) == 1
