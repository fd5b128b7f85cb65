"""The server layer's typed errors (``integration_kit.server.errors``) exactly, field by field (issue 29, the fifth
sweep of ``server/errors.py``): each class's message (``str``, ``.message``, ``args``), its own fields (``key``,
``retry_after``, ``scheme``, ``header``, ``skew``, ``tolerance``, ``limit``), the call context it passes up to
:class:`~integration_kit.errors.IntegrationError` (``integration``, ``method``, ``url``, ``attempts``), its repr and
its place in the tree; and, where the package raises them (the idempotency guard, the signature schemes), that no
secret or signature reaches a message, a repr or an attribute.

Pure construction plus the guard on a :class:`~integration_kit.stores.memory.MemoryStore` and the schemes on a
:class:`~integration_kit.clock.ManualClock`: the whole file runs in milliseconds.
"""

from __future__ import annotations

import pytest

from integration_kit.clock import ManualClock
from integration_kit.errors import AttemptRecord, IntegrationError
from integration_kit.server.errors import (
    IdempotencyError,
    IdempotencyKeyReused,
    PayloadTooLarge,
    RequestInFlight,
    SignatureMalformed,
    SignatureMismatch,
    SignatureMissing,
    TimestampOutsideTolerance,
    WebhookError,
    WebhookVerificationError,
)
from integration_kit.server.idempotency import IdempotencyGuard
from integration_kit.server.signatures import GitHubSignature, HMACSignature, StandardWebhooks, StripeSignature
from integration_kit.stores.memory import MemoryStore

ATTEMPTS = (AttemptRecord(1, "error", 503, 0.5), AttemptRecord(2, "error", 503, 0.25))
#: The call context every class that takes ``**context`` must hand to :class:`IntegrationError`.
CONTEXT = {"integration": "billing", "method": "POST", "url": "https://api.example/hooks", "attempts": ATTEMPTS}
SUFFIX = " (POST https://api.example/hooks) after 2 attempts"


def _assert_context(error: IntegrationError) -> None:
    assert error.integration == "billing"
    assert error.method == "POST"
    assert error.url == "https://api.example/hooks"
    assert error.attempts == ATTEMPTS


def _assert_no_context(error: IntegrationError) -> None:
    assert (error.integration, error.method, error.url, error.attempts) == (None, None, None, ())


def test_idempotency_error_keeps_its_key_message_and_context() -> None:
    error = IdempotencyError("cannot honour", key="k-1", **CONTEXT)  # type: ignore[arg-type]
    assert error.key == "k-1"
    assert error.message == "cannot honour"
    assert error.args == ("cannot honour",)
    assert str(error) == "[billing] cannot honour" + SUFFIX
    assert repr(error) == "IdempotencyError('cannot honour')"
    _assert_context(error)
    bare = IdempotencyError("bare", key="k-2")
    assert (bare.key, str(bare)) == ("k-2", "bare")
    _assert_no_context(bare)
    assert isinstance(error, IntegrationError)
    assert not isinstance(error, ValueError)


def test_request_in_flight_keeps_key_retry_after_and_context() -> None:
    error = RequestInFlight("busy", key="k-1", retry_after=2.5, **CONTEXT)  # type: ignore[arg-type]
    assert (error.key, error.retry_after) == ("k-1", 2.5)
    assert error.message == "busy"
    assert error.args == ("busy",)
    assert str(error) == "[billing] busy" + SUFFIX
    assert repr(error) == "RequestInFlight('busy')"
    _assert_context(error)
    bare = RequestInFlight("busy", key="k-2", retry_after=0.0)
    assert (bare.key, bare.retry_after, str(bare)) == ("k-2", 0.0, "busy")
    _assert_no_context(bare)
    assert isinstance(error, IdempotencyError)


def test_idempotency_key_reused_is_an_idempotency_error_with_its_key() -> None:
    error = IdempotencyKeyReused("reused", key="k-1", **CONTEXT)  # type: ignore[arg-type]
    assert error.key == "k-1"
    assert str(error) == "[billing] reused" + SUFFIX
    assert repr(error) == "IdempotencyKeyReused('reused')"
    _assert_context(error)
    assert isinstance(error, IdempotencyError)
    assert not isinstance(error, RequestInFlight)


def test_the_guard_raises_them_with_the_key_and_its_retry_after() -> None:
    guard = IdempotencyGuard(MemoryStore(clock=ManualClock(0.0)), retry_after=3.0, clock=ManualClock(0.0))
    guard.begin("order-7", "fp-a")
    with pytest.raises(RequestInFlight) as in_flight:
        guard.begin("order-7", "fp-a")
    assert (in_flight.value.key, in_flight.value.retry_after) == ("order-7", 3.0)
    assert str(in_flight.value) == "a request with idempotency key 'order-7' is in flight"
    with pytest.raises(IdempotencyKeyReused) as reused:
        guard.begin("order-7", "fp-b")
    assert reused.value.key == "order-7"
    assert str(reused.value) == "idempotency key 'order-7' was used with a different request"
    # the fingerprints (hashes of the request, which may hold a body's secrets) never reach the error
    for error in (in_flight.value, reused.value):
        assert "fp-" not in str(error) + repr(error) + repr(vars(error))


def test_webhook_error_is_a_plain_integration_error() -> None:
    error = WebhookError("lost", **CONTEXT)  # type: ignore[arg-type]
    assert str(error) == "[billing] lost" + SUFFIX
    assert repr(error) == "WebhookError('lost')"
    assert not isinstance(error, ValueError)


@pytest.mark.parametrize(
    "cls", [WebhookVerificationError, SignatureMissing, SignatureMalformed, SignatureMismatch], ids=lambda c: c.__name__
)
def test_a_verification_error_prefixes_its_scheme_and_keeps_scheme_header_and_context(cls: type) -> None:
    error = cls("bad header", scheme="stripe", header="stripe-signature", **CONTEXT)
    assert error.scheme == "stripe"
    assert error.header == "stripe-signature"
    assert error.message == "stripe: bad header"
    assert error.args == ("stripe: bad header",)
    assert str(error) == "[billing] stripe: bad header" + SUFFIX
    assert repr(error) == f"{cls.__name__}('stripe: bad header')"
    _assert_context(error)
    bare = cls("no match", scheme="github")
    assert (bare.scheme, bare.header, str(bare)) == ("github", None, "github: no match")
    _assert_no_context(bare)
    assert isinstance(error, WebhookVerificationError)
    assert isinstance(error, WebhookError)
    assert isinstance(error, ValueError)


def test_timestamp_outside_tolerance_keeps_scheme_header_skew_and_tolerance() -> None:
    error = TimestampOutsideTolerance(
        "too old", scheme="standard-webhooks", header="webhook-timestamp", skew=-400.5, tolerance=300.0
    )
    assert (error.scheme, error.header) == ("standard-webhooks", "webhook-timestamp")
    assert (error.skew, error.tolerance) == (-400.5, 300.0)
    assert error.message == "standard-webhooks: too old"
    assert error.args == ("standard-webhooks: too old",)
    assert str(error) == "standard-webhooks: too old"
    assert repr(error) == "TimestampOutsideTolerance('standard-webhooks: too old')"
    _assert_no_context(error)
    assert isinstance(error, WebhookVerificationError)
    assert isinstance(error, ValueError)
    unnamed = TimestampOutsideTolerance("too new", scheme="stripe", header=None, skew=1.0, tolerance=0.5)
    assert (unnamed.header, unnamed.skew, unnamed.tolerance) == (None, 1.0, 0.5)


def test_payload_too_large_keeps_its_limit_and_context() -> None:
    error = PayloadTooLarge("too big", limit=1024, **CONTEXT)  # type: ignore[arg-type]
    assert error.limit == 1024
    assert error.message == "too big"
    assert error.args == ("too big",)
    assert str(error) == "[billing] too big" + SUFFIX
    assert repr(error) == "PayloadTooLarge('too big')"
    _assert_context(error)
    bare = PayloadTooLarge("too big", limit=0)
    assert (bare.limit, str(bare)) == (0, "too big")
    _assert_no_context(bare)
    assert isinstance(error, WebhookError)
    assert isinstance(error, ValueError)
    assert not isinstance(error, WebhookVerificationError)


SECRET = "whsec_" + "c2VjcmV0LXZhbHVlLW9mLXRoZS1yZWNlaXZlcg=="
NOW = 1_700_000_000


def _text(error: BaseException) -> str:
    """Everything a log line or a debugger shows of ``error``."""
    return " ".join((str(error), repr(error), repr(error.args), repr(vars(error))))


@pytest.mark.parametrize(
    "scheme",
    [
        StandardWebhooks(SECRET, clock=ManualClock(NOW)),
        StripeSignature(SECRET, clock=ManualClock(NOW)),
        GitHubSignature(SECRET, clock=ManualClock(NOW)),
        HMACSignature(SECRET, header="x-signature", clock=ManualClock(NOW)),
    ],
    ids=lambda s: s.name,
)
def test_no_secret_or_signature_reaches_the_schemes_errors(scheme: object) -> None:
    """A delivery signed under another secret, replayed late and sent too big: each error names the scheme and
    the header at fault, never a secret, the signature sent or the one expected."""
    body = b'{"id": "evt_1"}'
    signed = scheme.sign(body, msg_id="msg_1", timestamp=NOW)  # type: ignore[attr-defined]
    other = type(scheme)  # the same scheme under another secret: its signature is not the receiver's
    forger = (
        other("whsec_" + "b3RoZXItc2VjcmV0LXZhbHVlLW9mLWZvcmdlcg==", header="x-signature", clock=ManualClock(NOW))
        if other is HMACSignature
        else other("whsec_" + "b3RoZXItc2VjcmV0LXZhbHVlLW9mLWZvcmdlcg==", clock=ManualClock(NOW))
    )
    forged = forger.sign(body, msg_id="msg_1", timestamp=NOW)
    errors: list[BaseException] = []
    for headers, payload in ((forged, body), ({}, body), (signed, b"x" * (scheme.max_body_bytes + 1))):  # type: ignore[attr-defined]
        with pytest.raises(IntegrationError) as caught:
            scheme.verify(headers, payload)  # type: ignore[attr-defined]
        errors.append(caught.value)
    assert isinstance(errors[0], SignatureMismatch)
    assert isinstance(errors[1], SignatureMissing)
    assert isinstance(errors[2], PayloadTooLarge)
    leaks = [SECRET, SECRET.removeprefix("whsec_"), *signed.values(), *forged.values()]
    leaks = [value for value in leaks if len(value) > 12]  # the signatures and secrets, not short ids or times
    for error in errors:
        text = _text(error)
        for value in leaks:
            assert value not in text, (type(error).__name__, value)
        assert scheme.name in str(error)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("cls", "header"), [(StandardWebhooks, "webhook-timestamp"), (StripeSignature, "stripe-signature")]
)
def test_a_replay_raises_the_skew_and_tolerance_and_no_signature(cls: type, header: str) -> None:
    body = b'{"id": "evt_1"}'
    signed = cls(SECRET, clock=ManualClock(NOW)).sign(body, msg_id="msg_1", timestamp=NOW)
    late = cls(SECRET, tolerance=300, clock=ManualClock(NOW + 1000))
    with pytest.raises(TimestampOutsideTolerance) as caught:
        late.verify(signed, body)
    error = caught.value
    assert (error.scheme, error.header, error.skew, error.tolerance) == (cls.name, header, 1000.0, 300.0)
    assert str(error) == f"{cls.name}: timestamp is 1000s too old (tolerance 300s)"
    text = _text(error)
    for value in (SECRET, *signed.values()):
        if len(value) > 12:
            assert value not in text
