"""The pure parts of the WebSocket driver: close codes, the reconnect decision, sequence tracking, and the
configuration's checks (bad input named by field)."""

from __future__ import annotations

import random

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.websocket import (
    CloseClass,
    ReconnectPolicy,
    SequenceTracker,
    SeqVerdict,
    WebSocketConfig,
    classify_close,
    decide_reconnect,
    json_field,
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (1000, CloseClass.CLEAN),
        (1001, CloseClass.CLEAN),
        (None, CloseClass.RECONNECT),
        (1006, CloseClass.RECONNECT),
        (1011, CloseClass.RECONNECT),
        (1012, CloseClass.RECONNECT),
        (1013, CloseClass.RECONNECT),
        (1003, CloseClass.PERMANENT),
        (1008, CloseClass.PERMANENT),
        (4000, CloseClass.PERMANENT),
        (4999, CloseClass.PERMANENT),
        (3000, CloseClass.RECONNECT),
    ],
)
def test_close_codes_are_classified(code: int | None, expected: CloseClass) -> None:
    assert classify_close(code) is expected


def test_the_users_mapping_overrides_the_defaults() -> None:
    policy = ReconnectPolicy(close_codes={4001: "reconnect", 1001: CloseClass.RECONNECT, "1013": "permanent"})
    assert classify_close(4001, policy.close_codes) is CloseClass.RECONNECT
    assert classify_close(1001, policy.close_codes) is CloseClass.RECONNECT
    assert classify_close(1013, policy.close_codes) is CloseClass.PERMANENT
    assert classify_close(4002, policy.close_codes) is CloseClass.PERMANENT


def test_the_first_reconnect_is_jittered_within_first_delay() -> None:
    policy = ReconnectPolicy(first_delay=5.0)
    rng = random.Random(7)
    delays = [decide_reconnect(policy, 1012, rng).delay for _ in range(2000)]
    assert all(0.0 <= d <= 5.0 for d in delays)
    assert 2.3 < sum(delays) / len(delays) < 2.7  # uniform: mean 2.5
    assert decide_reconnect(ReconnectPolicy(first_delay=3.0, jitter="none"), 1006, rng).delay == 3.0


def test_clean_and_permanent_closes_do_not_reconnect() -> None:
    rng = random.Random(1)
    assert decide_reconnect(ReconnectPolicy(), 1000, rng).reason == "clean"
    decision = decide_reconnect(ReconnectPolicy(), 1008, rng)
    assert (decision.reconnect, decision.reason) == (False, "permanent")


def test_the_handshake_retry_policy_is_the_reconnect_backoff() -> None:
    retry = ReconnectPolicy(
        base_delay=0.5, max_delay=8.0, multiplier=3.0, jitter="equal", max_attempts=4
    ).retry_policy()
    assert (retry.base_delay, retry.max_delay, retry.multiplier, retry.jitter, retry.max_attempts) == (
        0.5,
        8.0,
        3.0,
        "equal",
        4,
    )
    assert {429, 503} <= retry.retry_on_status
    assert retry.respect_retry_after


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"first_delay": -1}, "first_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": "some"}, "jitter"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"close_codes": {999: "clean"}}, "close_codes.999"),
        ({"close_codes": {4001: "sometimes"}}, "close_codes.4001"),
    ],
)
def test_a_bad_reconnect_setting_names_its_field(settings: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ReconnectPolicy(**settings)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_an_unknown_reconnect_key_is_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ReconnectPolicy.from_mapping({"first_dealy": 1})
    assert caught.value.field == "first_dealy"


def test_sequence_tracking() -> None:
    tracker = SequenceTracker()
    assert [tracker.observe(n) for n in (5, 6, 6, 4, 9, 10)] == [
        SeqVerdict.FIRST,
        SeqVerdict.NEXT,
        SeqVerdict.DUPLICATE,
        SeqVerdict.DUPLICATE,
        SeqVerdict.GAP,
        SeqVerdict.NEXT,
    ]
    assert tracker.last == 10


def test_json_field_reads_an_integer_field_only() -> None:
    seq = json_field("seq")
    assert seq('{"seq": 3}') == 3
    assert seq(b'{"seq": 4}') == 4
    assert seq('{"seq": true}') is None
    assert seq('{"seq": "3"}') is None
    assert seq("[1]") is None
    assert seq("not json") is None


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"url": "ws://example.com/feed"}, "url"),
        ({"url": "http://127.0.0.1/feed"}, "url"),
        ({"url": "wss:///feed"}, "url"),
        ({"ping_interval": 0}, "ping_interval"),
        ({"stale_after": -1}, "stale_after"),
        ({"open_timeout": None}, "open_timeout"),
        ({"outgoing_limit": 0}, "outgoing_limit"),
        ({"outgoing": "drop"}, "outgoing"),
        ({"name": ""}, "name"),
        ({"sequence": ""}, "sequence"),
        ({"subscribe": (1,)}, "subscribe"),
    ],
)
def test_a_bad_config_names_its_field(settings: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"url": "ws://127.0.0.1:1/feed", **settings}
    with pytest.raises(ConfigurationError) as caught:
        WebSocketConfig(**values)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_tls_is_required_except_on_loopback_or_by_opt_in() -> None:
    assert WebSocketConfig("ws://localhost:8080/feed").url.startswith("ws://")
    assert WebSocketConfig("wss://feed.example.com/prices").url.startswith("wss://")
    assert WebSocketConfig("ws://feed.example.com/x", allow_insecure=True).allow_insecure
    with pytest.raises(ConfigurationError, match=r"wss://"):
        WebSocketConfig("ws://feed.example.com/prices?token=abc")


def test_a_refused_url_does_not_show_its_query_secret() -> None:
    with pytest.raises(ConfigurationError) as caught:
        WebSocketConfig("ws://feed.example.com/prices?token=canary-url-secret")
    assert "canary-url-secret" not in str(caught.value)
