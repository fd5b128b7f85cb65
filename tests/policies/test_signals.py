"""read_signals as a pure function: each header family, the profiles' rules, and properties over any input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_kit.policies.profiles import PROFILES, profile_named
from integration_kit.policies.signals import (
    EPOCH_THRESHOLD,
    SIGNAL_HEADERS,
    Quota,
    SignalProfile,
    has_signals,
    read_signals,
)

NOW = 1_800_000_000.0
GITHUB = PROFILES["github"].reading


def test_no_signal_header_is_none() -> None:
    assert read_signals({"content-type": "application/json", "date": "x"}, NOW, status=429) is None
    assert not has_signals(["content-type", "date"])
    assert has_signals(["content-type", "retry-after"])


def test_ietf_policies_tightest_wins_and_policy_quota_is_joined() -> None:
    signals = read_signals(
        {"RateLimit": '"a";r=5;t=1, "b";r=2;t=60', "RateLimit-Policy": '"a";q=10;w=1, "b";q=100;w=3600'},
        NOW,
        status=200,
    )
    assert signals is not None
    assert signals.quota == Quota("b", 100, 2, 60.0, 3600.0, resets_at=NOW + 60.0)
    assert signals.retry_after is None  # a 200 is not a refusal: the quota feeds pacing, not a retry
    assert not signals.rate_limited


def test_token_policy_names_and_missing_policy_header() -> None:
    signals = read_signals({"RateLimit": "default;r=0;t=3"}, NOW, status=429)
    assert signals is not None
    assert signals.quota == Quota("default", None, 0, 3.0, None, resets_at=NOW + 3.0)
    assert (signals.retry_after, signals.source) == (3.0, "default reset")


@pytest.mark.parametrize(
    ("value", "form", "expected"),
    [
        ("30", "auto", 30.0),
        (str(int(NOW) + 30), "auto", 30.0),
        (str(int(NOW) + 30), "epoch", 30.0),
        ("30", "epoch", 0.0),  # an epoch in 1970: already past
        (str(int(NOW) - 30), "auto", 0.0),
        ("1.5", "delta", 1.5),
    ],
)
def test_x_ratelimit_reset_forms(value: str, form: str, expected: float) -> None:
    profile = SignalProfile(reset_form=form)  # type: ignore[arg-type]
    signals = read_signals({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": value}, NOW, status=429, profile=profile)
    assert signals is not None
    assert signals.quota is not None
    assert signals.quota.reset == pytest.approx(expected)
    assert signals.retry_after == pytest.approx(expected)


def test_epoch_threshold_is_2001() -> None:
    assert EPOCH_THRESHOLD == 1e9


def test_date_header_is_the_reference_for_epoch_resets() -> None:
    headers = {"Date": "Thu, 01 Jan 2026 12:00:00 GMT", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1767269000"}
    signals = read_signals(headers, NOW, status=403, profile=GITHUB)
    assert signals is not None
    assert signals.retry_after == pytest.approx(1767269000 - 1767268800)
    assert signals.rate_limited


def test_github_403_rules() -> None:
    limited = read_signals({"retry-after": "17"}, NOW, status=403, profile=GITHUB)
    assert limited is not None
    assert (limited.retry_after, limited.rate_limited) == (17.0, True)
    marker = read_signals({}, NOW, status=403, profile=GITHUB, body="You have exceeded a secondary Rate Limit")
    assert marker is not None
    assert (marker.retry_after, marker.rate_limited) == (60.0, True)
    assert read_signals({}, NOW, status=403, profile=GITHUB, body="Bad credentials") is None
    plain = read_signals({"x-ratelimit-remaining": "10"}, NOW, status=403, profile=GITHUB)
    assert plain is not None
    assert not plain.rate_limited
    assert plain.retry_after is None
    generic = read_signals({}, NOW, status=429)  # no profile: nothing to say, the backoff applies
    assert generic is None


def test_stripe_profile_does_not_treat_403_as_rate_limit() -> None:
    signals = read_signals({"retry-after": "5"}, NOW, status=403, profile=profile_named("stripe").reading)
    assert signals is not None
    assert not signals.rate_limited


@pytest.mark.parametrize(("value", "expected"), [("true", True), (" FALSE ", False), ("1", None), ("", None)])
def test_should_retry_headers(value: str, expected: bool | None) -> None:
    for name in ("Stripe-Should-Retry", "x-should-retry"):
        signals = read_signals({name: value}, NOW, status=500)
        assert signals is not None
        assert signals.should_retry is expected


def test_stripe_header_wins_over_x_should_retry() -> None:
    signals = read_signals({"stripe-should-retry": "false", "x-should-retry": "true"}, NOW, status=500)
    assert signals is not None
    assert signals.should_retry is False


def test_shopify_bucket() -> None:
    signals = read_signals({"X-Shopify-Shop-Api-Call-Limit": "32/40"}, NOW, status=200)
    assert signals is not None
    assert signals.quota == Quota("shopify", 40, 8, None)


def test_openai_duration_resets() -> None:
    headers = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "6m0s",
    }
    signals = read_signals(headers, NOW, status=429)
    assert signals is not None
    assert signals.retry_after == 360.0


def test_profiles_carry_their_sources_and_valid_data() -> None:
    assert set(PROFILES) == {"github", "stripe", "slack", "shopify", "openai"}
    for profile in PROFILES.values():
        assert profile.source.startswith("https://")
        assert set(profile.signals) <= SIGNAL_HEADERS, profile.name
        assert profile.retry_on_status
        assert all(400 <= s < 600 for s in profile.retry_on_status)
    assert PROFILES["stripe"].idempotency_header == "Idempotency-Key"


_names = st.sampled_from(sorted(SIGNAL_HEADERS | {"date", "content-type"}))
_values = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"-?[0-9]{0,25}(\.[0-9]{0,5})?", fullmatch=True),
    st.from_regex(r'"?[a-z]{0,4}"?(;[rtqw]=-?[0-9]{0,21})*', fullmatch=True),
)


@given(
    headers=st.dictionaries(_names, _values, max_size=8),
    status=st.one_of(st.none(), st.integers(100, 599)),
    profile=st.sampled_from([SignalProfile(), *(p.reading for p in PROFILES.values())]),
    body=st.text(max_size=30),
)
def test_never_raises_and_waits_are_sane(
    headers: dict[str, str], status: int | None, profile: SignalProfile, body: str
) -> None:
    signals = read_signals(headers, NOW, status=status, profile=profile, body=body)
    if signals is None:
        return
    if signals.retry_after is not None:
        assert math.isfinite(signals.retry_after)
        assert signals.retry_after >= 0
    quota = signals.quota
    if quota is not None:
        assert quota.remaining is None or quota.remaining >= 0
        assert quota.reset is None or (math.isfinite(quota.reset) and quota.reset >= 0)


@given(st.dictionaries(st.text(max_size=12).filter(lambda n: n.lower() not in SIGNAL_HEADERS), st.text(max_size=12)))
def test_headers_without_signals_are_always_none(headers: dict[str, str]) -> None:
    assert read_signals(headers, NOW, status=200) is None
