"""Webhook signatures, scheme by scheme (``integration_kit.server.signatures``), exactly: the headers each signs,
what its parser accepts, skips or refuses (with the header it names), the id each verified delivery carries, and
the Standard Webhooks secret and Svix alias rules.

Signatures are computed here independently with :mod:`hmac`, so a scheme that signs or checks the wrong content
fails. Pure logic on a :class:`~integration_kit.clock.ManualClock`; each assertion pins one behaviour the
mutation sweep of issue 29 found unguarded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from integration_kit.clock import ManualClock
from integration_kit.errors import ConfigurationError
from integration_kit.server.signatures import (
    GitHubSignature,
    HMACSignature,
    StandardWebhooks,
    StripeSignature,
    VerifiedWebhook,
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
KEY = bytes(range(24))
STD_SECRET = generate_standard_secret(KEY)
KEY_2 = bytes(range(100, 132))
STD_SECRET_2 = generate_standard_secret(KEY_2)


def _mac(key: bytes, content: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, content, algorithm).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _body_id(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


# -- Standard Webhooks ------------------------------------------------------------------------------------------------


def test_standard_signs_id_timestamp_and_body_once_per_secret() -> None:
    scheme = StandardWebhooks([STD_SECRET, STD_SECRET_2], clock=ManualClock(NOW))
    content = f"m1.{NOW}.".encode() + b"{}"
    assert scheme.sign(b"{}", msg_id="m1") == {
        "webhook-id": "m1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": f"v1,{_b64(_mac(KEY, content))} v1,{_b64(_mac(KEY_2, content))}",
    }


def test_standard_verifies_to_the_message_id_and_timestamp() -> None:
    scheme = StandardWebhooks(STD_SECRET, clock=ManualClock(NOW))
    signature = _b64(_mac(KEY, f"m1.{NOW}.".encode() + b"{}"))
    headers = {"webhook-id": "m1", "webhook-timestamp": str(NOW), "webhook-signature": f"v1,{signature}"}
    assert scheme.verify(headers, b"{}") == VerifiedWebhook("m1", float(NOW), b"{}", "standard-webhooks")


@pytest.mark.parametrize(
    "entries",
    [
        "v2,{good}",  # another version: skipped, nothing left
        "v1,***",  # not base64: skipped
        "v1,{good}= ",  # bad padding
    ],
)
def test_standard_without_a_usable_v1_entry_is_malformed(entries: str) -> None:
    scheme = StandardWebhooks(STD_SECRET, clock=ManualClock(NOW))
    good = scheme.sign(b"{}", msg_id="m")["webhook-signature"][3:]
    headers = scheme.sign(b"{}", msg_id="m") | {"webhook-signature": entries.format(good=good)}
    with pytest.raises(SignatureMalformed) as caught:
        scheme.verify(headers, b"{}")
    assert str(caught.value) == "standard-webhooks: no v1 signature in the header"
    assert caught.value.header == "webhook-signature"


def test_standard_skips_other_versions_and_bad_entries_beside_a_good_one() -> None:
    scheme = StandardWebhooks(STD_SECRET, clock=ManualClock(NOW))
    headers = scheme.sign(b"{}", msg_id="m")
    good = headers["webhook-signature"]
    for value in (f"v1a,{good[3:]} {good}", f"v1,*** {good}", f"{good}   v2,xyz"):
        assert scheme.verify(headers | {"webhook-signature": value}, b"{}").id == "m"


def test_standard_an_entry_without_a_comma_is_malformed() -> None:
    scheme = StandardWebhooks(STD_SECRET, clock=ManualClock(NOW))
    headers = scheme.sign(b"{}", msg_id="m")
    with pytest.raises(SignatureMalformed) as caught:
        scheme.verify(headers | {"webhook-signature": headers["webhook-signature"] + " v1"}, b"{}")
    assert str(caught.value) == "standard-webhooks: a signature entry is not version,signature"


def test_standard_a_message_id_with_control_characters_is_malformed() -> None:
    scheme = StandardWebhooks(STD_SECRET, clock=ManualClock(NOW))
    headers = scheme.sign(b"{}", msg_id="m\x01x")
    with pytest.raises(SignatureMalformed) as caught:
        scheme.verify(headers, b"{}")
    assert str(caught.value) == "standard-webhooks: the message id holds control characters"
    assert caught.value.header == "webhook-id"


def test_standard_the_id_and_timestamp_are_signed() -> None:
    scheme = StandardWebhooks(STD_SECRET, clock=ManualClock(NOW))
    headers = scheme.sign(b"{}", msg_id="m")
    for changed in ({"webhook-id": "n"}, {"webhook-timestamp": str(NOW + 1)}):
        with pytest.raises(SignatureMismatch):
            scheme.verify(headers | changed, b"{}")


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_each_header_is_required(missing: str) -> None:
    scheme = StandardWebhooks(STD_SECRET, clock=ManualClock(NOW))
    headers = {k: v for k, v in scheme.sign(b"{}", msg_id="m").items() if k != missing}
    with pytest.raises(SignatureMissing) as caught:
        scheme.verify(headers, b"{}")
    assert caught.value.header == missing


def test_standard_svix_headers_are_read_when_svix_id_is_present_in_any_case() -> None:
    scheme = StandardWebhooks(STD_SECRET, clock=ManualClock(NOW))
    ours = scheme.sign(b"{}", msg_id="m")
    svix = {"svix-" + k.removeprefix("webhook-"): v for k, v in ours.items()}
    assert scheme.verify(svix, b"{}").id == "m"
    assert scheme.verify({k.title(): v for k, v in svix.items()}, b"{}").id == "m"
    # svix-id present: the svix- family is read, even beside a full webhook- family
    with pytest.raises(SignatureMissing) as caught:
        scheme.verify(ours | {"Svix-Id": "m"}, b"{}")
    assert caught.value.header == "svix-timestamp"


def test_standard_a_secret_is_base64_after_whsec_with_or_without_padding() -> None:
    raw = _b64(bytes(range(26)))  # 26 bytes: base64 with one '=' of padding, 35 characters without it
    assert raw.endswith("=")
    assert not raw.endswith("==")
    clock = ManualClock(NOW)
    padded, bare, plain = (
        StandardWebhooks(s, clock=clock) for s in ("whsec_" + raw, "whsec_" + raw.rstrip("="), raw.rstrip("="))
    )
    headers = padded.sign(b"{}", msg_id="m")
    assert bare.sign(b"{}", msg_id="m") == plain.sign(b"{}", msg_id="m") == headers
    assert headers["webhook-signature"] == "v1," + _b64(_mac(bytes(range(26)), f"m.{NOW}.".encode() + b"{}"))
    two = _b64(bytes(range(25))).rstrip("=")  # two '=' of padding stripped
    assert StandardWebhooks("whsec_" + two, clock=clock).sign(b"", msg_id="m")["webhook-signature"] == (
        "v1," + _b64(_mac(bytes(range(25)), f"m.{NOW}.".encode()))
    )


@pytest.mark.parametrize("secret", ["whsec_", "whsec_!!!!", "whsec_ä"])
def test_standard_a_secret_that_is_not_base64_is_refused(secret: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        StandardWebhooks(secret)
    assert str(caught.value) == "standard-webhooks: a secret must be whsec_ followed by base64"


# -- Stripe ---------------------------------------------------------------------------------------------------------


def test_stripe_signs_the_timestamp_and_body_with_the_secret_as_it_is() -> None:
    scheme = StripeSignature(["whsec_a", "whsec_b"], clock=ManualClock(NOW))
    content = f"{NOW}.".encode() + b"{}"
    mac_a, mac_b = (_mac(k, content).hex() for k in (b"whsec_a", b"whsec_b"))
    assert scheme.sign(b"{}") == {"stripe-signature": f"t={NOW},v1={mac_a},v1={mac_b}"}


def test_stripe_reads_t_and_v1_in_any_order_with_blanks_and_other_items() -> None:
    scheme = StripeSignature("whsec_a", clock=ManualClock(NOW))
    mac = _mac(b"whsec_a", f"{NOW}.".encode() + b"{}").hex()
    header = f" v0=abc , v1=zz, junk ,v1={mac}, t={NOW} "
    assert scheme.verify({"Stripe-Signature": header}, b"{}") == VerifiedWebhook(_body_id(b"{}"), NOW, b"{}", "stripe")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("v1={mac}", "the header needs exactly one t="),
        ("t={now},t={now},v1={mac}", "the header needs exactly one t="),
        ("t={now}", "no v1 signature in the header"),
        ("t={now},v1=xyz", "no v1 signature in the header"),
        ("t={now},v2={mac}", "no v1 signature in the header"),
    ],
)
def test_stripe_a_header_without_one_t_or_a_v1_is_malformed(header: str, message: str) -> None:
    scheme = StripeSignature("whsec_a", clock=ManualClock(NOW))
    mac = _mac(b"whsec_a", f"{NOW}.".encode() + b"{}").hex()
    with pytest.raises(SignatureMalformed) as caught:
        scheme.verify({"stripe-signature": header.format(now=NOW, mac=mac)}, b"{}")
    assert str(caught.value) == f"stripe: {message}"
    assert caught.value.header == "stripe-signature"


def test_stripe_a_non_ascii_v1_is_skipped() -> None:
    scheme = StripeSignature("whsec_a", clock=ManualClock(NOW))
    with pytest.raises(SignatureMalformed, match="no v1 signature"):
        scheme.verify({"stripe-signature": f"t={NOW},v1=\u0661\u0662"}, b"{}")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id": "evt_1"}', "evt_1"),
        (b'{"id": ""}', None),
        (b'{"id": 7}', None),
        (b'{"id": "evt\\n1"}', None),
        (b'["evt_1"]', None),
        (b"not json", None),
        (b"\xff\xfe", None),
        (b"[" * 100_000 + b"]" * 100_000, None),
    ],
)
def test_stripe_the_id_is_the_event_id_else_the_body_hash(body: bytes, expected: str | None) -> None:
    scheme = StripeSignature("whsec_a", clock=ManualClock(NOW), max_body_bytes=1 << 20)
    verified = scheme.verify(scheme.sign(body), body)
    assert verified.id == (expected or _body_id(body))


# -- GitHub -----------------------------------------------------------------------------------------------------------


def test_github_signs_with_the_first_secret_only() -> None:
    scheme = GitHubSignature(["first", "second"])
    assert scheme.sign(b"{}", msg_id="d") == {
        "x-hub-signature-256": "sha256=" + _mac(b"first", b"{}").hex(),
        "x-github-delivery": "d",
    }
    second = GitHubSignature("second").sign(b"{}", msg_id="d")
    assert scheme.verify(second, b"{}") == VerifiedWebhook("d", None, b"{}", "github")


@pytest.mark.parametrize("header", ["sha1={mac}", "{mac}", "sha256:{mac}", "sha256=zz", "SHA256={mac}"])
def test_github_anything_but_sha256_hex_is_malformed(header: str) -> None:
    mac = _mac(b"s", b"{}").hex()
    with pytest.raises(SignatureMalformed) as caught:
        GitHubSignature("s").verify({"X-Hub-Signature-256": header.format(mac=mac)}, b"{}")
    assert str(caught.value) == "github: expected sha256=<hex>"
    assert caught.value.header == "x-hub-signature-256"


def test_github_without_a_usable_delivery_id_the_body_hash_is_the_id() -> None:
    scheme = GitHubSignature("s")
    signed = scheme.sign(b"{}", msg_id="d")
    assert scheme.verify({"X-Hub-Signature-256": signed["x-hub-signature-256"]}, b"{}").id == _body_id(b"{}")
    too_long = signed | {"x-github-delivery": "d" * 9000}
    assert scheme.verify(too_long, b"{}").id == _body_id(b"{}")


# -- generic HMAC -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_hmac_signs_with_its_algorithm_encoding_and_prefix(algorithm: Any, encoding: Any) -> None:
    scheme = HMACSignature("k", header="X-Sig", algorithm=algorithm, encoding=encoding, prefix="v=")
    mac = _mac(b"k", b"{}", algorithm)
    expected = "v=" + (mac.hex() if encoding == "hex" else _b64(mac))
    assert scheme.sign(b"{}", msg_id="m") == {"x-sig": expected}
    assert scheme.verify({"X-SIG": expected}, b"{}") == VerifiedWebhook(_body_id(b"{}"), None, b"{}", "hmac")


def test_hmac_the_default_is_sha256_hex_without_prefix() -> None:
    scheme = HMACSignature("k", header="X-Sig")
    assert (scheme.algorithm, scheme.encoding, scheme.prefix, scheme.id_header, scheme.timestamp_header) == (
        "sha256",
        "hex",
        "",
        None,
        None,
    )
    assert scheme.sign(b"{}", msg_id="m") == {"x-sig": _mac(b"k", b"{}").hex()}


def test_hmac_with_id_and_timestamp_headers() -> None:
    scheme = HMACSignature(
        ["k", "k2"], header="X-Sig", id_header="X-Id", timestamp_header="X-Ts", clock=ManualClock(NOW)
    )
    assert (scheme.header, scheme.id_header, scheme.timestamp_header) == ("x-sig", "x-id", "x-ts")
    signed = scheme.sign(b"{}", msg_id="m")
    assert signed == {"x-ts": str(NOW), "x-sig": _mac(b"k", f"{NOW}.".encode() + b"{}").hex(), "x-id": "m"}
    assert scheme.verify(signed, b"{}") == VerifiedWebhook("m", float(NOW), b"{}", "hmac")
    with pytest.raises(SignatureMissing) as caught:
        scheme.verify({k: v for k, v in signed.items() if k != "x-id"}, b"{}")
    assert caught.value.header == "x-id"
    with pytest.raises(SignatureMissing) as caught:
        scheme.verify({k: v for k, v in signed.items() if k != "x-ts"}, b"{}")
    assert caught.value.header == "x-ts"
    with pytest.raises(SignatureMismatch):
        scheme.verify(signed | {"x-ts": str(NOW - 1)}, b"{}")


def test_hmac_a_wrong_prefix_or_encoding_is_malformed() -> None:
    scheme = HMACSignature("k", header="X-Sig", prefix="sha256=", encoding="base64")
    good = scheme.sign(b"{}", msg_id="m")["x-sig"]
    with pytest.raises(SignatureMalformed) as caught:
        scheme.verify({"x-sig": good.removeprefix("sha256=")}, b"{}")
    assert str(caught.value) == "hmac: expected the prefix 'sha256='"
    assert caught.value.header == "x-sig"
    with pytest.raises(SignatureMalformed) as caught:
        scheme.verify({"x-sig": "sha256=" + _mac(b"k", b"{}").hex() + "!"}, b"{}")
    assert str(caught.value) == "hmac: the signature is not base64"
    assert caught.value.header == "x-sig"
    with pytest.raises(SignatureMalformed, match="the signature is not hex"):
        HMACSignature("k", header="X-Sig").verify({"x-sig": "xyz"}, b"{}")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"header": "X", "algorithm": "md5"}, "hmac: algorithm must be sha1, sha256 or sha512, got 'md5'"),
        ({"header": "X", "encoding": "b32"}, "hmac: encoding must be hex or base64, got 'b32'"),
        ({"header": ""}, "hmac: header must name the signature header"),
    ],
)
def test_hmac_bad_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        HMACSignature("k", **options)
    assert str(caught.value) == message


def test_the_verified_body_is_the_body_given() -> None:
    body = json.dumps({"id": "evt_9"}).encode()
    scheme = StripeSignature("whsec_a", clock=ManualClock(NOW))
    assert scheme.verify(scheme.sign(body, timestamp=NOW - 3), body) == VerifiedWebhook(
        "evt_9", float(NOW - 3), body, "stripe"
    )


# -- each scheme names itself and the header at fault ---------------------------------------------------------------


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_a_missing_header_error_names_the_scheme(missing: str) -> None:
    scheme = StandardWebhooks(STD_SECRET, clock=ManualClock(NOW))
    headers = {k: v for k, v in scheme.sign(b"{}", msg_id="m").items() if k != missing}
    with pytest.raises(SignatureMissing) as caught:
        scheme.verify(headers, b"{}")
    assert str(caught.value) == f"standard-webhooks: header {missing} is missing"
    assert caught.value.scheme == "standard-webhooks"


def test_each_scheme_names_itself_for_a_missing_signature_header() -> None:
    for scheme, header in [
        (StripeSignature("whsec_a"), "stripe-signature"),
        (HMACSignature("k", header="X-Sig"), "x-sig"),
    ]:
        with pytest.raises(SignatureMissing) as caught:
            scheme.verify({}, b"{}")
        assert str(caught.value) == f"{scheme.name}: header {header} is missing"
    hmac_scheme = HMACSignature("k", header="X-Sig", id_header="X-Id", timestamp_header="X-Ts")
    signed = hmac_scheme.sign(b"{}", msg_id="m")
    for missing in ("x-ts", "x-id"):
        with pytest.raises(SignatureMissing) as caught:
            hmac_scheme.verify({k: v for k, v in signed.items() if k != missing}, b"{}")
        assert str(caught.value) == f"hmac: header {missing} is missing"


def test_a_timestamp_error_names_the_header_it_came_from() -> None:
    clock = ManualClock(NOW)
    standard = StandardWebhooks(STD_SECRET, clock=clock)
    stripe = StripeSignature("whsec_a", clock=clock)
    for scheme, headers, header in [
        (standard, standard.sign(b"{}", msg_id="m", timestamp=NOW - 999), "webhook-timestamp"),
        (standard, standard.sign(b"{}", msg_id="m") | {"webhook-timestamp": "x"}, "webhook-timestamp"),
        (stripe, stripe.sign(b"{}", timestamp=NOW - 999), "stripe-signature"),
        (stripe, {"stripe-signature": f"t=x,v1={'00' * 32}"}, "stripe-signature"),
    ]:
        with pytest.raises((SignatureMalformed, TimestampOutsideTolerance)) as caught:
            scheme.verify(headers, b"{}")
        assert caught.value.header == header


def test_stripe_a_t_item_is_split_at_its_first_equals_sign() -> None:
    scheme = StripeSignature("whsec_a", clock=ManualClock(NOW))
    with pytest.raises(SignatureMalformed) as caught:  # t is "1=2": one t=, not an integer
        scheme.verify({"stripe-signature": f"t=1=2,v1={'00' * 32}"}, b"{}")
    assert str(caught.value) == "stripe: the timestamp is not an integer number of seconds"


def test_an_exact_header_name_wins_over_the_same_name_in_another_case() -> None:
    scheme = GitHubSignature("s")
    good = scheme.sign(b"{}", msg_id="d")["x-hub-signature-256"]
    headers = {"X-Hub-Signature-256": "sha256=" + "00" * 32, "x-hub-signature-256": good}
    assert scheme.verify(headers, b"{}").scheme == "github"


def test_hmac_passes_its_body_limit_on() -> None:
    scheme = HMACSignature("k", header="X-Sig", max_body_bytes=4)
    assert scheme.max_body_bytes == 4
    with pytest.raises(PayloadTooLarge):
        scheme.verify(scheme.sign(b"12345", msg_id="m"), b"12345")
