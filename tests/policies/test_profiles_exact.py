"""The bundled provider profiles say exactly what their providers document (pure data): each one's signals and how
they read, the statuses it adds to the retry policy, its idempotency mechanism, its quota and window, its source
page and its limits in words; and a name outside them is refused naming the
field and every valid name."""

from __future__ import annotations

from typing import Any

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.policies.profiles import PROFILES, ProviderProfile, profile_named
from integration_kit.policies.signals import SignalProfile

FIVE_XX = {500, 502, 503, 504}
NO_403 = SignalProfile(reset_form="delta", limited_statuses=frozenset())

EXPECTED: dict[str, dict[str, Any]] = {
    "github": {
        "source": "https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api",
        "signals": ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"),
        "reading": SignalProfile(
            reset_form="epoch",
            limited_statuses=frozenset({403}),
            min_limited_wait=60.0,
            limited_body_marker="rate limit",
        ),
        "retry_on_status": {429, *FIVE_XX},
        "limits": (
            "primary: 5,000 requests per hour per user token (15,000 for GitHub Enterprise Cloud apps); secondary: "
            "at most 100 concurrent requests, 900 points per minute per REST endpoint, 80 content-creating "
            "requests per minute and 500 per hour; a 403 or 429 answers both"
        ),
        "quota": 5000,
        "window": 3600.0,
        "idempotency_header": None,
        "idempotency_methods": frozenset(),
    },
    "stripe": {
        "source": "https://docs.stripe.com/rate-limits",
        "signals": ("stripe-should-retry", "retry-after"),
        "reading": NO_403,
        "retry_on_status": {409, 429, *FIVE_XX},
        "limits": (
            "100 read and 100 write operations per second in live mode, 25 in a sandbox; a 429 also answers lock "
            "timeouts on one object; Stripe-Should-Retry overrides the status"
        ),
        "quota": 100,
        "window": 1.0,
        "idempotency_header": "Idempotency-Key",
        "idempotency_methods": frozenset({"POST"}),
    },
    "slack": {
        "source": "https://docs.slack.dev/apis/web-api/rate-limits",
        "signals": ("retry-after",),
        "reading": NO_403,
        "retry_on_status": {429, *FIVE_XX},
        "limits": (
            "per method and workspace: Tier 1 1+ per minute, Tier 2 20+, Tier 3 50+, Tier 4 100+; "
            "chat.postMessage 1 per second per channel; a 429 carries Retry-After in seconds"
        ),
        "quota": 50,
        "window": 60.0,
        "idempotency_header": None,
        "idempotency_methods": frozenset(),
    },
    "shopify": {
        "source": "https://shopify.dev/docs/api/usage/limits",
        "signals": ("x-shopify-shop-api-call-limit", "retry-after"),
        "reading": NO_403,
        "retry_on_status": {429, *FIVE_XX},
        "limits": (
            "REST Admin API: a leaky bucket of 40 requests per app and store, draining 2 per second (Plus: 400 and "
            "20); X-Shopify-Shop-Api-Call-Limit says used/size; a 429 carries Retry-After (a decimal, seconds)"
        ),
        "quota": 40,
        "window": 20.0,
        "idempotency_header": None,
        "idempotency_methods": frozenset(),
    },
    "openai": {
        "source": "https://platform.openai.com/docs/guides/rate-limits",
        "signals": (
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
            "retry-after-ms",
            "retry-after",
            "x-should-retry",
        ),
        "reading": NO_403,
        "retry_on_status": {408, 409, 429, *FIVE_XX},
        "limits": "requests and tokens per minute, per model and usage tier (RPM, TPM); a 429 when either runs out",
        "quota": None,
        "window": None,
        "idempotency_header": None,
        "idempotency_methods": frozenset(),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_profile_says_what_its_provider_documents(name: str) -> None:
    profile = profile_named(name)
    assert profile is PROFILES[name]
    assert profile == ProviderProfile(name=name, **EXPECTED[name])


def test_the_bundled_profiles_are_these_and_read_only() -> None:
    assert list(PROFILES) == ["github", "stripe", "slack", "shopify", "openai"]
    with pytest.raises(TypeError):
        PROFILES["mine"] = PROFILES["github"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "field"), [("gitlab", "profile"), ("GitHub", "client.profile"), (None, "p"), (["github"], "profile")]
)
def test_an_unknown_profile_is_refused_naming_the_field_and_every_valid_name(name: Any, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        profile_named(name, field=field)
    assert info.value.field == field
    assert info.value.message == (
        f"unknown {field} {name!r}: the bundled profiles are github, openai, shopify, slack, stripe"
    )


def test_the_default_field_is_profile() -> None:
    with pytest.raises(ConfigurationError) as info:
        profile_named("gitlab")
    assert info.value.field == "profile"
    assert info.value.message.startswith("unknown profile 'gitlab': ")
