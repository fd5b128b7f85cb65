"""The shared reconnect policy to the letter (pure logic, a seeded ``random.Random``, no clock, no socket): the close
code classes at every edge, the user's overrides, each refused setting's field and message, the handshake's retry
policy at the zero and large edges, and the first delay drawn exactly as ``uniform(0, first_delay)``."""

from __future__ import annotations

import random
from types import MappingProxyType
from typing import Any

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.websocket import CloseClass, ReconnectPolicy, classify_close, decide_reconnect
from integration_kit.websocket.reconnect import ReconnectDecision


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (999, CloseClass.RECONNECT),
        (1002, CloseClass.RECONNECT),
        (1004, CloseClass.RECONNECT),
        (1007, CloseClass.RECONNECT),
        (1009, CloseClass.RECONNECT),
        (3999, CloseClass.RECONNECT),
        (4000, CloseClass.PERMANENT),
        (4001, CloseClass.PERMANENT),
        (4998, CloseClass.PERMANENT),
        (4999, CloseClass.PERMANENT),
        (5000, CloseClass.RECONNECT),
    ],
)
def test_the_edges_of_the_default_classes(code: int, expected: CloseClass) -> None:
    assert classify_close(code) is expected
    assert classify_close(code, {}) is expected
    assert classify_close(code, {1: CloseClass.CLEAN}) is expected  # an override of another code changes nothing


def test_an_override_of_1006_also_covers_a_close_without_a_frame() -> None:
    policy = ReconnectPolicy(close_codes={1006: "permanent"})
    assert classify_close(None, policy.close_codes) is CloseClass.PERMANENT
    assert classify_close(1006, policy.close_codes) is CloseClass.PERMANENT
    assert classify_close(1000, policy.close_codes) is CloseClass.CLEAN
    assert classify_close(4500, {4500: CloseClass.CLEAN}) is CloseClass.CLEAN


def test_the_users_codes_are_read_as_numbers_and_classes_and_kept_read_only() -> None:
    policy = ReconnectPolicy(close_codes={"4001": "reconnect", 1000: CloseClass.PERMANENT, 4999: "clean"})
    assert dict(policy.close_codes) == {4001: CloseClass.RECONNECT, 1000: CloseClass.PERMANENT, 4999: CloseClass.CLEAN}
    assert isinstance(policy.close_codes, MappingProxyType)
    assert ReconnectPolicy().close_codes == {}
    assert ReconnectPolicy(close_codes=MappingProxyType({1011: "permanent"})).close_codes == {
        1011: CloseClass.PERMANENT
    }


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    *(
        ({name: bad}, name, f"ReconnectPolicy.{name} must be a finite number >= 0, got {bad!r}")
        for name in ("first_delay", "base_delay", "max_delay")
        for bad in (-0.001, float("inf"), float("nan"), True, "1", None)
    ),
    *(
        ({"multiplier": bad}, "multiplier", f"ReconnectPolicy.multiplier must be a number >= 1, got {bad!r}")
        for bad in (0.999, 0, True, "2", None)
    ),
    (
        {"jitter": "some"},
        "jitter",
        "ReconnectPolicy.jitter must be one of 'none', 'full', 'equal', 'decorrelated', got 'some'",
    ),
    *(
        ({"max_attempts": bad}, "max_attempts", f"ReconnectPolicy.max_attempts must be an integer >= 1, got {bad!r}")
        for bad in (0, -1, True, 2.0, "3")
    ),
    (
        {"close_codes": [(1000, "clean")]},
        "close_codes",
        "ReconnectPolicy.close_codes must be a table of close code = class, got [(1000, 'clean')]",
    ),
    *(
        ({"close_codes": {key: "clean"}}, "close_codes", f"ReconnectPolicy.close_codes: {key!r} is not a close code")
        for key in ("abc", True, 4001.0, None)
    ),
    *(
        (
            {"close_codes": {code: "clean"}},
            f"close_codes.{code}",
            f"ReconnectPolicy.close_codes: {code} is not a close code (1000-4999)",
        )
        for code in (999, 5000, 0)
    ),
    *(
        (
            {"close_codes": {4001: bad}},
            "close_codes.4001",
            f"ReconnectPolicy.close_codes.4001 must be 'clean', 'reconnect' or 'permanent', got {bad!r}",
        )
        for bad in ("sometimes", "CLEAN", None, ["clean"])
    ),
]


@pytest.mark.parametrize(("settings", "field", "message"), REFUSED)
def test_each_refused_setting_names_its_field_and_says_why(settings: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ReconnectPolicy(**settings)
    assert caught.value.field == field
    assert caught.value.message == message


def test_the_edges_of_each_setting_are_accepted() -> None:
    policy = ReconnectPolicy(
        first_delay=0, base_delay=0.0, max_delay=0, multiplier=1, jitter="decorrelated", max_attempts=1
    )
    assert (policy.first_delay, policy.multiplier, policy.max_attempts) == (0, 1, 1)
    for jitter in ("none", "full", "equal", "decorrelated"):
        assert ReconnectPolicy(jitter=jitter).jitter == jitter  # type: ignore[arg-type]
    assert ReconnectPolicy(close_codes={1000: "clean", 4999: "permanent"}).close_codes[4999] is CloseClass.PERMANENT


def test_from_mapping_takes_every_field_and_names_an_unknown_one() -> None:
    values = {
        "first_delay": 1.0,
        "base_delay": 0.5,
        "max_delay": 4.0,
        "multiplier": 3.0,
        "jitter": "equal",
        "max_attempts": 2,
        "close_codes": {"4001": "reconnect"},
    }
    policy = ReconnectPolicy.from_mapping(values)
    assert policy == ReconnectPolicy(1.0, 0.5, 4.0, 3.0, "equal", 2, {4001: CloseClass.RECONNECT})
    assert ReconnectPolicy.from_mapping({}) == ReconnectPolicy()
    with pytest.raises(ConfigurationError) as caught:
        ReconnectPolicy.from_mapping({"first_delay": 1.0, "retries": 3})
    assert caught.value.field == "retries"
    assert caught.value.message == "reconnect: unknown setting 'retries'"


def test_the_defaults_are_the_documented_ones() -> None:
    policy = ReconnectPolicy()
    assert (policy.first_delay, policy.base_delay, policy.max_delay, policy.multiplier) == (5.0, 2.0, 30.0, 2.0)
    assert (policy.jitter, policy.max_attempts) == ("full", 10)


def test_the_handshake_retry_policy_at_its_edges() -> None:
    zero = ReconnectPolicy(base_delay=0, max_delay=0).retry_policy()
    assert (zero.base_delay, zero.max_delay) == (1e-3, 1e-3)  # a zero backoff is the smallest RetryPolicy allows
    assert zero.max_retry_after == 60.0
    assert zero.retry_on_status == {408, 429, 500, 502, 503, 504}
    long = ReconnectPolicy(base_delay=3.0, max_delay=90.0, multiplier=1.5, jitter="none", max_attempts=7)
    retry = long.retry_policy()
    assert (retry.base_delay, retry.max_delay, retry.multiplier, retry.jitter) == (3.0, 90.0, 1.5, "none")
    assert retry.max_attempts == 7
    assert retry.max_retry_after == 90.0  # a Retry-After as long as the policy's own longest wait is honoured
    assert ReconnectPolicy(max_delay=60.0).retry_policy().max_retry_after == 60.0
    assert ReconnectPolicy().retry_policy().max_delay == 30.0


def test_the_first_delay_is_drawn_from_the_rng_given() -> None:
    policy = ReconnectPolicy(first_delay=4.0)
    for seed in range(5):
        expected = random.Random(seed).uniform(0.0, 4.0)
        decision = decide_reconnect(policy, 1011, random.Random(seed))
        assert decision == ReconnectDecision(True, expected, "close_code")
    assert decide_reconnect(ReconnectPolicy(first_delay=0.0), None, random.Random(1)).delay == 0.0


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated"])
def test_only_jitter_none_waits_the_first_delay_itself(jitter: str) -> None:
    policy = ReconnectPolicy(first_delay=2.0, jitter=jitter)  # type: ignore[arg-type]
    assert decide_reconnect(policy, 1012, random.Random(3)).delay == random.Random(3).uniform(0.0, 2.0)
    fixed = decide_reconnect(ReconnectPolicy(first_delay=2.0, jitter="none"), 1012, random.Random(3))
    assert fixed == ReconnectDecision(True, 2.0, "close_code")


def test_a_stop_is_exact() -> None:
    rng = random.Random(5)
    assert decide_reconnect(ReconnectPolicy(), 1001, rng) == ReconnectDecision(False, 0.0, "clean")
    assert decide_reconnect(ReconnectPolicy(), 4002, rng) == ReconnectDecision(False, 0.0, "permanent")
    policy = ReconnectPolicy(close_codes={1011: "clean", 1000: "reconnect"})
    assert decide_reconnect(policy, 1011, rng) == ReconnectDecision(False, 0.0, "clean")
    assert decide_reconnect(policy, 1000, rng).reconnect
    assert rng.random() == _after(5, 1)  # one draw only: the stops draw nothing


def _after(seed: int, draws: int) -> float:
    rng = random.Random(seed)
    for _ in range(draws):
        rng.uniform(0.0, 5.0)
    return rng.random()
