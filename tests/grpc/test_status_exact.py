"""The status boundary to the letter (pure logic over grpc.aio's own error objects, no server): each typed error's
message, the details kept (secrets masked, line breaks flattened, the cut at exactly 300 characters), a TLS
handshake failure told apart only for ``UNAVAILABLE``, and each form of pushback value (bytes that are not ASCII,
the int32 bound, repeated values)."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from integration_kit.errors import AuthError, RateLimited
from integration_kit.grpc import GrpcPermanentError, GrpcRefused, GrpcTlsError, GrpcUnavailable
from integration_kit.grpc.status import (
    MAX_DETAILS,
    MAX_PUSHBACK_MS,
    GrpcTransientError,
    outcome_for_error,
    parse_pushback,
)
from integration_kit.policies.outcome import OutcomeKind

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED})


def status_error(
    code: grpc.StatusCode, details: str = "", trailing: tuple[tuple[str, str | bytes], ...] = ()
) -> grpc.aio.AioRpcError:
    """The error grpc.aio raises for a status, built as grpcio builds it."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details)


PUSHBACK = (("grpc-retry-pushback-ms", "300"),)


@pytest.mark.parametrize(
    ("code", "trailing", "error"),
    [
        (grpc.StatusCode.UNAVAILABLE, (), GrpcUnavailable),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, PUSHBACK, RateLimited),
        (grpc.StatusCode.ABORTED, (), GrpcTransientError),
        (grpc.StatusCode.UNAUTHENTICATED, (), AuthError),
        (grpc.StatusCode.NOT_FOUND, (), GrpcRefused),
        (grpc.StatusCode.INTERNAL, (), GrpcPermanentError),
    ],
)
def test_every_typed_error_says_its_code_and_its_details(
    code: grpc.StatusCode, trailing: tuple[tuple[str, str], ...], error: type
) -> None:
    said = outcome_for_error(status_error(code, "why", trailing), retryable=RETRYABLE).error
    assert isinstance(said, error)
    assert said.message == f"gRPC {code.name}: why"
    assert said.status == code.value[0]
    silent = outcome_for_error(status_error(code, "", trailing), retryable=RETRYABLE).error
    assert isinstance(silent, error)
    assert silent.message == f"gRPC {code.name}"  # no details: no dangling colon
    assert silent.details == ""  # type: ignore[attr-defined]


def test_a_failed_tls_handshake_is_told_only_for_unavailable() -> None:
    details = "Ssl handshake failed: SSL_ERROR_SSL: WRONG_VERSION_NUMBER"
    tls = outcome_for_error(status_error(grpc.StatusCode.UNAVAILABLE, details), retryable=RETRYABLE)
    assert isinstance(tls.error, GrpcTlsError)
    assert tls.error.message.startswith("gRPC UNAVAILABLE: the TLS handshake failed, which a retry will not mend")
    assert "tls=False" in tls.error.message
    assert tls.error.message.endswith(f": {details}")
    assert tls.error.details == details
    assert tls.error.code is grpc.StatusCode.UNAVAILABLE
    # Another code whose details happen to name SSL is that code's error, not a TLS failure.
    other = outcome_for_error(status_error(grpc.StatusCode.INTERNAL, details), retryable=RETRYABLE)
    assert type(other.error) is GrpcPermanentError
    assert other.error.message == f"gRPC INTERNAL: {details}"


def test_details_are_masked_flattened_and_cut_at_exactly_the_limit() -> None:
    def details(text: str, secrets: tuple[str, ...] = ()) -> str:
        error = outcome_for_error(status_error(grpc.StatusCode.INTERNAL, text), retryable=(), secrets=secrets).error
        assert isinstance(error, GrpcPermanentError)
        return error.details

    assert details("bad token tok-1 here", ("tok-1", "")) == "bad token [REDACTED] here"
    assert details("one\rtwo\nthree\r\n") == "one two three  "
    assert details("x" * MAX_DETAILS) == "x" * MAX_DETAILS  # at the limit: kept whole
    assert details("x" * (MAX_DETAILS + 1)) == "x" * (MAX_DETAILS - 3) + "..."
    assert len(details("y" * 1000)) == MAX_DETAILS


def test_a_never_sent_failure_is_only_an_unavailable_one() -> None:
    never = outcome_for_error(status_error(grpc.StatusCode.UNAVAILABLE, "connection refused"), retryable=RETRYABLE)
    assert never.kind is OutcomeKind.CONNECT_ERROR
    internal = outcome_for_error(status_error(grpc.StatusCode.INTERNAL, "connection refused"), retryable=RETRYABLE)
    assert internal.kind is OutcomeKind.STATUS


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([b"250"], 0.25),
        ([b"\xff250"], False),  # not ASCII: malformed, not an exception
        ([b"25\xc3\xa90"], False),
        ([str(MAX_PUSHBACK_MS)], MAX_PUSHBACK_MS / 1000.0),  # the int32 bound itself is honoured
        ([str(MAX_PUSHBACK_MS + 1)], False),
        (["5", "5"], False),  # repeated, even with one value twice: malformed
        (["1", "2", "3"], False),
    ],
)
def test_each_form_of_pushback(values: list[str | bytes], expected: float | bool) -> None:
    assert parse_pushback(values) == expected
    assert parse_pushback(iter(values)) == expected


def test_pushback_read_from_the_trailing_metadata_as_grpcio_gives_it() -> None:
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    binary = outcome_for_error(status_error(code, "", (("grpc-retry-pushback-ms", b"40"),)), retryable=RETRYABLE)
    assert binary.retry_after == 0.04
    repeated = outcome_for_error(
        status_error(code, "", (("grpc-retry-pushback-ms", "40"), ("grpc-retry-pushback-ms", "50"))),
        retryable=RETRYABLE,
    )
    assert repeated.should_retry is False
    assert repeated.retry_after is None
    other_key = outcome_for_error(status_error(code, "", (("retry-pushback-ms", "40"),)), retryable=RETRYABLE)
    assert other_key.retry_after is None
    assert other_key.should_retry is None
