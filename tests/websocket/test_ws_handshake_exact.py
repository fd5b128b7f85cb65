"""The handshake boundary, exactly: every failure ``websockets`` raises maps to one outcome (its kind, status,
``Retry-After`` and error), the hint read only on 429 and 503, both forms of ``Retry-After`` (an HTTP-date measured
from the response's ``Date`` with its offset, a ``Date`` without a zone taken as GMT, a missing or unreadable one
replaced by now), real refusals from a ``websockets`` server on 127.0.0.1 (a status, a closed port, a server that
hangs up during the handshake); and the wire-log filter masking secrets in the formatted record (the user's
secret query names reused for every record, known secret values), keeping every record. Runs in well under a
second."""

from __future__ import annotations

import logging
import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader, InvalidMessage, InvalidStatus
from websockets.http11 import Request, Response

from integration_kit.errors import CertificateError
from integration_kit.policies.outcome import OutcomeKind
from integration_kit.websocket.handshake import WireLogRedactor, outcome_for_failure

pytestmark = pytest.mark.timeout(10)


def refused(status: int, **headers: str) -> InvalidStatus:
    return InvalidStatus(Response(status, "refused", Headers({k.replace("_", "-"): v for k, v in headers.items()})))


# -- statuses and their hints -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_carry_their_retry_after(status: int) -> None:
    outcome = outcome_for_failure(refused(status, Retry_After="7"))
    assert (outcome.kind, outcome.status, outcome.retry_after, outcome.error) == (OutcomeKind.STATUS, status, 7.0, None)


@pytest.mark.parametrize("status", [400, 428, 430, 500, 502, 504])
def test_other_statuses_ignore_a_retry_after(status: int) -> None:
    outcome = outcome_for_failure(refused(status, Retry_After="7"))
    assert (outcome.kind, outcome.status, outcome.retry_after, outcome.error) == (
        OutcomeKind.STATUS,
        status,
        None,
        None,
    )


def test_a_429_without_retry_after_has_no_hint() -> None:
    outcome = outcome_for_failure(refused(429))
    assert (outcome.kind, outcome.status, outcome.retry_after) == (OutcomeKind.STATUS, 429, None)


@pytest.mark.parametrize(
    "date",
    [
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 09:28:00 +0200",  # the same instant with an offset: measured as such
        "Wed, 21 Oct 2015 07:28:00 -0000",  # no zone: GMT
        "Wed, 21 Oct 2015 07:28:00",
    ],
)
def test_an_http_date_retry_after_is_measured_from_the_responses_date(date: str) -> None:
    outcome = outcome_for_failure(refused(503, Retry_After="Wed, 21 Oct 2015 07:29:30 GMT", Date=date))
    assert outcome.retry_after == 90.0


@pytest.mark.parametrize(
    "date",
    [None, "", "garbage", "Wed, 21 Oct 99999 07:28:00 GMT", "Wed, 21 Oct 9999999999999999999999 07:28:00 GMT"],
)
def test_without_a_readable_date_an_http_date_is_measured_from_now(date: str | None) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=3600), usegmt=True)
    headers = {"Retry_After": later} | ({} if date is None else {"Date": date})
    outcome = outcome_for_failure(refused(429, **headers))
    assert outcome.retry_after is not None
    assert 3590 <= outcome.retry_after <= 3600


# -- transport failures -----------------------------------------------------------------------------------------


def test_a_handshake_timeout_is_a_connect_timeout() -> None:
    outcome = outcome_for_failure(TimeoutError())
    assert (outcome.kind, outcome.status, outcome.retry_after, outcome.error) == (
        OutcomeKind.CONNECT_TIMEOUT,
        None,
        None,
        None,
    )


def test_a_rejected_certificate_is_a_certificate_error_naming_the_reason() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate"
    outcome = outcome_for_failure(exc)
    assert outcome.kind is OutcomeKind.ERROR
    assert isinstance(outcome.error, CertificateError)
    assert str(outcome.error) == "TLS certificate rejected: self-signed certificate"


def test_a_server_hanging_up_during_the_handshake_is_a_lost_connection() -> None:
    outcome = outcome_for_failure(InvalidMessage("did not receive a valid HTTP response"))
    assert (outcome.kind, outcome.status, outcome.error) == (OutcomeKind.CONNECTION_LOST, None, None)


def test_another_handshake_failure_is_an_error_carrying_it() -> None:
    exc = InvalidHeader("Sec-WebSocket-Accept", "bad")
    outcome = outcome_for_failure(exc)
    assert (outcome.kind, outcome.error) == (OutcomeKind.ERROR, exc)


@pytest.mark.parametrize("exc", [ConnectionRefusedError(111, "refused"), ConnectionResetError(), socket.gaierror(-2)])
def test_a_refused_reset_or_unresolved_connection_is_a_connect_error(exc: OSError) -> None:
    outcome = outcome_for_failure(exc)
    assert (outcome.kind, outcome.status, outcome.error) == (OutcomeKind.CONNECT_ERROR, None, None)


def test_anything_else_is_an_error_carrying_it() -> None:
    exc = ValueError("odd")
    outcome = outcome_for_failure(exc)
    assert (outcome.kind, outcome.error) == (OutcomeKind.ERROR, exc)


# -- real refusals from a websockets server ---------------------------------------------------------------------


async def _failure(url: str) -> Exception:
    with pytest.raises(Exception) as caught:
        async with connect(url, open_timeout=2):
            pass
    assert isinstance(caught.value, Exception)
    return caught.value


@pytest.mark.anyio
async def test_real_refusals_from_a_server_on_loopback() -> None:
    def process_request(conn: ServerConnection, request: Request) -> Response | None:
        if request.path == "/busy":
            return Response(429, "Too Many Requests", Headers({"Retry-After": "3"}), b"")
        if request.path == "/hangup":
            conn.transport.abort()
        return None

    async def handler(conn: ServerConnection) -> None:
        await conn.close()

    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        busy = outcome_for_failure(await _failure(f"ws://127.0.0.1:{port}/busy"))
        assert (busy.kind, busy.status, busy.retry_after) == (OutcomeKind.STATUS, 429, 3.0)
        hangup = outcome_for_failure(await _failure(f"ws://127.0.0.1:{port}/hangup"))
        assert hangup.kind is OutcomeKind.CONNECTION_LOST
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    refused_outcome = outcome_for_failure(await _failure(f"ws://127.0.0.1:{closed}/"))
    assert refused_outcome.kind is OutcomeKind.CONNECT_ERROR


# -- the wire-log filter ----------------------------------------------------------------------------------------


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("integration_kit.websocket.wire.t", logging.DEBUG, __file__, 1, msg, args, None)


def test_the_filter_masks_the_formatted_record_and_keeps_it() -> None:
    redactor = WireLogRedactor()
    assert redactor.name == ""
    redactor.secrets = ("tok-123",)
    line = record("> %s: %s", "Authorization", "Bearer tok-123")
    assert redactor.filter(line) is True
    assert (line.msg, line.args, line.getMessage()) == (
        "> Authorization: Bearer ***",
        (),
        "> Authorization: Bearer ***",
    )


def test_a_new_filter_knows_no_secret_and_leaves_a_plain_line_alone() -> None:
    redactor = WireLogRedactor()
    assert redactor.secrets == ()
    line = record("< HTTP/1.1 %d %s", 101, "Switching Protocols")
    assert redactor.filter(line) is True
    assert (line.msg, line.args) == ("< HTTP/1.1 101 Switching Protocols", ())


def test_the_users_secret_query_names_are_masked_in_every_record() -> None:
    redactor = WireLogRedactor(name for name in ["PartnerId"])
    lines = [record("> GET /feed?partnerid=abc&page=2 HTTP/1.1"), record("> GET /feed?partnerid=def HTTP/1.1")]
    for line in lines:
        assert redactor.filter(line) is True
    assert [line.getMessage() for line in lines] == [
        "> GET /feed?partnerid=***&page=2 HTTP/1.1",
        "> GET /feed?partnerid=*** HTTP/1.1",
    ]
    assert WireLogRedactor().filter(plain := record("> GET /feed?partnerid=abc HTTP/1.1"))
    assert plain.getMessage() == "> GET /feed?partnerid=abc HTTP/1.1"


def test_now_is_taken_in_utc_on_a_host_in_another_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing ``Date`` is replaced by an aware now: a naive local time would be read as GMT, hours off."""
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=3600), usegmt=True)
    monkeypatch.setenv("TZ", "Etc/GMT-5")  # five hours east of Greenwich
    time.tzset()
    try:
        outcome = outcome_for_failure(refused(429, Retry_After=later))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert outcome.retry_after is not None
    assert 3590 <= outcome.retry_after <= 3600
