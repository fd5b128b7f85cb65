"""The header parsers of policies/signals.py, exactly, on real header strings as partners send them: RFC 9110's
Retry-After forms, the IETF RateLimit fields, the legacy and provider families, the fast name check, the refusal
rules, and malformed values (each gives a clear outcome: the value is ignored, nothing raises). Issue 29's fifth
sweep found these unguarded. Pure: header mappings in, Signals out."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from integration_kit.policies.profiles import PROFILES
from integration_kit.policies.signals import (
    EPOCH_THRESHOLD,
    Quota,
    SignalProfile,
    Signals,
    has_signal_fields,
    read_signals,
)

NOW = 1_800_000_000.0
GITHUB = PROFILES["github"].reading


def seen(headers: dict[str, str], status: int | None = None, profile: SignalProfile | None = None) -> Signals:
    """The signals of ``headers`` (the test fails when there are none)."""
    if profile is None:
        result = read_signals(headers, NOW, status=status)
    else:
        result = read_signals(headers, NOW, status=status, profile=profile)
    assert result is not None
    return result


# The fast check on raw fields ------------------------------------------------------------------------------------


def test_the_fast_check_reads_raw_names_in_any_case() -> None:
    assert has_signal_fields([(b"Content-Type", b"text/plain"), (b"Retry-After", b"5")])
    assert has_signal_fields([(b"X-RATELIMIT-REMAINING", b"0")])
    assert not has_signal_fields([(b"Content-Type", b"text/plain"), (b"Date", b"x")])
    assert not has_signal_fields([])


# Retry-After (RFC 9110 section 10.2.3) and retry-after-ms -----------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "wait", "source"),
    [
        ({"Retry-After": "120"}, 120.0, "retry-after"),
        ({"Retry-After": " 0 "}, 0.0, "retry-after"),
        ({"Retry-After": "2.0"}, 2.0, "retry-after"),  # Shopify's decimal
        ({"retry-after-ms": "1500"}, 1.5, "retry-after-ms"),
        ({"retry-after-ms": "250.5", "Retry-After": "1"}, 0.2505, "retry-after-ms"),
        ({"retry-after-ms": "soon", "Retry-After": "3"}, 3.0, "retry-after"),  # a malformed ms falls back
        ({"retry-after-ms": "-5", "Retry-After": "3"}, 3.0, "retry-after"),
        ({"Retry-After": "99999999999999"}, None, None),  # beyond any sane wait: read as no wait, not infinity
        ({"Retry-After": "-5"}, None, None),
        ({"Retry-After": "soon"}, None, None),
        ({"Retry-After": ""}, None, None),
        ({"Retry-After": "1e3"}, None, None),
    ],
)
def test_explicit_waits(headers: dict[str, str], wait: float | None, source: str | None) -> None:
    signals = seen(headers, status=500)
    assert (signals.retry_after, signals.source) == (wait, source)
    assert signals.rate_limited is False  # a 500 is never a rate-limit refusal


def test_a_retry_after_date_without_a_date_header_is_measured_from_now() -> None:
    signals = seen({"Retry-After": formatdate(NOW + 45, usegmt=True)}, status=429)
    assert (signals.retry_after, signals.source) == (45.0, "retry-after")


def test_a_retry_after_date_in_the_past_is_no_wait() -> None:
    signals = seen({"Retry-After": formatdate(NOW - 45, usegmt=True)}, status=429)
    assert (signals.retry_after, signals.source) == (0.0, "retry-after")


@pytest.mark.parametrize("date", ["not a date", "Thu, 01 Jan 2026 12:00:00 -0000", ""])
def test_an_unusable_date_header_falls_back_to_now(date: str) -> None:
    headers = {"Date": date, "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 30)}
    signals = seen(headers, status=429, profile=GITHUB)
    assert signals.retry_after == 30.0
    assert signals.quota is not None
    assert signals.quota.resets_at == NOW + 30.0


def test_the_date_header_is_found_in_any_case() -> None:
    date = NOW - 100.0
    for name in ("date", "Date", "DATE"):
        headers = {name: formatdate(date, usegmt=True), "x-ratelimit-remaining": "0", "x-ratelimit-reset": "60"}
        quota = seen(headers).quota
        assert quota is not None
        assert quota.resets_at == date + 60.0, name


# The refusal rules ------------------------------------------------------------------------------------------------


def test_a_503_is_a_rate_limit_only_with_a_wait_or_an_exhausted_quota() -> None:
    assert seen({"x-ratelimit-remaining": "1", "x-ratelimit-reset": "9"}, status=503).rate_limited is False
    exhausted = seen({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "9"}, status=503)
    assert (exhausted.rate_limited, exhausted.retry_after, exhausted.source) == (True, 9.0, "x-ratelimit reset")
    assert seen({"x-should-retry": "true"}, status=503).rate_limited is False


def test_a_429_is_always_a_rate_limit() -> None:
    signals = seen({"x-ratelimit-remaining": "4", "x-ratelimit-reset": "9"}, status=429)
    assert signals.rate_limited is True
    assert signals.retry_after is None  # quota left and no profile minimum: the backoff decides


def test_a_403_is_a_rate_limit_with_an_exhausted_quota_even_without_a_profile() -> None:
    signals = seen({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "7"}, status=403)
    assert (signals.rate_limited, signals.retry_after, signals.source) == (True, 7.0, "x-ratelimit reset")
    body = read_signals({"x-ratelimit-remaining": "5"}, NOW, status=403, body="rate limit exceeded")
    assert body is not None
    assert body.rate_limited is False  # the default profile has no body marker


def test_a_github_403_with_quota_left_but_the_marker_waits_the_minimum() -> None:
    headers = {"x-ratelimit-remaining": "12", "x-ratelimit-reset": str(int(NOW) + 500)}
    signals = read_signals(headers, NOW, status=403, profile=GITHUB, body="You have exceeded a secondary RATE LIMIT.")
    assert signals is not None
    assert (signals.rate_limited, signals.retry_after, signals.source) == (True, 60.0, "profile minimum")


def test_a_limited_answer_whose_quota_names_no_reset_waits_the_minimum_or_nothing() -> None:
    signals = seen({"x-ratelimit-remaining": "0"}, status=429, profile=GITHUB)
    assert (signals.retry_after, signals.source) == (60.0, "profile minimum")
    signals = seen({"x-ratelimit-remaining": "0"}, status=429)
    assert (signals.retry_after, signals.source, signals.rate_limited) == (None, None, True)


def test_a_limited_answer_with_a_reset_but_no_remaining_waits_for_the_reset() -> None:
    signals = seen({"ratelimit-reset": "12"}, status=429, profile=GITHUB)
    assert (signals.retry_after, signals.source) == (12.0, "ratelimit reset")


def test_bare_refusals_follow_the_profiles_rules_only() -> None:
    assert read_signals({}, NOW, status=503, profile=GITHUB) is None
    assert read_signals({}, NOW, status=None, profile=GITHUB) is None
    assert read_signals({}, NOW, status=403, profile=GITHUB, body="") is None
    marker = SignalProfile(min_limited_wait=5.0, limited_statuses=frozenset({418}), limited_body_marker="slow")
    assert read_signals({}, NOW, status=418, profile=marker, body="Slow down") == Signals(
        5.0, None, None, True, "profile minimum"
    )
    assert read_signals({}, NOW, status=403, profile=marker, body="slow") is None  # 403 is not its status
    no_marker = SignalProfile(min_limited_wait=5.0)
    assert read_signals({}, NOW, status=403, profile=no_marker, body="rate limit") is None
    assert read_signals({}, NOW, status=429, profile=no_marker) == Signals(5.0, None, None, True, "profile minimum")


# The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers) --------------------------------------------------


def test_ietf_fields_as_sent() -> None:
    headers = {"RateLimit": '"default";r=0;t=30', "RateLimit-Policy": '"default";q=100;w=60'}
    signals = seen(headers, status=429)
    assert signals == Signals(30.0, None, Quota("default", 100, 0, 30.0, 60.0, NOW + 30.0), True, "default reset")


@pytest.mark.parametrize(
    "value",
    [
        '"default";r=?1;t=3',  # a boolean is not a count
        '"default";r=-1;t=3',
        '"default";r=1.5;t=3',
        '"default";r="2";t=3',
        "default;;r=1",  # not a structured field
        "défaut;r=1",  # not ASCII
        "",
    ],
)
def test_malformed_ietf_remaining_is_ignored(value: str) -> None:
    assert read_signals({"RateLimit": value}, NOW, status=429) == Signals(None, None, None, True, None)


def test_malformed_ietf_reset_and_policy_figures_are_none() -> None:
    headers = {"RateLimit": '"p";r=4;t=?1', "RateLimit-Policy": '"p";q=-1;w=1.5'}
    assert seen(headers).quota == Quota("p", None, 4, None, None)
    headers = {"RateLimit": '"p";r=4;t=-3', "RateLimit-Policy": "garbage;;"}
    assert seen(headers).quota == Quota("p", None, 4, None, None)
    headers = {"RateLimit": '"p";r=4', "RateLimit-Policy": '"other";q=10;w=60'}
    assert seen(headers).quota == Quota("p", None, 4, None, None)


def test_ietf_zero_figures_are_kept() -> None:
    headers = {"RateLimit": '"p";r=0;t=0', "RateLimit-Policy": '"p";q=0;w=0'}
    assert seen(headers).quota == Quota("p", 0, 0, 0.0, 0.0, NOW)


def test_the_tightest_ietf_policy_is_the_least_remaining_then_the_latest_reset() -> None:
    quota = seen({"RateLimit": '"a";r=3;t=2, "b";r=3;t=9, "c";r=4;t=1'}).quota
    assert quota is not None
    assert quota.policy == "b"
    quota = seen({"RateLimit": '"a";r=3;t=9, "b";r=3;t=2'}).quota
    assert quota is not None
    assert quota.policy == "a"
    quota = seen({"RateLimit": '"a";r=5, "b";r=2'}).quota
    assert quota is not None
    assert quota.policy == "b"


# The legacy and provider families ---------------------------------------------------------------------------------


def test_github_headers_as_sent() -> None:
    headers = {
        "Date": formatdate(NOW, usegmt=True),
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-used": "5000",
        "x-ratelimit-reset": str(int(NOW) + 1200),
        "x-ratelimit-resource": "core",
    }
    signals = seen(headers, status=403, profile=GITHUB)
    assert signals == Signals(
        1200.0, None, Quota("x-ratelimit", 5000, 0, 1200.0, None, NOW + 1200.0), True, signals.source
    )
    assert signals.source == "x-ratelimit reset"


def test_the_draft_06_family_reads_its_reset_as_seconds_even_when_large() -> None:
    big = int(EPOCH_THRESHOLD) + 10
    quota = seen({"RateLimit-Limit": "10", "RateLimit-Remaining": "2", "RateLimit-Reset": str(big)}).quota
    assert quota == Quota("ratelimit", 10, 2, float(big), None, NOW + big)


def test_an_epoch_just_above_the_threshold_is_an_epoch_under_auto() -> None:
    quota = seen({"x-ratelimit-reset": f"{EPOCH_THRESHOLD + 1:.0f}"}).quota
    assert quota is not None
    assert quota.reset == 0.0  # 2001 is long past


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42),
        (" 42 ", 42),
        ("0", 0),
        ("123456789012345", 123456789012345),  # 15 digits: the longest read
        ("1234567890123456", None),
        ("4.0", None),
        ("-1", None),
        ("", None),
        ("²", None),  # isdigit() says yes; int() refuses
        ("٣", None),  # an Arabic-Indic three: int() would read it
        ("0x10", None),
    ],
)
def test_integer_fields(value: str, expected: int | None) -> None:
    signals = read_signals({"x-ratelimit-limit": value, "x-ratelimit-reset": "5"}, NOW)
    assert signals is not None
    assert signals.quota is not None
    assert signals.quota.limit == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("12345678901234567890", 12345678901234567890 - NOW),  # 20 characters: the longest read (an epoch)
        ("123456789012345678901", None),
        ("1..5", None),
        (".", None),
        ("-3", None),
        ("inf", None),
        ("nan", None),
        ("1e3", None),
        ("١٢", None),  # Arabic-Indic digits: float() would read them
        ("", None),
    ],
)
def test_reset_numbers(value: str, expected: float | None) -> None:
    signals = read_signals({"x-ratelimit-remaining": "3", "x-ratelimit-reset": value}, NOW)
    assert signals is not None
    assert signals.quota is not None
    assert signals.quota.reset == expected


def test_a_family_with_only_malformed_values_is_no_quota() -> None:
    assert read_signals(
        {"x-ratelimit-limit": "many", "x-ratelimit-remaining": "?", "x-ratelimit-reset": "soon"}, NOW
    ) == (Signals())
    bad_openai = {
        "x-ratelimit-limit-requests": "x",
        "x-ratelimit-remaining-requests": "",
        "x-ratelimit-reset-requests": "1y",
    }
    assert read_signals(bad_openai, NOW) == Signals()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("20ms", 0.02),
        ("1m", 60.0),
        ("2h", 7200.0),
        ("0s", 0.0),
        (" 7s ", 7.0),
        ("1m30s250ms", 90.25),
        ("", None),
        ("s", None),
        ("7", None),
        ("1.5", None),
        ("1d", None),
        ("-1s", None),
    ],
)
def test_openai_durations(value: str, expected: float | None) -> None:
    signals = read_signals({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": value}, NOW)
    assert signals is not None
    assert signals.quota is not None
    assert signals.quota.reset == pytest.approx(expected) if expected is not None else signals.quota.reset is None
    assert signals.quota.policy == "x-ratelimit-requests"


def test_openai_headers_as_sent() -> None:
    headers = {
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-remaining-tokens": "1999000",
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-reset-tokens": "30ms",
        "x-should-retry": "false",
        "retry-after-ms": "20",
    }
    signals = seen(headers, status=429)
    assert signals.should_retry is False
    assert (signals.retry_after, signals.source, signals.rate_limited) == (0.02, "retry-after-ms", True)
    assert signals.quota == Quota("x-ratelimit-requests", 10000, 9999, 0.006, None, NOW + 0.006)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("32/40", Quota("shopify", 40, 8, None)),
        ("40/40", Quota("shopify", 40, 0, None)),
        ("41/40", Quota("shopify", 40, 0, None)),
        (" 1 / 400 ", Quota("shopify", 400, 399, None)),
        ("0/1", Quota("shopify", 1, 1, None)),
        ("1/0", None),
        ("32", None),
        ("32/", None),
        ("/40", None),
        ("a/b", None),
        ("", None),
    ],
)
def test_shopify_call_limits(value: str, expected: Quota | None) -> None:
    assert seen({"X-Shopify-Shop-Api-Call-Limit": value}).quota == expected


def test_a_full_shopify_bucket_on_a_429_waits_its_retry_after() -> None:
    signals = seen({"X-Shopify-Shop-Api-Call-Limit": "40/40", "Retry-After": "2.0"}, status=429)
    assert signals == Signals(2.0, None, Quota("shopify", 40, 0, None), True, "retry-after")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), (" false ", False), ("FALSE", False), ("yes", None), ("0", None), ("", None)],
)
def test_stripe_should_retry_as_sent(value: str, expected: bool | None) -> None:
    assert seen({"Stripe-Should-Retry": value}, status=409).should_retry is expected


def test_a_malformed_stripe_hint_defers_to_x_should_retry() -> None:
    assert seen({"stripe-should-retry": "maybe", "x-should-retry": "true"}).should_retry is True


def test_a_read_without_a_body_has_no_body_to_match() -> None:
    marker = SignalProfile(limited_body_marker="x", min_limited_wait=1.0)
    signals = seen({"x-ratelimit-remaining": "5"}, status=403, profile=marker)
    assert (signals.rate_limited, signals.retry_after) == (False, None)
    assert read_signals({}, NOW, status=403, profile=marker) is None
