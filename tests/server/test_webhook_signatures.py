"""Webhook signatures: published test vectors, round trips, rotation, the tolerance window, typed errors, fuzzing,
and interoperability with the reference ``standardwebhooks`` and ``stripe`` packages (both directions)."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks
import stripe
import svix.webhooks
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_kit.clock import ManualClock, WallClock
from integration_kit.errors import ConfigurationError
from integration_kit.server.signatures import (
    GitHubSignature,
    HMACSignature,
    StandardWebhooks,
    StripeSignature,
    WebhookScheme,
    generate_standard_secret,
)
from integration_kit.webhooks.errors import (
    PayloadTooLarge,
    SignatureMalformed,
    SignatureMismatch,
    SignatureMissing,
    TimestampOutsideTolerance,
    WebhookError,
    WebhookVerificationError,
)

NOW = 1_700_000_000
STD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STD_SECRET_2 = generate_standard_secret(bytes(range(32)))
STRIPE_SECRET = "whsec_test_secret_stripe_0123456789"


def schemes(clock: ManualClock) -> list[WebhookScheme]:
    return [
        StandardWebhooks(STD_SECRET, clock=clock),
        StripeSignature(STRIPE_SECRET, clock=clock),
        GitHubSignature("It's a Secret to Everybody", clock=clock),
        HMACSignature(
            "k3y", header="X-Signature", prefix="sha512=", algorithm="sha512", encoding="base64", clock=clock
        ),
        HMACSignature("k3y", header="X-Sig", id_header="X-Id", timestamp_header="X-Ts", clock=clock),
    ]


# -- published vectors ----------------------------------------------------------------------------------------------


def test_github_documented_vector() -> None:
    scheme = GitHubSignature("It's a Secret to Everybody")
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    verified = scheme.verify({"X-Hub-Signature-256": signature, "X-GitHub-Delivery": "d-1"}, b"Hello, World!")
    assert verified.id == "d-1"
    assert scheme.sign(b"Hello, World!", msg_id="d-1")["x-hub-signature-256"] == signature


def test_standard_webhooks_specification_vector() -> None:
    # The example of the specification's reference libraries (standard-webhooks/standard-webhooks, libraries tests).
    clock = ManualClock(1614265330)
    scheme = StandardWebhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", clock=clock)
    body = b'{"test": 2432232314}'
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    assert scheme.verify(headers, body).id == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert scheme.sign(body, msg_id=headers["webhook-id"], timestamp=1614265330) == headers


# -- round trips, rotation, tolerance -------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(5))
def test_round_trip_and_tamper(index: int) -> None:
    clock = ManualClock(NOW)
    scheme = schemes(clock)[index]
    body = json.dumps({"id": "evt_1", "n": index}).encode()
    headers = scheme.sign(body, msg_id="msg_1")
    verified = scheme.verify(headers, body)
    assert verified.body == body
    assert verified.id in ("msg_1", "evt_1") or verified.id.startswith("sha256:")
    with pytest.raises(SignatureMismatch):
        scheme.verify(headers, body + b" ")


def test_rotation_signs_with_both_and_verifies_either() -> None:
    clock = ManualClock(NOW)
    both = StandardWebhooks([STD_SECRET, STD_SECRET_2], clock=clock)
    old, new = StandardWebhooks(STD_SECRET, clock=clock), StandardWebhooks(STD_SECRET_2, clock=clock)
    headers = both.sign(b"{}", msg_id="m")
    assert len(headers["webhook-signature"].split()) == 2
    old.verify(headers, b"{}")
    new.verify(headers, b"{}")
    both.verify(new.sign(b"{}", msg_id="m"), b"{}")
    stripe_both = StripeSignature(["whsec_a", "whsec_b"], clock=clock)
    StripeSignature("whsec_b", clock=clock).verify(stripe_both.sign(b"{}"), b"{}")
    stripe_both.verify(StripeSignature("whsec_a", clock=clock).sign(b"{}"), b"{}")


@pytest.mark.parametrize("index", [0, 1, 4])
def test_tolerance_window(index: int) -> None:
    clock = ManualClock(NOW)
    scheme = schemes(clock)[index]
    headers = scheme.sign(b"{}", msg_id="m")
    clock.advance(300)
    scheme.verify(headers, b"{}")  # exactly at the edge: accepted
    clock.advance(1)
    with pytest.raises(TimestampOutsideTolerance) as caught:
        scheme.verify(headers, b"{}")
    assert caught.value.skew == 301
    future = scheme.sign(b"{}", msg_id="m", timestamp=int(clock.now()) + 301)
    with pytest.raises(TimestampOutsideTolerance):
        scheme.verify(future, b"{}")


def test_typed_errors() -> None:
    clock = ManualClock(NOW)
    std = StandardWebhooks(STD_SECRET, clock=clock)
    good = std.sign(b"{}", msg_id="m")
    with pytest.raises(SignatureMissing):
        std.verify({k: v for k, v in good.items() if k != "webhook-id"}, b"{}")
    with pytest.raises(SignatureMalformed):
        std.verify({**good, "webhook-timestamp": "soon"}, b"{}")
    with pytest.raises(SignatureMalformed):
        std.verify({**good, "webhook-signature": "v2,abc"}, b"{}")
    with pytest.raises(SignatureMismatch):
        std.verify({**good, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}, b"{}")
    with pytest.raises(SignatureMalformed):
        StripeSignature("s", clock=clock).verify({"Stripe-Signature": "v1=00"}, b"{}")
    with pytest.raises(SignatureMalformed):
        GitHubSignature("s").verify({"X-Hub-Signature-256": "sha1=00"}, b"{}")
    with pytest.raises(PayloadTooLarge):
        StandardWebhooks(STD_SECRET, clock=clock, max_body_bytes=10).verify(good, b"x" * 11)
    with pytest.raises(ConfigurationError):
        StandardWebhooks("whsec_!!!")
    with pytest.raises(ConfigurationError):
        GitHubSignature([])
    assert issubclass(WebhookVerificationError, WebhookError)


def test_secrets_and_signatures_never_in_errors_or_repr() -> None:
    clock = ManualClock(NOW)
    std = StandardWebhooks(STD_SECRET, clock=clock)
    good = std.sign(b"{}", msg_id="m")
    signature = good["webhook-signature"]
    errors: list[Exception] = []
    for headers, body in [
        (good, b"{} "),
        ({**good, "webhook-timestamp": str(NOW - 999)}, b"{}"),
        ({**good, "webhook-signature": signature + "garbage"}, b"{}"),
    ]:
        with pytest.raises(WebhookVerificationError) as caught:
            std.verify(headers, body)
        errors.append(caught.value)
    for error in errors:
        text = f"{error} {error!r} {vars(error)}"
        assert STD_SECRET not in text
        assert STD_SECRET[6:] not in text
        assert signature[3:] not in text
    assert "MfKQ" not in repr(std)


# -- fuzzing: no other exception, whatever the input ----------------------------------------------------------------

header_values = st.one_of(
    st.text(max_size=200),
    st.builds(lambda v: f"v1,{v}", st.text(max_size=60)),
    st.builds(lambda t, v: f"t={t},v1={v}", st.text(max_size=15), st.text(max_size=70)),
    st.builds(lambda v: f"sha256={v}", st.text(max_size=70)),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)
header_names = st.sampled_from(
    [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "Stripe-Signature",
        "X-Hub-Signature-256",
        "X-GitHub-Delivery",
        "X-Signature",
        "X-Sig",
        "X-Id",
        "X-Ts",
        "other",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(header_names, header_values, max_size=6), st.binary(max_size=300))
def test_fuzz_only_typed_errors(headers: dict[str, str], body: bytes) -> None:
    for scheme in schemes(ManualClock(NOW)):
        with contextlib.suppress(WebhookVerificationError, PayloadTooLarge):
            scheme.verify(headers, body)


# -- interoperability with code nobody here wrote ---------------------------------------------------------------------


def test_standardwebhooks_reference_verifies_ours_and_we_verify_theirs() -> None:
    body = json.dumps({"type": "order.created", "id": 7}).encode()
    ours = StandardWebhooks([STD_SECRET, STD_SECRET_2], clock=WallClock())
    headers = ours.sign(body, msg_id="msg_interop_1")
    assert standardwebhooks.Webhook(STD_SECRET).verify(body, headers) == {"type": "order.created", "id": 7}
    assert standardwebhooks.Webhook(STD_SECRET_2).verify(body, headers) is not None
    reference = standardwebhooks.Webhook(STD_SECRET)
    now = datetime.now(tz=UTC)
    theirs = {
        "webhook-id": "msg_interop_2",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": reference.sign("msg_interop_2", now, body.decode()),
    }
    assert ours.verify(theirs, body).id == "msg_interop_2"
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(STD_SECRET).verify(body + b" ", headers)


def test_stripe_reference_verifies_ours_and_we_verify_theirs() -> None:
    body = json.dumps({"id": "evt_1Abc", "type": "payment_intent.succeeded"}).encode()
    ours = StripeSignature(STRIPE_SECRET, clock=WallClock())
    header = ours.sign(body)["stripe-signature"]
    assert stripe.WebhookSignature.verify_header(body, header, STRIPE_SECRET, tolerance=300) is True
    event = stripe.Webhook.construct_event(body, header, STRIPE_SECRET)
    assert event["id"] == "evt_1Abc"
    theirs = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET, int(time.time()))
    verified = ours.verify({"Stripe-Signature": theirs}, body)
    assert verified.id == "evt_1Abc"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, header, "whsec_other", tolerance=300)
    old = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET, int(time.time()) - 301)
    with pytest.raises(TimestampOutsideTolerance):
        ours.verify({"Stripe-Signature": old}, body)


def test_svix_branded_headers_are_aliases_signed_by_the_svix_library() -> None:
    """Svix sends ``svix-id``, ``svix-timestamp`` and ``svix-signature``; its own verifier accepts them, and so do
    we. Signed with the real ``svix`` package; a tampered body or a signature from another secret still fails."""
    body = json.dumps({"type": "invoice.paid", "id": 9}).encode()
    svix_hook = svix.webhooks.Webhook(STD_SECRET)
    now = datetime.now(tz=UTC)
    headers = {
        "svix-id": "msg_svix_1",
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": svix_hook.sign("msg_svix_1", now, body.decode()),
    }
    svix_hook.verify(body, headers)  # the reference accepts it
    ours = StandardWebhooks(STD_SECRET, clock=WallClock())
    verified = ours.verify(headers, body)
    assert (verified.id, verified.scheme) == ("msg_svix_1", "standard-webhooks")
    assert ours.verify({k.upper(): v for k, v in headers.items()}, body).id == "msg_svix_1"
    with pytest.raises(SignatureMismatch):
        ours.verify(headers, body + b" ")
    with pytest.raises(SignatureMissing):
        ours.verify({"svix-id": "msg_svix_1", "svix-timestamp": headers["svix-timestamp"]}, body)
    svix.webhooks.Webhook(STD_SECRET).verify(body, ours.sign(body, msg_id="msg_ours"))  # and the other way round
