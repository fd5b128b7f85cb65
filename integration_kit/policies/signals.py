"""What a partner's response headers say about its rate limits and retries: pure functions, no I/O, never raising.

:func:`read_signals` turns a response's header mapping into :class:`Signals`: the explicit retry wait
(``retry_after``, seconds), the partner's retry hint (``should_retry``), the quota it reported (:class:`Quota`), and
whether the answer is a rate-limit refusal (``rate_limited``). A driver maps them onto
:attr:`Outcome.retry_after <integration_kit.policies.outcome.Outcome.retry_after>` and
:attr:`Outcome.should_retry <integration_kit.policies.outcome.Outcome.should_retry>`, the one place the retry
decision reads partner hints (:func:`~integration_kit.policies.retry.decide_retry`).

The headers read, and where each is specified:

==============================================  ======================================================================
``Retry-After``                                 RFC 9110 section 10.2.3 (seconds or an HTTP-date)
``retry-after-ms``                              OpenAI's and Anthropic's SDKs (milliseconds; preferred when present)
``RateLimit``, ``RateLimit-Policy``             draft-ietf-httpapi-ratelimit-headers-09: structured-field lists,
                                                ``"name";r=<remaining>;t=<seconds to reset>`` and
                                                ``"name";q=<quota>;w=<window seconds>``, several policies each
``RateLimit-Limit``/``-Remaining``/``-Reset``   the same draft up to -06 (reset in seconds from now)
``X-RateLimit-Limit``/``-Remaining``/``-Reset`` GitHub (reset in epoch seconds), Slack, Shopify's Storefront and many
                                                others (reset in seconds from now): the profile's ``reset_form`` says
                                                which; otherwise a value above :data:`EPOCH_THRESHOLD` is an epoch
``X-RateLimit-*-Requests``                      OpenAI (reset as a duration: ``1s``, ``6m0s``, ``20ms``)
``X-Shopify-Shop-Api-Call-Limit``               Shopify Admin REST: ``used/size`` of a leaky bucket
``Stripe-Should-Retry``                         Stripe (``true``/``false``; overrides the kit's own classification)
``x-should-retry``                              OpenAI's and Anthropic's SDKs (``true``/``false``)
==============================================  ======================================================================

GitHub's rules (docs.github.com, "Rate limits for the REST API"): a 403 or 429 with ``retry-after`` waits that
long; without it, until ``x-ratelimit-reset`` when ``x-ratelimit-remaining`` is 0, else at least a minute
(``SignalProfile.min_limited_wait``). Such a 403 is a rate limit, not an authorisation error: a 403 is judged
rate-limited when it carries ``retry-after``, a remaining quota of 0, or (with a profile that says so) a body that
mentions the rate limit.

Cost: :func:`has_signal_fields` is the fast check a driver makes first, one pass over the raw header names (about
the cost of the one ``Retry-After`` lookup it replaces); an answer without signal headers reads nothing more,
unless its profile has a rule for bare refusals (GitHub's). See ``bench/signals.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import http_sf

from integration_kit.policies.retry import parse_retry_after

__all__ = [
    "DEFAULT_SIGNAL_PROFILE",
    "EPOCH_THRESHOLD",
    "SIGNAL_HEADERS",
    "Quota",
    "ResetForm",
    "SignalProfile",
    "Signals",
    "has_signal_fields",
    "has_signals",
    "read_signals",
]

#: How a ``*-Reset`` header counts: POSIX epoch seconds, seconds from now, or guessed per value.
ResetForm = Literal["epoch", "delta", "auto"]

#: A reset value above this (seconds) is read as a POSIX epoch when the form is ``"auto"``: 10^9 s is 2001-09-09,
#: and no documented window is anywhere near 31 years long.
EPOCH_THRESHOLD = 1e9

#: Every header name :func:`read_signals` looks at, lower case: the fast check compares names against this set.
SIGNAL_HEADERS = frozenset(
    {
        "retry-after",
        "retry-after-ms",
        "ratelimit",
        "ratelimit-policy",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-shopify-shop-api-call-limit",
        "stripe-should-retry",
        "x-should-retry",
    }
)

_SIGNAL_FIELD_NAMES = frozenset(name.encode("ascii") for name in SIGNAL_HEADERS)

#: Statuses that refuse a request for its rate: the quota's reset is a wait hint only on these.
_REFUSALS = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class SignalProfile:
    """How one provider's signals read (see :mod:`integration_kit.policies.profiles` for the bundled ones).

    ``reset_form`` says how ``X-RateLimit-Reset`` counts (``"auto"``: the :data:`EPOCH_THRESHOLD` heuristic);
    ``limited_statuses`` are the statuses besides 429 that may mean "rate limited" (GitHub's 403);
    ``min_limited_wait`` is the wait (seconds) for a rate-limit refusal that names no time (GitHub: 60);
    ``limited_body_marker``, when set, is a lower-case phrase whose presence in a refusal's body marks it
    rate-limited (GitHub's secondary limit message says "rate limit").
    """

    reset_form: ResetForm = "auto"
    limited_statuses: frozenset[int] = frozenset({403})
    min_limited_wait: float | None = None
    limited_body_marker: str | None = None


#: The reading when no profile is named: resets guessed per value, a 403 with a rate-limit header is a rate limit.
DEFAULT_SIGNAL_PROFILE = SignalProfile()


@dataclass(frozen=True, slots=True)
class Quota:
    """The most constraining quota a response reported.

    ``policy`` names it (the IETF policy name, or the header family: ``"ratelimit"``, ``"x-ratelimit"``,
    ``"shopify"``); ``limit`` is the requests allowed per window and ``remaining`` what is left (``None`` when not
    given); ``reset`` is the seconds from now until the window resets (``None`` when not given); ``window`` is the
    window's length in seconds when a policy names it; ``resets_at`` is the reset as POSIX seconds on the partner's
    clock (its ``Date`` plus ``reset``), the same figure in every process that read the same window, which is how
    :class:`~integration_kit.policies.limits.QuotaPacer` names a window in a shared store.
    """

    policy: str
    limit: int | None
    remaining: int | None
    reset: float | None
    window: float | None = None
    resets_at: float | None = None

    @property
    def exhausted(self) -> bool:
        """Whether nothing is left of the quota until its reset."""
        return self.remaining is not None and self.remaining <= 0


@dataclass(frozen=True, slots=True)
class Signals:
    """What a response's headers said, in the engine's units.

    ``retry_after`` is the wait (seconds, >= 0) before the next request, when the response gave one, explicitly
    (``retry-after-ms``, ``Retry-After``) or, on a rate-limit refusal, through an exhausted quota's reset or the
    profile's minimum; ``should_retry`` is the partner's explicit hint (``None``: it gave none); ``quota`` is the
    most constraining quota reported; ``rate_limited`` says the answer refuses the request for its rate;
    ``source`` names the header ``retry_after`` came from.
    """

    retry_after: float | None = None
    should_retry: bool | None = None
    quota: Quota | None = None
    rate_limited: bool = False
    source: str | None = None


def has_signals(names: Iterable[str]) -> bool:
    """Whether any of the header ``names`` (lower case, as httpx gives them) is one :func:`read_signals` reads."""
    return not SIGNAL_HEADERS.isdisjoint(names)


def has_signal_fields(raw: Iterable[tuple[bytes, bytes]]) -> bool:
    """The fast check on raw header fields (``(name, value)`` bytes in any case, as ``httpx.Headers.raw`` gives
    them): whether any is one :func:`read_signals` reads. It costs about one header lookup."""
    return not _SIGNAL_FIELD_NAMES.isdisjoint([name.lower() for name, _ in raw])


def read_signals(
    headers: Mapping[str, str],
    now: float,
    *,
    status: int | None = None,
    profile: SignalProfile = DEFAULT_SIGNAL_PROFILE,
    body: str = "",
) -> Signals | None:
    """Read ``headers`` (names compared case-insensitively) of an answer with ``status``; ``None`` if none is a signal.

    ``now`` is the POSIX time (seconds) the answer was received: epoch resets and HTTP-dates are measured from the
    response's ``Date`` header when it parses (the partner's own clock, so clock skew does not matter), else from
    ``now``. ``body`` (a snippet) is only searched for ``profile.limited_body_marker``. A malformed value is
    ignored; this never raises.
    """
    found: dict[str, str] | None = None
    date: str | None = None
    for name, value in headers.items():
        key = name.lower()
        if key in SIGNAL_HEADERS:
            if found is None:
                found = {}
            found[key] = value
        elif key == "date":
            date = value
    if found is None:
        return _limited_without_headers(status, profile, body)
    reference = _reference(date, now)
    quota = _quota(found, reference, profile.reset_form)
    should = _boolean(found.get("stripe-should-retry"))
    if should is None:
        should = _boolean(found.get("x-should-retry"))
    explicit, source = _explicit_wait(found, reference)
    limited = _is_limited(status, profile, explicit, quota, body)
    retry_after = explicit
    if retry_after is None and limited:
        if quota is not None and quota.reset is not None and (quota.exhausted or quota.remaining is None):
            retry_after, source = quota.reset, f"{quota.policy} reset"
        elif profile.min_limited_wait is not None:
            retry_after, source = profile.min_limited_wait, "profile minimum"
    return Signals(retry_after, should, quota, limited, source)


def _limited_without_headers(status: int | None, profile: SignalProfile, body: str) -> Signals | None:
    """A refusal with no signal header: rate-limited only by the profile's rules (a 429, or its body marker)."""
    if profile.min_limited_wait is None or status is None:
        return None
    if status == 429 or (status in profile.limited_statuses and _body_says_limited(profile, body)):
        return Signals(profile.min_limited_wait, None, None, True, "profile minimum")
    return None


def _is_limited(
    status: int | None, profile: SignalProfile, explicit: float | None, quota: Quota | None, body: str
) -> bool:
    if status is None:
        return False
    if status in _REFUSALS:
        return status == 429 or explicit is not None or (quota is not None and quota.exhausted)
    if status in profile.limited_statuses:
        return explicit is not None or (quota is not None and quota.exhausted) or _body_says_limited(profile, body)
    return False


def _body_says_limited(profile: SignalProfile, body: str) -> bool:
    marker = profile.limited_body_marker
    return marker is not None and marker in body.lower()


def _explicit_wait(found: Mapping[str, str], reference: float | datetime) -> tuple[float | None, str | None]:
    """``retry-after-ms`` (preferred, as the SDKs that send it do), else ``Retry-After``."""
    millis = _number(found.get("retry-after-ms"))
    if millis is not None and millis >= 0:
        return millis / 1000.0, "retry-after-ms"
    raw = found.get("retry-after")
    seconds = parse_retry_after(raw, reference)
    if seconds is None:  # Shopify sends a decimal ("2.0"), which RFC 9110's delta-seconds does not allow
        seconds = _number(raw)
    if seconds is not None and math.isfinite(seconds):
        return seconds, "retry-after"
    return None, None


def _quota(found: Mapping[str, str], reference: float | datetime, form: ResetForm) -> Quota | None:
    """The most constraining quota among the header families present (least remaining, then latest reset)."""
    quotas = [
        q
        for q in (
            _ietf_quota(found),
            _legacy_quota(found, "ratelimit", "delta", reference),
            _legacy_quota(found, "x-ratelimit", form, reference),
            _openai_quota(found),
            _shopify_quota(found),
        )
        if q is not None
    ]
    if not quotas:
        return None
    tightest = min(quotas, key=_tightness)
    if tightest.reset is None:
        return tightest
    base = reference.timestamp() if isinstance(reference, datetime) else reference
    return replace(tightest, resets_at=base + tightest.reset)


def _tightness(quota: Quota) -> tuple[float, float]:
    remaining = math.inf if quota.remaining is None else quota.remaining
    return remaining, -(quota.reset or 0.0)


def _ietf_quota(found: Mapping[str, str]) -> Quota | None:
    """``RateLimit: "default";r=0;t=2`` with ``RateLimit-Policy: "default";q=100;w=10`` (draft -09)."""
    raw = found.get("ratelimit")
    if raw is None:
        return None
    limits = _sf_list(found.get("ratelimit-policy"))
    policies = {name: params for name, params in limits}
    best: Quota | None = None
    for name, params in _sf_list(raw):
        remaining = _sf_int(params.get("r"))
        if remaining is None:
            continue
        reset = _sf_int(params.get("t"))
        policy = policies.get(name, {})
        quota = Quota(
            name,
            _sf_int(policy.get("q")),
            remaining,
            None if reset is None else float(reset),
            None if (w := _sf_int(policy.get("w"))) is None else float(w),
        )
        if best is None or _tightness(quota) < _tightness(best):
            best = quota
    return best


def _legacy_quota(found: Mapping[str, str], family: str, form: ResetForm, reference: float | datetime) -> Quota | None:
    limit = _integer(found.get(f"{family}-limit"))
    remaining = _integer(found.get(f"{family}-remaining"))
    reset_value = _number(found.get(f"{family}-reset"))
    if limit is None and remaining is None and reset_value is None:
        return None
    reset = None if reset_value is None else _reset_seconds(reset_value, form, reference)
    return Quota(family, limit, remaining, reset)


def _openai_quota(found: Mapping[str, str]) -> Quota | None:
    """OpenAI's request quota: ``x-ratelimit-{limit,remaining,reset}-requests``, the reset a duration (``6m0s``)."""
    limit = _integer(found.get("x-ratelimit-limit-requests"))
    remaining = _integer(found.get("x-ratelimit-remaining-requests"))
    reset = _duration(found.get("x-ratelimit-reset-requests"))
    if limit is None and remaining is None and reset is None:
        return None
    return Quota("x-ratelimit-requests", limit, remaining, reset)


def _shopify_quota(found: Mapping[str, str]) -> Quota | None:
    """``X-Shopify-Shop-Api-Call-Limit: 32/40``: a leaky bucket of 40 with 32 used (shopify.dev, REST Admin API
    rate limits); it drains at the store's leak rate, so no reset time is given."""
    raw = found.get("x-shopify-shop-api-call-limit")
    if raw is None:
        return None
    used_text, _, size_text = raw.partition("/")
    used, size = _integer(used_text), _integer(size_text)
    if used is None or size is None or size <= 0:
        return None
    return Quota("shopify", size, max(0, size - used), None)


def _reset_seconds(value: float, form: ResetForm, reference: float | datetime) -> float:
    """Seconds from now until a reset given as ``value`` in ``form`` (floored at 0)."""
    epoch = form == "epoch" or (form == "auto" and value > EPOCH_THRESHOLD)
    if not epoch:
        return max(0.0, value)
    base = reference.timestamp() if isinstance(reference, datetime) else reference
    return max(0.0, value - base)


def _reference(date: str | None, now: float) -> float | datetime:
    """The response's ``Date`` (its value, found in any case) when it parses (the partner's clock), else ``now``."""
    if not date:
        return now
    try:
        parsed = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return now
    if parsed.tzinfo is None:
        return now
    return parsed


def _sf_list(raw: str | None) -> list[tuple[str, Mapping[str, object]]]:
    """A structured-field list (RFC 9651) of string or token items with parameters; ``[]`` when malformed."""
    if not raw:
        return []
    try:
        parsed = http_sf.parse(raw.encode("ascii"), tltype="list")
    except (ValueError, UnicodeEncodeError):
        return []
    items: list[tuple[str, Mapping[str, object]]] = []
    for member in parsed if isinstance(parsed, list) else ():
        if isinstance(member, tuple) and len(member) == 2 and isinstance(member[1], dict):
            value, params = member
            items.append((str(value), params))
    return items


def _sf_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _integer(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 15:
        return None
    return int(text)


def _number(text: str | None) -> float | None:
    """A non-negative finite decimal (``"1.5"``, ``"1700000000"``), else ``None``."""
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > 20 or not text.isascii() or not all(c.isdigit() or c == "." for c in text):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


_DURATION = re.compile(r"(?:(\d{1,6})h)?(?:(\d{1,6})m(?!s))?(?:(\d{1,9}(?:\.\d{1,9})?)s)?(?:(\d{1,9})ms)?")


def _duration(text: str | None) -> float | None:
    """A Go-style duration (``"1s"``, ``"6m0s"``, ``"1h2m3.5s"``, ``"20ms"``) in seconds, else ``None``."""
    if not text:
        return None
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600.0 + minutes * 60.0 + seconds + millis / 1000.0


def _boolean(text: str | None) -> bool | None:
    if text is None:
        return None
    word = text.strip().lower()
    return True if word == "true" else False if word == "false" else None
