"""The handshake boundary: building each handshake's headers, and translating what ``websockets`` raises into an
:class:`~integration_kit.policies.outcome.Outcome` in one place (as :mod:`integration_kit.http.exchange` does for
httpx), so the call engine decides every retry.

- ``InvalidStatus`` (the server answered the upgrade with an HTTP status): a status outcome; 429 and 503 carry
  their ``Retry-After`` (both forms; an HTTP-date is measured from the response's ``Date``);
- a timeout of the opening handshake: a connect timeout; a refused or reset TCP connection, DNS failure: a
  connect error (the server never saw the request); a TLS certificate failure: a permanent
  :class:`~integration_kit.errors.CertificateError`;
- the server closing the connection during the handshake (``InvalidMessage``): a lost connection;
- any other handshake failure (a bad ``Sec-WebSocket-Accept``, an unexpected header): an error, not retried.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus

from integration_kit.errors import CertificateError
from integration_kit.http.redact import redact_log_message
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.policies.retry import parse_retry_after

__all__ = ["WireLogRedactor", "outcome_for_failure"]

_HINTED = frozenset({429, 503})


def outcome_for_failure(exc: Exception) -> Outcome:
    """The outcome of a handshake that raised ``exc`` (see the module docstring)."""
    if isinstance(exc, InvalidStatus):
        response = exc.response
        status = response.status_code
        retry_after = None
        if status in _HINTED:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), _date_of(response.headers.get("Date")))
        return Outcome(OutcomeKind.STATUS, status=status, retry_after=retry_after)
    if isinstance(exc, TimeoutError):
        return Outcome(OutcomeKind.CONNECT_TIMEOUT, error=None)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Outcome(OutcomeKind.ERROR, error=CertificateError(f"TLS certificate rejected: {exc.verify_message}"))
    if isinstance(exc, InvalidMessage):
        return Outcome(OutcomeKind.CONNECTION_LOST)
    if isinstance(exc, InvalidHandshake):
        return Outcome(OutcomeKind.ERROR, error=exc)
    if isinstance(exc, OSError):
        return Outcome(OutcomeKind.CONNECT_ERROR)
    return Outcome(OutcomeKind.ERROR, error=exc)


def _date_of(value: str | None) -> datetime:
    """The response's ``Date`` as an aware datetime, else now (the HTTP-date of a Retry-After is measured from it)."""
    if value:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is not None:
            return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return datetime.now(UTC)


class WireLogRedactor(logging.Filter):
    """Masks secrets in the records of the logger handed to ``websockets`` (its DEBUG trace of the handshake holds
    the request line and headers): credential headers, secret-looking query values and every known secret form."""

    def __init__(self, extra_names: Iterable[str] = ()) -> None:
        super().__init__()
        self._names = tuple(extra_names)
        self.secrets: tuple[str, ...] = ()

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record``'s message with secrets masked; always keep the record."""
        message = record.getMessage()
        record.msg = redact_log_message(message, self.secrets, self._names)
        record.args = ()
        return True
