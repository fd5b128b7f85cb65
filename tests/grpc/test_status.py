"""Status codes as the kit's outcomes and errors (grpc.aio's own error objects, no server), and the transparent
resend of a refused stream without using an attempt."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
import pytest

from integration_kit.engine.actions import Send
from integration_kit.errors import AuthError, ClientError, RateLimited, TransientError
from integration_kit.grpc import AsyncResilientChannel, GrpcPermanentError, GrpcRefused, GrpcUnavailable
from integration_kit.grpc.status import outcome_for_error, verdict
from integration_kit.policies.outcome import OutcomeKind, Verdict

pytestmark = pytest.mark.anyio

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


def status_error(
    code: grpc.StatusCode, details: str = "", trailing: tuple[tuple[str, str], ...] = ()
) -> grpc.aio.AioRpcError:
    """The error grpc.aio raises for a status, built as grpcio builds it."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details)


@pytest.mark.parametrize(
    ("code", "trailing", "error", "judged"),
    [
        (grpc.StatusCode.UNAVAILABLE, (), GrpcUnavailable, Verdict.TRANSIENT),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, (("grpc-retry-pushback-ms", "300"),), RateLimited, Verdict.TRANSIENT),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, (), TransientError, Verdict.TRANSIENT),
        (grpc.StatusCode.UNAUTHENTICATED, (), AuthError, Verdict.REJECTED),
        (grpc.StatusCode.PERMISSION_DENIED, (), AuthError, Verdict.REJECTED),
        (grpc.StatusCode.NOT_FOUND, (), GrpcRefused, Verdict.REJECTED),
        (grpc.StatusCode.INTERNAL, (), GrpcPermanentError, Verdict.FAILURE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, (), GrpcPermanentError, Verdict.FAILURE),
    ],
)
def test_codes_become_typed_errors(
    code: grpc.StatusCode, trailing: tuple[tuple[str, str], ...], error: type, judged: Verdict
) -> None:
    outcome = outcome_for_error(status_error(code, "why", trailing), retryable=RETRYABLE)
    assert isinstance(outcome.error, error)
    assert verdict(outcome) is judged
    assert outcome.status == code.value[0]
    assert outcome.error.code is code  # type: ignore[union-attr]


def test_pushback_sets_retry_after_and_a_bad_one_stops_retrying() -> None:
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    good = outcome_for_error(status_error(code, "", (("grpc-retry-pushback-ms", "300"),)), retryable=RETRYABLE)
    assert good.retry_after == 0.3
    assert good.should_retry is None
    assert isinstance(good.error, RateLimited)
    assert good.error.retry_after == 0.3
    bad = outcome_for_error(status_error(code, "", (("grpc-retry-pushback-ms", "-5"),)), retryable=RETRYABLE)
    assert bad.should_retry is False
    assert bad.retry_after is None


def test_never_sent_is_a_connect_error_and_details_are_scrubbed_and_cut() -> None:
    never = outcome_for_error(
        status_error(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"), retryable=RETRYABLE
    )
    assert never.kind is OutcomeKind.CONNECT_ERROR
    assert never.may_have_been_processed is False  # safe to retry for any method
    seen = outcome_for_error(status_error(grpc.StatusCode.UNAVAILABLE, "draining"), retryable=RETRYABLE)
    assert seen.kind is OutcomeKind.STATUS
    assert seen.may_have_been_processed is True
    long = outcome_for_error(
        status_error(grpc.StatusCode.INTERNAL, "tok-123\\n" + "x" * 1000), retryable=(), secrets=["tok-123"]
    )
    assert isinstance(long.error, GrpcPermanentError)
    assert "tok-123" not in long.error.details
    assert len(long.error.details) <= 300
    assert isinstance(GrpcRefused("x", status=5), ClientError)


async def test_a_refused_stream_is_resent_without_using_an_attempt() -> None:
    sent: list[Any] = []

    async def inner(request: object, *, timeout: float | None, metadata: Any) -> str:
        sent.append(metadata)
        if len(sent) < 3:
            raise status_error(grpc.StatusCode.UNAVAILABLE, "Stream refused by server (REFUSED_STREAM)")
        return "answer"

    channel = AsyncResilientChannel("127.0.0.1:1", tls=False)
    multicallable = channel.unary_unary("/a.B/C")
    multicallable._inner = inner  # type: ignore[assignment]
    rpc = channel._begin(multicallable._plan, "request", None, None)
    outcome = await multicallable._send(rpc, {}, None, Send(1, 1.0, None))
    assert outcome.value == "answer"
    assert len(sent) == 3
    assert all(dict(m).get("grpc-previous-rpc-attempts") is None for m in sent)  # still attempt 1
    await channel.close()
