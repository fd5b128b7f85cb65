"""read_signals, exactly: which figure wins, where each wait came from, and the boundaries (issue 29's sweep of
policies/signals.py found these unguarded). Pure: header mappings in, Signals out."""

from __future__ import annotations

from email.utils import formatdate

from integration_kit.policies.profiles import PROFILES
from integration_kit.policies.signals import EPOCH_THRESHOLD, Quota, Signals, read_signals

NOW = 1_800_000_000.0
GITHUB = PROFILES["github"].reading


def quota_of(headers: dict[str, str]) -> Quota:
    """The quota ``headers`` report (the test fails when there is none)."""
    seen = read_signals(headers, NOW)
    assert seen is not None
    assert seen.quota is not None
    return seen.quota


def test_a_bare_429_under_a_profile_waits_its_minimum_and_says_so() -> None:
    assert read_signals({}, NOW, status=429, profile=GITHUB) == Signals(60.0, None, None, True, "profile minimum")


def test_an_answer_with_no_status_is_never_rate_limited() -> None:
    seen = read_signals({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"}, NOW)
    assert seen is not None
    assert seen.rate_limited is False
    assert seen.retry_after is None


def test_a_503_with_retry_after_is_a_rate_limit_refusal_even_without_a_quota() -> None:
    seen = read_signals({"retry-after": "5"}, NOW, status=503)
    assert seen == Signals(5.0, None, None, True, "retry-after")


def test_retry_after_ms_wins_even_at_zero() -> None:
    seen = read_signals({"retry-after-ms": "0", "retry-after": "7"}, NOW, status=429)
    assert seen is not None
    assert (seen.retry_after, seen.source) == (0.0, "retry-after-ms")


def test_a_retry_after_date_is_measured_from_the_partners_date() -> None:
    date = NOW - 3600.0  # the partner's clock is an hour behind ours: only its own Date counts
    headers = {"date": formatdate(date, usegmt=True), "retry-after": formatdate(date + 30, usegmt=True)}
    seen = read_signals(headers, NOW, status=429)
    assert seen is not None
    assert (seen.retry_after, seen.source) == (30.0, "retry-after")


def test_the_tightest_quota_wins_across_families() -> None:
    headers = {"ratelimit": '"default";r=50;t=10', "x-ratelimit-remaining": "3", "x-ratelimit-reset": "20"}
    seen = read_signals(headers, NOW)
    assert seen is not None
    assert seen.quota == Quota("x-ratelimit", None, 3, 20.0, None, NOW + 20.0)


def test_a_quota_with_no_remaining_counts_as_unlimited_and_ties_go_to_the_latest_reset() -> None:
    only_reset = {"x-ratelimit-reset": "100", "ratelimit-remaining": "10", "ratelimit-reset": "5"}
    seen = quota_of(only_reset)
    assert (seen.policy, seen.remaining) == ("ratelimit", 10)
    tie = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "60", "ratelimit-remaining": "0", "ratelimit-reset": "5"}
    seen = quota_of(tie)
    assert (seen.policy, seen.reset) == ("x-ratelimit", 60.0)
    no_reset = {"x-ratelimit-remaining": "0", "ratelimit-remaining": "0", "ratelimit-reset": "0.5"}
    seen = quota_of(no_reset)
    assert (seen.policy, seen.reset) == ("ratelimit", 0.5)


def test_ietf_members_without_a_remaining_are_skipped_and_ties_keep_the_first() -> None:
    seen = read_signals({"ratelimit": '"a";t=5, "b";r=3;t=2'}, NOW)
    assert seen is not None
    assert seen.quota == Quota("b", None, 3, 2.0, None, NOW + 2.0)
    seen = quota_of({"ratelimit": '"a";r=3;t=2, "b";r=3;t=2'})
    assert seen.policy == "a"
    seen = read_signals({"ratelimit": '"d";r=3'}, NOW)
    assert seen is not None
    assert seen.quota == Quota("d", None, 3, None)


def test_a_legacy_family_with_one_header_is_still_a_quota() -> None:
    assert read_signals({"x-ratelimit-limit": "100"}, NOW) == Signals(quota=Quota("x-ratelimit", 100, None, None))
    assert read_signals({"x-ratelimit-remaining": "5"}, NOW) == Signals(quota=Quota("x-ratelimit", None, 5, None))


def test_openai_request_quota_reads_its_limit_and_remaining() -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
    }
    seen = read_signals(headers, NOW)
    assert seen is not None
    assert seen.quota == Quota("x-ratelimit-requests", 500, 499, 0.12, None, NOW + 0.12)


def test_reset_boundaries_epoch_threshold_and_zero() -> None:
    at = quota_of({"x-ratelimit-reset": f"{EPOCH_THRESHOLD:.0f}"})
    assert at.reset == EPOCH_THRESHOLD  # not above the threshold: seconds from now
    zero = quota_of({"x-ratelimit-reset": "0"})
    assert zero.reset == 0.0
