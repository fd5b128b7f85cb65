"""Service config reading to the letter (pure logic): every mistake's ``field`` and message, the bounds each
check draws (``maxAttempts`` 2, ``backoffMultiplier`` 1, ``maxTokens`` 1000), the defaults of an absent field,
and every A6 value carried into the kit's policies (multiplier, pushback cap, ``maxBackoff`` below the initial
one, hedging defaults)."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.grpc import ServiceConfig
from integration_kit.grpc.config import MAX_PUSHBACK_WAIT, HedgingPolicy, Idempotency, MethodConfig
from integration_kit.policies.hedging import HedgePolicy

RETRY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
AT = "methodConfig[0]"
RP = f"{AT}.retryPolicy"
HP = f"{AT}.hedgingPolicy"


def retry(**changes: Any) -> dict[str, Any]:
    return {"methodConfig": [{"retryPolicy": {**RETRY, **changes}}]}


def hedging(policy: Any) -> dict[str, Any]:
    return {"methodConfig": [{"hedgingPolicy": policy}]}


def without(name: str) -> dict[str, Any]:
    return {"methodConfig": [{"retryPolicy": {k: v for k, v in RETRY.items() if k != name}}]}


MISTAKES: list[tuple[Any, str, str]] = [
    ([], "", "service config must be an object, got list"),
    ({"methodConfig": {}}, "methodConfig", "methodConfig must be a list, got dict"),
    ({"methodConfig": [5]}, AT, f"{AT} must be an object, got int"),
    ({"methodConfig": [{"name": {}}]}, f"{AT}.name", f"{AT}.name must be a list, got dict"),
    ({"methodConfig": [{"name": ["s.S"]}]}, f"{AT}.name[0]", f"{AT}.name[0] must be an object, got str"),
    (
        {"methodConfig": [{"name": [{"service": 5}]}]},
        f"{AT}.name[0]",
        f"{AT}.name[0]: service and method must be strings",
    ),
    (
        {"methodConfig": [{"name": [{"service": "s.S", "method": 5}]}]},
        f"{AT}.name[0]",
        f"{AT}.name[0]: service and method must be strings",
    ),
    (
        {"methodConfig": [{"name": [{"method": "Get"}]}]},
        f"{AT}.name[0].service",
        f"{AT}.name[0]: a method name needs its service",
    ),
    (
        {"methodConfig": [{"name": [{"service": "s.S"}, {"service": "s.S"}]}]},
        f"{AT}.name[1]",
        f"{AT}.name[1]: duplicate method name ('s.S', '')",
    ),
    ({"methodConfig": [{"timeout": "0s"}]}, f"{AT}.timeout", f"{AT}.timeout must be > 0s, got '0s'"),
    ({"methodConfig": [{"timeout": 5}]}, f"{AT}.timeout", f"{AT}.timeout must be a duration such as '0.5s', got 5"),
    (
        {"methodConfig": [{"retryPolicy": RETRY, "hedgingPolicy": {"maxAttempts": 2}}]},
        AT,
        f"{AT}: retryPolicy and hedgingPolicy exclude each other (gRFC A6)",
    ),
    ({"methodConfig": [{"retryPolicy": []}]}, RP, f"{RP} must be an object, got list"),
    *(
        (without(name), f"{RP}.{name}", f"{RP}.{name} is required (gRFC A6)")
        for name in ("maxAttempts", "initialBackoff", "maxBackoff", "backoffMultiplier", "retryableStatusCodes")
    ),
    *(
        (retry(maxAttempts=bad), f"{RP}.maxAttempts", f"{RP}.maxAttempts must be an integer > 1, got {bad!r}")
        for bad in (1, 0, True, 2.5, "3")
    ),
    *(
        (
            retry(**{name: "1"}),
            f"{RP}.{name}",
            f"{RP}.{name} must be a duration such as '0.5s', got '1'",
        )
        for name in ("initialBackoff", "maxBackoff")
    ),
    *(
        (retry(**{name: "0s"}), f"{RP}.{name}", f"{RP}.{name} must be > 0s, got '0s'")
        for name in ("initialBackoff", "maxBackoff")
    ),
    (retry(initialBackoff="0.0s"), f"{RP}.initialBackoff", f"{RP}.initialBackoff must be > 0s, got '0.0s'"),
    *(
        (
            retry(backoffMultiplier=bad),
            f"{RP}.backoffMultiplier",
            f"{RP}.backoffMultiplier must be a number, got {bad!r}",
        )
        for bad in ("2", True, float("inf"), float("nan"), None)
    ),
    *(
        (
            retry(backoffMultiplier=bad),
            f"{RP}.backoffMultiplier",
            f"{RP}.backoffMultiplier must be >= 1 for the kit's backoff, got {bad!r}",
        )
        for bad in (0.99, 0, -2)
    ),
    (
        retry(retryableStatusCodes="UNAVAILABLE"),
        f"{RP}.retryableStatusCodes",
        f"{RP}.retryableStatusCodes must be a list, got str",
    ),
    (
        retry(retryableStatusCodes=[]),
        f"{RP}.retryableStatusCodes",
        f"{RP}.retryableStatusCodes must not be empty (gRFC A6)",
    ),
    *(
        (
            retry(retryableStatusCodes=["UNAVAILABLE", bad]),
            f"{RP}.retryableStatusCodes[1]",
            f"{RP}.retryableStatusCodes[1] is not a gRPC status code, got {bad!r}",
        )
        for bad in ("NOPE", "OK", 0, 17, True, 14.0, None)
    ),
    (hedging([]), HP, f"{HP} must be an object, got list"),
    (hedging({"hedgingDelay": "1s"}), f"{HP}.maxAttempts", f"{HP}.maxAttempts is required (gRFC A6)"),
    (hedging({"maxAttempts": 1}), f"{HP}.maxAttempts", f"{HP}.maxAttempts must be an integer > 1, got 1"),
    (
        hedging({"maxAttempts": 2, "hedgingDelay": 1}),
        f"{HP}.hedgingDelay",
        f"{HP}.hedgingDelay must be a duration such as '0.5s', got 1",
    ),
    (
        hedging({"maxAttempts": 2, "nonFatalStatusCodes": "UNAVAILABLE"}),
        f"{HP}.nonFatalStatusCodes",
        f"{HP}.nonFatalStatusCodes must be a list, got str",
    ),
    (
        hedging({"maxAttempts": 2, "nonFatalStatusCodes": ["NOPE"]}),
        f"{HP}.nonFatalStatusCodes[0]",
        f"{HP}.nonFatalStatusCodes[0] is not a gRPC status code, got 'NOPE'",
    ),
    ({"retryThrottling": []}, "retryThrottling", "retryThrottling must be an object, got list"),
    *(
        (
            {"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1, name: bad}},
            f"retryThrottling.{name}",
            f"retryThrottling.{name} must be a number > 0, got {bad!r}",
        )
        for name in ("maxTokens", "tokenRatio")
        for bad in (0, -1, True, "5", float("inf"), None)
    ),
    (
        {"retryThrottling": {"maxTokens": 10}},
        "retryThrottling.tokenRatio",
        "retryThrottling.tokenRatio must be a number > 0, got None",
    ),
    (
        {"retryThrottling": {"maxTokens": 1000.5, "tokenRatio": 0.1}},
        "retryThrottling.maxTokens",
        "retryThrottling.maxTokens must be <= 1000 (gRFC A6), got 1000.5",
    ),
]


@pytest.mark.parametrize(("config", "field", "message"), MISTAKES)
def test_each_mistake_names_its_field_and_says_what_is_wrong(config: Any, field: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ServiceConfig.parse(config)
    assert info.value.field == field
    assert info.value.message == message
    with pytest.raises(ConfigurationError) as again:  # the same from the JSON text
        ServiceConfig.parse(json.dumps(config))
    assert (again.value.field, again.value.message) == (field, message)


def test_bad_json_says_so() -> None:
    with pytest.raises(ConfigurationError) as info:
        ServiceConfig.parse("{methodConfig")
    assert info.value.message.startswith("service config: not valid JSON (Expecting property name")
    assert info.value.__cause__ is None


def test_the_bounds_themselves_are_accepted() -> None:
    config = ServiceConfig.parse(
        {
            "methodConfig": [{"retryPolicy": {**RETRY, "maxAttempts": 2, "backoffMultiplier": 1}}],
            "retryThrottling": {"maxTokens": 1000, "tokenRatio": 0.001},
        }
    )
    policy = config.method("/a.B/C").retry
    assert policy is not None
    assert (policy.max_attempts, policy.multiplier) == (2, 1.0)
    assert config.throttling is not None
    assert (config.throttling.max_tokens, config.throttling.token_ratio) == (1000.0, 0.001)


def test_every_a6_retry_value_reaches_the_kits_policy() -> None:
    config = ServiceConfig.parse(
        retry(
            maxAttempts=3,
            initialBackoff="2s",
            maxBackoff="0.5s",
            backoffMultiplier=1.5,
            retryableStatusCodes=["unavailable", 8, "ABORTED"],
        )
    )
    method = config.method("/a.B/C")
    policy = method.retry
    assert policy is not None
    assert (policy.max_attempts, policy.base_delay, policy.multiplier) == (3, 2.0, 1.5)
    assert policy.max_delay == 2.0  # a maxBackoff below initialBackoff never shortens the first wait
    assert policy.jitter == "full"
    assert policy.max_retry_after == MAX_PUSHBACK_WAIT == 300.0
    assert method.retryable == {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
    assert method.hedging is None
    assert config.throttling is None


def test_hedging_defaults_and_its_race() -> None:
    config = ServiceConfig.parse(hedging({"maxAttempts": 3}))
    method = config.method("/a.B/C")
    assert method.hedging == HedgingPolicy(3, 0.0, frozenset())
    assert method.retry is None
    assert method.retryable == frozenset()
    policy = HedgingPolicy(4, 0.25, frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL}))
    assert policy.race == HedgePolicy(4, 0.25, frozenset({14, 13}))


def test_an_entry_without_a_name_or_with_no_names_is_the_default() -> None:
    for entry in ({"timeout": "1s"}, {"name": [], "timeout": "1s"}, {"name": [{"method": ""}], "timeout": "1s"}):
        config = ServiceConfig.parse({"methodConfig": [entry]})
        assert config.method("/any.Service/Any").timeout == 1.0
        assert list(config.entries) == [("", "")]


def test_a_method_is_found_with_or_without_its_leading_slash() -> None:
    config = ServiceConfig.parse(
        {
            "methodConfig": [
                {"name": [{"service": "s.S", "method": "Get"}, {"service": "t.T"}], "timeout": "1s"},
            ]
        }
    )
    assert config.method("s.S/Get").timeout == 1.0
    assert config.method("/t.T/Put").timeout == 1.0
    assert config.method("/s.S/Put") == MethodConfig()
    assert config.method("/s.S/Put").timeout is None


def test_the_source_is_kept_for_grpcio() -> None:
    text = '{"methodConfig": [{"name": [{}], "timeout": "1s"}]}'
    assert ServiceConfig.parse(text).source == text
    mapping = {"methodConfig": [{"name": [{}], "timeout": "2s"}]}
    assert json.loads(ServiceConfig.parse(mapping).source) == mapping
    assert ServiceConfig.parse(None).source == "{}"
    assert ServiceConfig().source == "{}"


def test_idempotency_levels() -> None:
    assert Idempotency("NO_SIDE_EFFECTS").safe
    assert Idempotency("IDEMPOTENT").safe
    assert not Idempotency("IDEMPOTENCY_UNKNOWN").safe


def test_a_hedged_method_keeps_its_deadline() -> None:
    config = ServiceConfig.parse(
        {"methodConfig": [{"name": [{}], "timeout": "1.5s", "hedgingPolicy": {"maxAttempts": 2}}]}
    )
    assert config.method("/a.B/C").timeout == 1.5


def test_only_the_leading_slash_is_dropped_from_a_method_name() -> None:
    config = ServiceConfig.parse({"methodConfig": [{"name": [{"service": "Xsvc.V1"}], "timeout": "1s"}]})
    assert config.method("/Xsvc.V1/Get").timeout == 1.0
    assert config.method("/svc.V1/Get").timeout is None
