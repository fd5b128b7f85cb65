"""``http/exchange.py`` value by value, pinned by the fifth mutation sweep (issue 29): the parts of :class:`Exchange`
that the earlier sweeps' time bounds never reached.

- ``prepare``: the attempt's expiry is now plus what is left (in real seconds: ``time_scale``), every phase is
  clipped to it (a phase without a timeout gets all of it) and carries it as a ``HeldTimeout``; the request's other
  extensions are kept; the idempotency key is set once, as an RFC 8941 string.
- ``scope``: no wrapping hook gives the shared null scope, one gives its own scope, several are entered in order.
- ``answered``: an answer completed after the expiry is a read timeout (httpx's, saying so, with the request); a
  parser that raises becomes an outcome.
- ``failed``: each httpx exception's outcome kind, the certificate failure, an unknown exception, an
  ``IntegrationError`` that is not an attempt's (raised).
- ``reader``: a declared length past the bound is refused before reading; a framed one within it is read whole.
- ``Body.feed``: a strict body of exactly the limit is kept, one byte more raises; a snippet keeps exactly the
  limit and asks for no more.
- ``longest``, ``read_response``, ``structured_string``, ``retry_after_seconds`` (a date from the response's
  ``Date``, else from now in UTC whatever the local time zone).

Pure: the exchange is built on a request that is never sent (the client-level proofs over loopback servers are in
``test_client_guarantees.py`` and ``test_exchange_boundary.py``); each test runs in milliseconds.
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from integration_kit.engine.actions import Send
from integration_kit.errors import (
    CertificateError,
    InvalidResponse,
    ResponseTooLarge,
    ServerError,
    UnsafeRequest,
)
from integration_kit.http.backend import HeldTimeout
from integration_kit.http.exchange import (
    _NO_SCOPE,
    SNIPPET_BYTES,
    Body,
    Exchange,
    ExchangeContext,
    longest,
    read_response,
    retry_after_seconds,
    structured_string,
)
from integration_kit.policies.outcome import OutcomeKind

PHASES = {"connect": 2.0, "read": 5.0, "write": 3.0, "pool": 1.0}


def exchange(timeouts: dict[str, float | None] | None = None, **context: Any) -> Exchange:
    request = httpx.Request("POST", "http://127.0.0.1:9/x", extensions={"sni_hostname": "partner"})
    phases = dict(PHASES if timeouts is None else timeouts)
    return Exchange(ExchangeContext(**context), request, None, phases, frozenset({503}), longest(phases))  # type: ignore[arg-type]


# -- prepare ---------------------------------------------------------------------------------------------------------


def test_no_deadline_sends_the_configured_phases_as_they_are() -> None:
    ex = exchange()
    request = ex.prepare(Send(1, None, None))
    assert request is ex.request
    assert ex.expires is None
    assert request.extensions == {"sni_hostname": "partner", "timeout": PHASES}
    assert "idempotency-key" not in request.headers


def test_a_deadline_past_the_longest_phase_keeps_each_phase_and_holds_it_to_the_expiry() -> None:
    ex = exchange()
    before = time.monotonic()
    request = ex.prepare(Send(1, 7.0, None))
    after = time.monotonic()
    assert ex.expires is not None
    assert before + 7.0 <= ex.expires <= after + 7.0
    timeouts = request.extensions["timeout"]
    assert timeouts == PHASES
    assert all(type(t) is HeldTimeout and t.expires == ex.expires for t in timeouts.values())
    assert request.extensions["sni_hostname"] == "partner"


def test_a_short_deadline_clips_every_phase_and_gives_a_phase_without_a_timeout_all_of_it() -> None:
    ex = exchange({"connect": 2.0, "read": None, "write": 0.5, "pool": 4.0})
    assert ex.longest == math.inf
    request = ex.prepare(Send(2, 3.0, None))
    timeouts = request.extensions["timeout"]
    assert timeouts == {"connect": 2.0, "read": 3.0, "write": 0.5, "pool": 3.0}
    assert all(type(t) is HeldTimeout and t.expires == ex.expires for t in timeouts.values())


def test_the_deadline_is_counted_in_real_seconds_on_a_faster_clock() -> None:
    ex = exchange(time_scale=4.0)
    assert ex.real_timeout(Send(1, 8.0, None)) == 2.0
    assert ex.real_timeout(Send(1, None, None)) is None
    before = time.monotonic()
    request = ex.prepare(Send(1, 8.0, None))
    assert ex.expires is not None
    assert before + 2.0 <= ex.expires <= time.monotonic() + 2.0
    assert request.extensions["timeout"] == {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 1.0}


def test_the_key_is_set_once_as_a_structured_string() -> None:
    ex = exchange()
    ex.prepare(Send(1, None, 'k"1\\'))
    assert ex.request.headers["Idempotency-Key"] == '"k\\"1\\\\"'
    assert (b"Idempotency-Key", b'"k\\"1\\\\"') in ex.request.headers.raw  # the draft's spelling, on the wire
    assert ex.key_sent is True
    ex.request.headers["Idempotency-Key"] = "changed by a hook"
    ex.prepare(Send(2, None, 'k"1\\'))
    assert ex.request.headers["Idempotency-Key"] == "changed by a hook"


def test_structured_string_escapes_backslash_before_quote() -> None:
    assert structured_string("plain-key") == '"plain-key"'
    assert structured_string('a"b') == '"a\\"b"'
    assert structured_string("a\\b") == '"a\\\\b"'
    assert structured_string('\\"') == '"\\\\\\""'


# -- scope -----------------------------------------------------------------------------------------------------------


class Wrapper:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def __call__(self, event: object) -> None:
        pass

    @contextmanager
    def wrap_attempt(self, headers: httpx.Headers) -> Iterator[None]:
        self.log.append(f"enter {self.name} {headers.get('x-id')}")
        yield
        self.log.append(f"exit {self.name}")


def test_no_wrapping_hook_gives_the_shared_null_scope() -> None:
    assert exchange().scope(httpx.Request("GET", "http://127.0.0.1:9/")) is _NO_SCOPE
    assert exchange(hooks=[print]).scope(httpx.Request("GET", "http://127.0.0.1:9/")) is _NO_SCOPE


def test_one_wrapping_hook_scopes_the_attempt() -> None:
    log: list[str] = []
    request = httpx.Request("GET", "http://127.0.0.1:9/", headers={"x-id": "7"})
    with exchange(hooks=[print, Wrapper("a", log)]).scope(request):
        log.append("send")
    assert log == ["enter a 7", "send", "exit a"]


def test_several_wrapping_hooks_are_entered_in_order_and_left_in_reverse() -> None:
    log: list[str] = []
    request = httpx.Request("GET", "http://127.0.0.1:9/", headers={"x-id": "8"})
    with exchange(hooks=[Wrapper("a", log), print, Wrapper("b", log)]).scope(request):
        log.append("send")
    assert log == ["enter a 8", "enter b 8", "send", "exit b", "exit a"]


# -- answered --------------------------------------------------------------------------------------------------------


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, content=body, request=httpx.Request("GET", "http://127.0.0.1:9/"))


def test_an_answer_completed_after_the_expiry_is_a_read_timeout() -> None:
    response = answer(200, b"ok")
    body = Body(100, True, time.monotonic() - 0.001, response)
    body.chunks.append(b"ok")
    outcome = exchange().answered(response, body)
    assert outcome.kind is OutcomeKind.READ_TIMEOUT
    assert isinstance(outcome.error, httpx.ReadTimeout)
    assert str(outcome.error) == "the deadline passed while reading the response"
    assert outcome.error.request is response.request


def test_an_answer_within_the_expiry_is_read() -> None:
    response = answer(200, b"ok")
    body = Body(100, True, time.monotonic() + 60, response)
    body.chunks.append(b"ok")
    outcome = exchange().answered(response, body)
    assert (outcome.kind, outcome.status, outcome.error) == (OutcomeKind.STATUS, 200, None)
    assert outcome.value.content == b"ok"  # type: ignore[union-attr]


def test_an_answer_whose_reading_raises_becomes_an_outcome() -> None:
    response = answer(503, b"down")
    body = Body(100, False, None, response)
    body.chunks.append(b"down")
    ex = exchange()
    ex.context = ExchangeContext(secrets=(1,))  # type: ignore[arg-type]  # a secret redact_text cannot search for
    outcome = ex.answered(response, body)
    assert outcome.kind is OutcomeKind.ERROR
    assert isinstance(outcome.error, InvalidResponse)
    assert outcome.error.message == "unusable response (TypeError)"
    assert isinstance(outcome.error.__cause__, TypeError)


def test_a_status_answer_keeps_its_typed_error() -> None:
    response = answer(503, b"down")
    body = Body(100, False, None, response)
    body.chunks.append(b"down")
    outcome = exchange().answered(response, body)
    assert (outcome.kind, outcome.status) == (OutcomeKind.STATUS, 503)
    assert isinstance(outcome.error, ServerError)


# -- failed ----------------------------------------------------------------------------------------------------------

REQUEST = httpx.Request("GET", "http://127.0.0.1:9/")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectTimeout("c", request=REQUEST), OutcomeKind.CONNECT_TIMEOUT),
        (httpx.PoolTimeout("p", request=REQUEST), OutcomeKind.POOL_TIMEOUT),
        (httpx.WriteTimeout("w", request=REQUEST), OutcomeKind.WRITE_TIMEOUT),
        (httpx.ReadTimeout("r", request=REQUEST), OutcomeKind.READ_TIMEOUT),
        (httpx.ConnectError("c", request=REQUEST), OutcomeKind.CONNECT_ERROR),
        (httpx.ProxyError("p", request=REQUEST), OutcomeKind.CONNECT_ERROR),
        (httpx.TimeoutException("t", request=REQUEST), OutcomeKind.READ_TIMEOUT),
        (httpx.ReadError("r", request=REQUEST), OutcomeKind.CONNECTION_LOST),
        (httpx.WriteError("w", request=REQUEST), OutcomeKind.CONNECTION_LOST),
        (httpx.RemoteProtocolError("r", request=REQUEST), OutcomeKind.CONNECTION_LOST),
    ],
)
def test_each_httpx_exception_has_its_outcome_kind(exc: Exception, kind: OutcomeKind) -> None:
    outcome = exchange().failed(exc)
    assert outcome.kind is kind
    assert outcome.error is exc


def test_an_attempt_error_is_kept_as_it_is() -> None:
    error = ServerError("HTTP 502", status=502)
    outcome = exchange().failed(error)
    assert (outcome.kind, outcome.error) == (OutcomeKind.ERROR, error)


def test_an_integration_error_that_is_not_an_attempts_ends_the_call() -> None:
    error = UnsafeRequest("refused a redirect")
    with pytest.raises(UnsafeRequest) as caught:
        exchange().failed(error)
    assert caught.value is error


def test_a_certificate_that_did_not_verify_is_a_certificate_error() -> None:
    cause = ssl.SSLCertVerificationError(1, "bad")
    cause.verify_message = "self-signed certificate"
    exc = httpx.ConnectError("tls")
    exc.__cause__ = cause
    outcome = exchange().failed(exc)
    assert outcome.kind is OutcomeKind.ERROR
    assert isinstance(outcome.error, CertificateError)
    assert outcome.error.message == "TLS certificate verification failed: self-signed certificate"
    assert outcome.error.__cause__ is exc


def test_an_unknown_exception_is_an_invalid_response_naming_it() -> None:
    exc = KeyError("x")
    outcome = exchange().failed(exc)
    assert outcome.kind is OutcomeKind.ERROR
    assert type(outcome.error) is InvalidResponse
    assert outcome.error.message == "unusable response (KeyError)"
    assert outcome.error.__cause__ is exc


def test_result_is_the_outcomes_value() -> None:
    response = answer(200)
    assert exchange().result(exchange().answered(response, Body(10, True, None, response, whole=True))) is response


# -- longest, read_response ------------------------------------------------------------------------------------------


def test_longest_is_the_longest_phase_or_infinite() -> None:
    assert longest({"connect": 2.0, "read": 5.0, "write": 3.0}) == 5.0
    assert longest({"connect": 2.0, "read": None}) == math.inf
    assert longest({"connect": 0.5}) == 0.5


def test_read_response_keeps_the_answer_with_its_body() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:9/a")
    previous = httpx.Response(301, request=request)
    next_request = httpx.Request("GET", "http://127.0.0.1:9/b")
    response = httpx.Response(
        404,
        headers={"x-a": "1", "content-length": "5"},
        request=request,
        extensions={"http_version": b"HTTP/1.1"},
        history=[previous],
        default_encoding="latin-1",
        stream=httpx.ByteStream(b"ignored"),
    )
    response.elapsed = timedelta(seconds=1.5)
    response.next_request = next_request
    read = read_response(response, b"caf\xe9!")
    assert read.status_code == 404
    assert read.content == b"caf\xe9!"
    assert read.text == "café!"
    assert read.headers["x-a"] == "1"
    assert read.headers["content-length"] == "5"
    assert read.request is request
    assert read.extensions == {"http_version": b"HTTP/1.1"}
    assert read.history == [previous]
    assert read.elapsed == timedelta(seconds=1.5)
    assert read.next_request is next_request


def test_read_response_drops_the_compressed_framing() -> None:
    response = httpx.Response(
        200,
        headers={"content-encoding": "gzip", "content-length": "40", "x-b": "2"},
        request=REQUEST,
        stream=httpx.ByteStream(b""),
    )
    read = read_response(response, b"decoded")
    assert "content-encoding" not in read.headers
    assert "content-length" not in read.headers
    assert read.headers["x-b"] == "2"
    assert read.content == b"decoded"
    assert response.headers["content-encoding"] == "gzip"  # the original is left as it was


def test_read_response_of_a_response_without_elapsed_time() -> None:
    response = httpx.Response(200, request=REQUEST, content=b"x")
    read = read_response(response, b"x")
    assert read.content == b"x"
    with pytest.raises(RuntimeError):
        _ = read.elapsed


def test_read_response_of_a_compressed_body_without_a_length() -> None:
    response = httpx.Response(
        200, headers={"content-encoding": "br", "x-c": "3"}, request=REQUEST, stream=httpx.ByteStream(b"")
    )
    read = read_response(response, b"decoded")
    assert dict(read.headers) == {"x-c": "3"}
    assert read.content == b"decoded"


# -- retry_after_seconds (public; the client reads hints through policies.signals) -------------------------------


def test_retry_after_seconds_reads_delta_seconds_and_none() -> None:
    assert retry_after_seconds(answer(503)) is None
    assert retry_after_seconds(answer(503, headers={"Retry-After": "120"})) == 120.0


def test_retry_after_seconds_measures_a_date_from_the_response_s_date() -> None:
    date = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    headers = {
        "Date": format_datetime(date, usegmt=True),
        "Retry-After": format_datetime(date + timedelta(seconds=30), usegmt=True),
    }
    assert retry_after_seconds(answer(503, headers=headers)) == 30.0


@pytest.mark.parametrize("date", ["not a date", "Wed, 21 Oct 99999999999999999999 07:28:00 GMT"])
def test_retry_after_seconds_with_an_unusable_date_measures_from_now(date: str) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    seconds = retry_after_seconds(
        answer(503, headers={"Date": date, "Retry-After": format_datetime(later, usegmt=True)})
    )
    assert seconds is not None
    assert 3500 < seconds <= 3600


# -- Body.feed -------------------------------------------------------------------------------------------------------


def test_a_strict_body_of_exactly_the_limit_is_kept_and_one_byte_more_raises() -> None:
    body = Body(10, True, None, answer(200))
    assert body.whole is False  # by default a body is fed, not read by httpx
    assert body.feed(b"12345") is True
    assert body.feed(b"67890") is True
    assert b"".join(body.chunks) == b"1234567890"
    with pytest.raises(ResponseTooLarge) as caught:
        body.feed(b"x")
    assert caught.value.message == "response body passed max_response_bytes=10"
    assert caught.value.limit == 10


def test_a_snippet_keeps_exactly_the_limit_and_asks_for_no_more() -> None:
    body = Body(10, False, None, answer(503))
    assert body.feed(b"1234567") is True
    assert body.feed(b"89abcdef") is False
    assert b"".join(body.chunks) == b"123456789a"
    assert body.size == 15


# -- reader ----------------------------------------------------------------------------------------------------------


def test_a_declared_length_past_the_bound_is_refused_before_the_body_is_read() -> None:
    ex = exchange(max_response_bytes=10, framed=True)
    response = httpx.Response(200, headers={"content-length": "11"}, request=REQUEST, stream=httpx.ByteStream(b""))
    with pytest.raises(ResponseTooLarge) as caught:
        ex.reader(response, Send(1, None, None))
    assert caught.value.message == "response Content-Length passes max_response_bytes=10"
    assert caught.value.limit == 10


def test_a_framed_declared_length_within_the_bound_is_read_whole() -> None:
    ex = exchange(max_response_bytes=10, framed=True)
    response = httpx.Response(200, headers={"content-length": "10"}, request=REQUEST, stream=httpx.ByteStream(b""))
    body = ex.reader(response, Send(1, None, None))
    assert (body.whole, body.limit, body.strict) == (True, 10, True)
    unframed = exchange(max_response_bytes=10).reader(response, Send(1, None, None))
    assert unframed.whole is False


def test_retry_after_seconds_without_a_date_measures_from_now_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    monkeypatch.setenv("TZ", "Etc/GMT-12")  # the local wall time is 12 hours ahead of UTC
    time.tzset()
    try:
        seconds = retry_after_seconds(answer(503, headers={"Retry-After": later}))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert seconds is not None
    assert 3500 < seconds <= 3600


def test_only_a_body_within_its_bound_and_not_compressed_is_read_whole() -> None:
    def response(status: int, length: int, **headers: str) -> httpx.Response:
        return httpx.Response(
            status, headers={"content-length": str(length), **headers}, request=REQUEST, stream=httpx.ByteStream(b"")
        )

    send = Send(1, None, None)
    unbounded = exchange(max_response_bytes=None, framed=True)
    assert unbounded.reader(response(200, 10**9), send).whole is True
    bounded = exchange(max_response_bytes=10**6, framed=True)
    assert bounded.reader(response(503, SNIPPET_BYTES), send).whole is True
    assert bounded.reader(response(503, SNIPPET_BYTES + 1), send).whole is False  # an error's body: a snippet
    assert bounded.reader(response(200, 10, **{"content-encoding": "gzip"}), send).whole is False
