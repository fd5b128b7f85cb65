"""Webhook signatures, the parts every scheme shares (``integration_kit.server.signatures``), exactly: which
secrets, tolerances and body limits a scheme accepts, the tolerance window's edges and sign, header lookup (any
case, blank, too long), the timing-safe match over every secret and every candidate, and that no error or repr
ever holds a secret or a signature.

Pure logic on a :class:`~integration_kit.clock.ManualClock`; each assertion pins one behaviour the mutation sweep
of issue 29 found unguarded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from integration_kit.clock import ManualClock, WallClock
from integration_kit.errors import ConfigurationError
from integration_kit.server.signatures import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOLERANCE,
    MAX_HEADER_CHARS,
    GitHubSignature,
    HMACSignature,
    StandardWebhooks,
    StripeSignature,
    generate_standard_secret,
)
from integration_kit.webhooks.errors import (
    PayloadTooLarge,
    SignatureMalformed,
    SignatureMismatch,
    SignatureMissing,
    TimestampOutsideTolerance,
)

NOW = 1_700_000_000
SECRET = "k3y-Sup3r-S3cret"
STD_SECRET = generate_standard_secret(bytes(range(32)))


def _hex(key: str, content: bytes) -> str:
    return hmac.new(key.encode(), content, "sha256").hexdigest()


def _github(secrets: Any = SECRET, **options: Any) -> GitHubSignature:
    return GitHubSignature(secrets, clock=ManualClock(NOW), **options)


def _stamped(clock: ManualClock, **options: Any) -> HMACSignature:
    return HMACSignature(SECRET, header="X-Sig", timestamp_header="X-Ts", clock=clock, **options)


# -- construction -------------------------------------------------------------------------------------------------


def test_defaults() -> None:
    scheme = GitHubSignature(SECRET)
    assert (scheme.tolerance, scheme.max_body_bytes) == (DEFAULT_TOLERANCE, DEFAULT_MAX_BODY_BYTES) == (300.0, 1 << 20)
    assert isinstance(scheme.clock, WallClock)
    assert scheme.secret_count == 1
    assert repr(scheme) == "GitHubSignature(secrets=1, tolerance=300)"
    assert isinstance(scheme.tolerance, float)


def test_a_lone_secret_or_a_list_of_them() -> None:
    assert _github("abc").secret_count == 1
    both = _github(["old-secret", "new-secret"], tolerance=12)
    assert both.secret_count == 2
    assert repr(both) == "GitHubSignature(secrets=2, tolerance=12)"
    assert both.tolerance == 12.0


@pytest.mark.parametrize("secrets", [[], "", "   ", ["ok", ""], ["ok", " \t"], ["ok", 5], [None]])
def test_a_missing_or_blank_secret_is_refused(secrets: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        GitHubSignature(secrets)
    assert str(caught.value) == "github: at least one non-empty secret is required"


@pytest.mark.parametrize("tolerance", [0, -1, 0.0, float("nan"), float("inf"), "300", None])
def test_a_tolerance_must_be_a_positive_finite_number(tolerance: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        StripeSignature(SECRET, tolerance=tolerance)
    assert str(caught.value) == f"stripe: tolerance must be a positive number of seconds, got {tolerance!r}"


@pytest.mark.parametrize("limit", [0, -5, 1.5, "10", None])
def test_a_body_limit_must_be_a_positive_int(limit: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        StripeSignature(SECRET, max_body_bytes=limit)
    assert str(caught.value) == f"stripe: max_body_bytes must be a positive int, got {limit!r}"


def test_the_smallest_tolerance_and_limit_are_accepted() -> None:
    scheme = StripeSignature(SECRET, tolerance=0.5, max_body_bytes=1)
    assert (scheme.tolerance, scheme.max_body_bytes) == (0.5, 1)


def test_the_secret_never_shows_in_repr_or_errors() -> None:
    scheme = _github(SECRET)
    good = scheme.sign(b"{}", msg_id="d")
    assert SECRET not in repr(scheme)
    for headers, body in [(good, b"{} "), ({"X-Hub-Signature-256": "sha256=zz"}, b"{}"), ({}, b"{}")]:
        with pytest.raises(Exception) as caught:
            scheme.verify(headers, body)
        text = f"{caught.value} {caught.value!r} {vars(caught.value)}"
        assert SECRET not in text
        assert good["x-hub-signature-256"][7:] not in text


# -- the body limit -------------------------------------------------------------------------------------------------


def test_a_body_of_exactly_the_limit_passes_and_one_byte_more_is_refused() -> None:
    scheme = _github(max_body_bytes=4)
    scheme.verify(scheme.sign(b"1234", msg_id="d"), b"1234")
    with pytest.raises(PayloadTooLarge) as caught:
        scheme.verify(scheme.sign(b"12345", msg_id="d"), b"12345")
    assert str(caught.value) == "github: body of 5 bytes passes max_body_bytes=4"
    assert caught.value.limit == 4


# -- the tolerance window -------------------------------------------------------------------------------------------


def test_the_window_edges_and_the_skew_in_both_directions() -> None:
    clock = ManualClock(NOW)
    scheme = _stamped(clock, tolerance=10)
    for stamp in (NOW - 10, NOW + 10):
        assert scheme.verify(scheme.sign(b"{}", msg_id="m", timestamp=stamp), b"{}").timestamp == float(stamp)
    with pytest.raises(TimestampOutsideTolerance) as old:
        scheme.verify(scheme.sign(b"{}", msg_id="m", timestamp=NOW - 11), b"{}")
    assert str(old.value) == "hmac: timestamp is 11s too old (tolerance 10s)"
    assert (old.value.skew, old.value.tolerance, old.value.header, old.value.scheme) == (11, 10.0, "x-ts", "hmac")
    with pytest.raises(TimestampOutsideTolerance) as new:
        scheme.verify(scheme.sign(b"{}", msg_id="m", timestamp=NOW + 11), b"{}")
    assert str(new.value) == "hmac: timestamp is 11s too new (tolerance 10s)"
    assert new.value.skew == -11


def test_a_fraction_of_a_second_past_the_edge_is_outside() -> None:
    clock = ManualClock(NOW + 10.25)
    scheme = _stamped(clock, tolerance=10)
    with pytest.raises(TimestampOutsideTolerance) as caught:
        scheme.verify(scheme.sign(b"{}", msg_id="m", timestamp=NOW), b"{}")
    assert caught.value.skew == 10.25


def test_signing_now_truncates_the_clock_to_whole_seconds() -> None:
    clock = ManualClock(NOW + 0.9)
    assert _stamped(clock).sign(b"{}", msg_id="m")["x-ts"] == str(NOW)
    assert _stamped(clock).sign(b"{}", msg_id="m", timestamp=NOW - 5)["x-ts"] == str(NOW - 5)


@pytest.mark.parametrize(
    "stamp", ["soon", "-5", "1.5", "+170", "\u0661\u0667" + "\u0660" * 8, "0x10", "1 7", "1234567890123"]
)
def test_a_timestamp_that_is_not_ascii_digits_or_too_long_is_malformed(stamp: str) -> None:
    scheme = _stamped(ManualClock(NOW))
    headers = scheme.sign(b"{}", msg_id="m") | {"x-ts": stamp}
    with pytest.raises(SignatureMalformed) as caught:
        scheme.verify(headers, b"{}")
    assert str(caught.value) == "hmac: the timestamp is not an integer number of seconds"
    assert caught.value.header == "x-ts"


def test_twelve_digits_are_a_timestamp_and_surrounding_blanks_are_ignored() -> None:
    scheme = _stamped(ManualClock(NOW))
    with pytest.raises(TimestampOutsideTolerance):  # parsed (not malformed), then far outside the window
        scheme.verify(scheme.sign(b"{}", msg_id="m") | {"x-ts": "999999999999"}, b"{}")
    signed = scheme.sign(b"{}", msg_id="m")
    assert scheme.verify(signed | {"x-ts": f"  {signed['x-ts']}\t"}, b"{}").timestamp == NOW


# -- header lookup ----------------------------------------------------------------------------------------------------


def test_headers_are_found_in_any_case_and_stripped() -> None:
    scheme = _github()
    signature = scheme.sign(b"{}", msg_id="d")["x-hub-signature-256"]
    for name in ("x-hub-signature-256", "X-Hub-Signature-256", "X-HUB-SIGNATURE-256"):
        headers: dict[Any, str] = {name: f"  {signature} ", 7: "not a name", "X-GitHub-Delivery": " d-1 "}
        assert scheme.verify(headers, b"{}").id == "d-1"


@pytest.mark.parametrize("value", [None, "", "  \t", 5])
def test_a_blank_or_absent_header_is_missing(value: Any) -> None:
    headers = {} if value is None else {"X-Hub-Signature-256": value}
    with pytest.raises(SignatureMissing) as caught:
        _github().verify(headers, b"{}")
    assert str(caught.value) == "github: header x-hub-signature-256 is missing"
    assert (caught.value.header, caught.value.scheme) == ("x-hub-signature-256", "github")


def test_a_header_of_exactly_the_limit_is_read_and_one_character_more_is_malformed() -> None:
    scheme = _github()
    signature = scheme.sign(b"{}", msg_id="d")["x-hub-signature-256"]
    at_limit = signature + " " * (MAX_HEADER_CHARS - len(signature))
    assert scheme.verify({"X-Hub-Signature-256": at_limit}, b"{}").scheme == "github"
    with pytest.raises(SignatureMalformed) as caught:
        scheme.verify({"X-Hub-Signature-256": at_limit + " "}, b"{}")
    assert str(caught.value) == "github: header x-hub-signature-256 is too long"
    assert caught.value.header == "x-hub-signature-256"


# -- the match: every secret, every candidate -----------------------------------------------------------------------


def test_any_candidate_under_any_secret_matches() -> None:
    clock = ManualClock(NOW)
    keys = ["whsec_first", "whsec_second", "whsec_third"]
    scheme = StripeSignature(keys, clock=clock)
    content = f"{NOW}.".encode() + b"{}"
    for key in keys:
        wrong = "v1=" + "00" * 32
        for header in (f"t={NOW},v1={_hex(key, content)}", f"t={NOW},{wrong},{wrong},v1={_hex(key, content)}"):
            assert scheme.verify({"Stripe-Signature": header}, b"{}").timestamp == NOW
    with pytest.raises(SignatureMismatch) as caught:
        scheme.verify({"Stripe-Signature": f"t={NOW},v1={_hex('whsec_other', content)}"}, b"{}")
    assert str(caught.value) == "stripe: no signature matches an active secret"
    assert caught.value.scheme == "stripe"


def test_a_candidate_matching_the_first_secret_still_matches_after_a_wrong_one() -> None:
    scheme = StripeSignature(["whsec_a", "whsec_b"], clock=ManualClock(NOW))
    content = f"{NOW}.".encode() + b"{}"
    header = f"t={NOW},v1={_hex('whsec_a', content)},v1={'11' * 32}"
    assert scheme.verify({"Stripe-Signature": header}, b"{}").body == b"{}"


# -- generated Standard Webhooks secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [24, 32, 64])
def test_a_generated_secret_is_whsec_and_the_entropy_in_base64(size: int) -> None:
    entropy = bytes(range(size))
    secret = generate_standard_secret(entropy)
    assert secret == "whsec_" + base64.b64encode(entropy).decode()
    assert StandardWebhooks(secret).secret_count == 1


@pytest.mark.parametrize("size", [0, 23, 65])
def test_too_little_or_too_much_entropy_is_refused(size: int) -> None:
    with pytest.raises(ConfigurationError) as caught:
        generate_standard_secret(bytes(size))
    assert str(caught.value) == "a Standard Webhooks secret needs 24 to 64 bytes of entropy"


def test_a_body_id_is_its_sha256() -> None:
    verified = _github().verify(_github().sign(b"payload", msg_id="d") | {"x-github-delivery": ""}, b"payload")
    assert verified.id == "sha256:" + hashlib.sha256(b"payload").hexdigest()


def test_a_skew_under_a_second_still_says_old_or_new() -> None:
    clock = ManualClock(NOW + 0.75)
    scheme = _stamped(clock, tolerance=0.5)
    with pytest.raises(TimestampOutsideTolerance) as caught:
        scheme.verify(scheme.sign(b"{}", msg_id="m", timestamp=NOW), b"{}")
    assert str(caught.value) == "hmac: timestamp is 1s too old (tolerance 0s)"
    assert caught.value.skew == 0.75
