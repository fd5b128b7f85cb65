"""One logical RPC's pieces to the letter (pure logic over grpc.aio's own error objects, no server): each attempt's
metadata (``grpc-previous-rpc-attempts`` only from the second, a hedge's own count), its timeout in real seconds
(never negative, scaled), the codes it retries, the transparent resend, and the errors a caller reads (no HTTP verb,
the last attempt's words, an attempt's ``DEADLINE_EXCEEDED`` as the call's deadline)."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
import pytest

from integration_kit.engine.actions import Send
from integration_kit.errors import AttemptRecord, DeadlineExceeded, IntegrationError, RetriesExhausted
from integration_kit.grpc.config import HedgingPolicy, MethodConfig
from integration_kit.grpc.rpc import ATTEMPTS_KEY, Rpc, as_deadline, told
from integration_kit.grpc.status import GrpcPermanentError, GrpcUnavailable, outcome_for_error
from integration_kit.policies.outcome import OutcomeKind

CREDENTIAL = ("authorization", "Bearer tok-1")
UNAVAILABLE = frozenset({grpc.StatusCode.UNAVAILABLE})


def rpc(**changes: Any) -> Rpc:
    values: dict[str, Any] = {
        "method": "/inventory.v1.Inventory/GetItem",
        "request": object(),
        "metadata": (CREDENTIAL,),
        "config": MethodConfig(retryable=UNAVAILABLE),
        "calls": None,
        "time_scale": 1.0,
        "secrets": ("tok-1",),
        "hedging": None,
    }
    return Rpc(**{**values, **changes})


def status_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


def test_the_service_is_the_part_before_the_method() -> None:
    assert rpc().service == "inventory.v1.Inventory"
    assert rpc(method="inventory.v1.Inventory/GetItem").service == "inventory.v1.Inventory"


def test_only_a_retry_says_how_many_attempts_came_before() -> None:
    call = rpc()
    assert call.attempt_metadata(Send(1, None, None)) == (CREDENTIAL,)
    assert call.attempt_metadata(Send(2, None, None)) == (CREDENTIAL, (ATTEMPTS_KEY, "1"))
    assert call.attempt_metadata(Send(4, None, None)) == (CREDENTIAL, (ATTEMPTS_KEY, "3"))
    # A hedge says its own count, whatever the engine's attempt.
    assert call.attempt_metadata(Send(1, None, None), previous=2) == (CREDENTIAL, (ATTEMPTS_KEY, "2"))
    assert call.attempt_metadata(Send(3, None, None), previous=0) == (CREDENTIAL,)
    assert ATTEMPTS_KEY == "grpc-previous-rpc-attempts"


def test_the_attempts_timeout_is_what_is_left_in_real_seconds() -> None:
    assert rpc().timeout(Send(1, None, None)) is None
    assert rpc().timeout(Send(1, None, None), used=5.0) is None
    assert rpc().timeout(Send(1, 2.0, None)) == 2.0
    assert rpc().timeout(Send(1, 2.0, None), used=0.5) == 1.5
    assert rpc().timeout(Send(1, 2.0, None), used=3.0) == 0.0  # never negative
    assert rpc(time_scale=10.0).timeout(Send(1, 20.0, None), used=10.0) == 1.0  # scenario seconds to real ones


def test_a_hedged_method_retries_its_non_fatal_codes() -> None:
    assert rpc().retryable == UNAVAILABLE
    hedged = rpc(hedging=HedgingPolicy(3, 0.1, frozenset({grpc.StatusCode.INTERNAL})))
    assert hedged.retryable == {grpc.StatusCode.INTERNAL}
    assert isinstance(hedged.failed(status_error(grpc.StatusCode.UNAVAILABLE)).error, GrpcPermanentError)
    assert not isinstance(hedged.failed(status_error(grpc.StatusCode.INTERNAL)).error, GrpcPermanentError)


def test_an_attempts_error_is_read_with_the_methods_codes_and_secrets() -> None:
    outcome = rpc().failed(status_error(grpc.StatusCode.UNAVAILABLE, "token tok-1 refused"))
    assert isinstance(outcome.error, GrpcUnavailable)
    assert outcome.error.details == "token [REDACTED] refused"


def test_an_answer_is_a_success_with_status_ok() -> None:
    value = object()
    outcome = Rpc.answered(value)
    assert (outcome.kind, outcome.status, outcome.value) == (OutcomeKind.SUCCESS, 0, value)


def test_a_refused_stream_is_resent_only_while_time_is_left() -> None:
    refused = outcome_for_error(
        status_error(grpc.StatusCode.UNAVAILABLE, "Stream refused by server (REFUSED_STREAM)"), retryable=()
    )
    assert Rpc.resend(refused, None)
    assert Rpc.resend(refused, 0.5)
    assert not Rpc.resend(refused, 0.0)
    other = outcome_for_error(status_error(grpc.StatusCode.UNAVAILABLE, "draining"), retryable=())
    assert not Rpc.resend(other, 0.5)


def test_a_caller_reads_no_http_verb_and_the_last_attempts_words() -> None:
    plain = told(IntegrationError("boom", method="POST", url="grpc://h:1/a.B/C"))
    assert (plain.method, plain.url, plain.message) == (None, "grpc://h:1/a.B/C", "boom")
    other = told(IntegrationError("boom", method="GET"))
    assert other.method == "GET"
    last = GrpcUnavailable("gRPC UNAVAILABLE: draining")
    exhausted = told(RetriesExhausted("3 attempts failed", last_error=last, method="POST"))
    assert exhausted.message == "retries exhausted; the last attempt: gRPC UNAVAILABLE: draining"
    assert exhausted.method is None
    bare = told(RetriesExhausted("3 attempts failed", last_error=ValueError("x")))
    assert bare.message == "3 attempts failed"


@pytest.mark.parametrize("wrapped", [False, True])
def test_an_attempts_deadline_exceeded_is_the_calls_deadline(wrapped: bool) -> None:
    outcome = outcome_for_error(status_error(grpc.StatusCode.DEADLINE_EXCEEDED, "late"), retryable=())
    attempt = outcome.error
    assert isinstance(attempt, IntegrationError)
    history = (AttemptRecord(1, "status", 4, 0.5, "gRPC DEADLINE_EXCEEDED: late"),)
    context: dict[str, Any] = {"integration": "inv", "method": "POST", "url": "grpc://h:1/a.B/C", "attempts": history}
    error = RetriesExhausted("gave up", last_error=attempt, **context) if wrapped else attempt.with_context(**context)
    late = as_deadline(error)
    assert isinstance(late, DeadlineExceeded)
    assert late.message == "gRPC DEADLINE_EXCEEDED: the call's deadline passed"
    assert late.last_error is attempt
    assert late.__cause__ is attempt
    assert (late.integration, late.method, late.url) == ("inv", "POST", "grpc://h:1/a.B/C")
    assert late.attempts == history


def test_any_other_end_is_left_as_it_is() -> None:
    unavailable = outcome_for_error(status_error(grpc.StatusCode.UNAVAILABLE), retryable=()).error
    assert isinstance(unavailable, IntegrationError)
    assert as_deadline(unavailable) is unavailable
    exhausted = RetriesExhausted("gave up", last_error=unavailable)
    assert as_deadline(exhausted) is exhausted
    plain = IntegrationError("boom")
    assert as_deadline(plain) is plain
    already = DeadlineExceeded("deadline", last_error=unavailable)
    assert as_deadline(already) is already
