"""Provider profiles: what a named partner's API says about its limits, declared as data.

A profile says which signals the provider sends and in which form (:class:`~integration_kit.policies.signals.
SignalProfile`), which statuses are worth retrying, its idempotency mechanism, and its documented limits. Name one
in ``ClientConfig(profile="github")`` or an HTTP spec's ``profile = "github"``: the client reads the provider's
headers its way, retries its retryable statuses, and (for Stripe) sends an ``Idempotency-Key`` on its POSTs.
Each entry carries the page it was taken from; the figures are the documented defaults at the time of writing
(accounts and plans may differ).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from integration_kit.errors import ConfigurationError
from integration_kit.policies.signals import SignalProfile

__all__ = ["PROFILES", "ProviderProfile", "profile_named"]


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    """One provider's rate-limit and retry conventions.

    ``signals`` are the header names it sends (lower case); ``reading`` is how they read; ``retry_on_status``
    adds to the retry policy's transient statuses; ``idempotency_header`` is the header its API deduplicates
    requests by (``None``: it has none) and ``idempotency_methods`` the methods that get a generated key;
    ``quota`` requests per ``window`` seconds is the documented default limit (``None``: not a fixed window);
    ``limits`` describes the documented limits in words; ``source`` is the documentation page.
    """

    name: str
    source: str
    signals: tuple[str, ...]
    reading: SignalProfile
    retry_on_status: frozenset[int]
    limits: str
    quota: int | None = None
    window: float | None = None
    idempotency_header: str | None = None
    idempotency_methods: frozenset[str] = frozenset()


_PROFILES = (
    # Source: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api and
    # https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
    ProviderProfile(
        name="github",
        source="https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api",
        signals=("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"),
        reading=SignalProfile(
            reset_form="epoch",
            limited_statuses=frozenset({403}),
            min_limited_wait=60.0,
            limited_body_marker="rate limit",
        ),
        retry_on_status=frozenset({429, 500, 502, 503, 504}),
        limits=(
            "primary: 5,000 requests per hour per user token (15,000 for GitHub Enterprise Cloud apps); secondary: "
            "at most 100 concurrent requests, 900 points per minute per REST endpoint, 80 content-creating "
            "requests per minute and 500 per hour; a 403 or 429 answers both"
        ),
        quota=5000,
        window=3600.0,
    ),
    # Source: https://docs.stripe.com/rate-limits, https://docs.stripe.com/api/idempotent_requests and
    # https://docs.stripe.com/error-low-level (the Stripe-Should-Retry header)
    ProviderProfile(
        name="stripe",
        source="https://docs.stripe.com/rate-limits",
        signals=("stripe-should-retry", "retry-after"),
        reading=SignalProfile(reset_form="delta", limited_statuses=frozenset()),
        retry_on_status=frozenset({409, 429, 500, 502, 503, 504}),
        limits=(
            "100 read and 100 write operations per second in live mode, 25 in a sandbox; a 429 also answers lock "
            "timeouts on one object; Stripe-Should-Retry overrides the status"
        ),
        quota=100,
        window=1.0,
        idempotency_header="Idempotency-Key",
        idempotency_methods=frozenset({"POST"}),
    ),
    # Source: https://docs.slack.dev/apis/web-api/rate-limits
    ProviderProfile(
        name="slack",
        source="https://docs.slack.dev/apis/web-api/rate-limits",
        signals=("retry-after",),
        reading=SignalProfile(reset_form="delta", limited_statuses=frozenset()),
        retry_on_status=frozenset({429, 500, 502, 503, 504}),
        limits=(
            "per method and workspace: Tier 1 1+ per minute, Tier 2 20+, Tier 3 50+, Tier 4 100+; "
            "chat.postMessage 1 per second per channel; a 429 carries Retry-After in seconds"
        ),
        quota=50,
        window=60.0,
    ),
    # Source: https://shopify.dev/docs/api/usage/limits#rest-admin-api-rate-limits
    ProviderProfile(
        name="shopify",
        source="https://shopify.dev/docs/api/usage/limits",
        signals=("x-shopify-shop-api-call-limit", "retry-after"),
        reading=SignalProfile(reset_form="delta", limited_statuses=frozenset()),
        retry_on_status=frozenset({429, 500, 502, 503, 504}),
        limits=(
            "REST Admin API: a leaky bucket of 40 requests per app and store, draining 2 per second (Plus: 400 and "
            "20); X-Shopify-Shop-Api-Call-Limit says used/size; a 429 carries Retry-After (a decimal, seconds)"
        ),
        quota=40,
        window=20.0,
    ),
    # Source: https://platform.openai.com/docs/guides/rate-limits and the openai-python SDK's retry rules
    # (retry-after-ms, retry-after, x-should-retry; 408, 409, 429 and 5xx retried)
    ProviderProfile(
        name="openai",
        source="https://platform.openai.com/docs/guides/rate-limits",
        signals=(
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
            "retry-after-ms",
            "retry-after",
            "x-should-retry",
        ),
        reading=SignalProfile(reset_form="delta", limited_statuses=frozenset()),
        retry_on_status=frozenset({408, 409, 429, 500, 502, 503, 504}),
        limits="requests and tokens per minute, per model and usage tier (RPM, TPM); a 429 when either runs out",
    ),
)

#: The bundled profiles by name.
PROFILES: MappingProxyType[str, ProviderProfile] = MappingProxyType({p.name: p for p in _PROFILES})


def profile_named(name: str, *, field: str = "profile") -> ProviderProfile:
    """The bundled profile called ``name``; raises :class:`~integration_kit.errors.ConfigurationError` (naming
    ``field`` and the valid names) for any other value."""
    profile = PROFILES.get(name) if isinstance(name, str) else None
    if profile is None:
        valid = ", ".join(sorted(PROFILES))
        raise ConfigurationError(f"unknown {field} {name!r}: the bundled profiles are {valid}", field=field)
    return profile
