"""Service config parsing (pure logic): A6 fields, name matching, caps, and the field named by each mistake."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.grpc import ServiceConfig
from integration_kit.grpc.config import parse_duration
from integration_kit.grpc.status import parse_pushback

RETRY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE", 8],
}


def test_a6_retry_policy_maps_onto_the_kits_retry_policy_and_budget() -> None:
    config = ServiceConfig.parse(
        {
            "methodConfig": [{"name": [{"service": "s.S"}], "timeout": "2.5s", "retryPolicy": RETRY}],
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        }
    )
    method = config.method("/s.S/Get")
    assert method.timeout == 2.5
    assert method.retry is not None
    assert (method.retry.max_attempts, method.retry.base_delay, method.retry.max_delay) == (4, 0.1, 1.0)
    assert method.retry.multiplier == 2.0
    assert method.retry.jitter == "full"  # A6: random(0, min(initial * multiplier**(n-1), max))
    assert method.retryable == {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert config.throttling is not None
    assert (config.throttling.max_tokens, config.throttling.token_ratio) == (10.0, 0.1)


def test_max_attempts_is_capped_at_five() -> None:
    config = ServiceConfig.parse({"methodConfig": [{"name": [{}], "retryPolicy": {**RETRY, "maxAttempts": 9}}]})
    assert config.method("/a.B/C").retry.max_attempts == 5  # type: ignore[union-attr]


def test_name_matching_is_grpcios_exact_then_service_then_default() -> None:
    config = ServiceConfig.parse(
        {
            "methodConfig": [
                {"name": [{"service": "s.S", "method": "Get"}], "timeout": "1s"},
                {"name": [{"service": "s.S"}], "timeout": "2s"},
                {"name": [{}], "timeout": "3s"},
            ]
        }
    )
    assert config.method("/s.S/Get").timeout == 1.0
    assert config.method("/s.S/Put").timeout == 2.0
    assert config.method("/t.T/Get").timeout == 3.0
    assert ServiceConfig.parse(None).method("/s.S/Get").timeout is None


def test_hedging_policy_is_read() -> None:
    config = ServiceConfig.parse(
        {
            "methodConfig": [
                {
                    "name": [{"service": "s.S"}],
                    "hedgingPolicy": {
                        "maxAttempts": 7,
                        "hedgingDelay": "0.05s",
                        "nonFatalStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )
    hedging = config.method("/s.S/Get").hedging
    assert hedging is not None
    assert (hedging.max_attempts, hedging.delay, hedging.non_fatal) == (5, 0.05, {grpc.StatusCode.UNAVAILABLE})


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"methodConfig": [{"retryPolicy": {**RETRY, "maxAttempts": 1}}]}, "methodConfig[0].retryPolicy.maxAttempts"),
        (
            {"methodConfig": [{"retryPolicy": {**RETRY, "initialBackoff": "1"}}]},
            "methodConfig[0].retryPolicy.initialBackoff",
        ),
        ({"methodConfig": [{"retryPolicy": {**RETRY, "maxBackoff": "0s"}}]}, "methodConfig[0].retryPolicy.maxBackoff"),
        (
            {"methodConfig": [{"retryPolicy": {**RETRY, "backoffMultiplier": "2"}}]},
            "methodConfig[0].retryPolicy.backoffMultiplier",
        ),
        (
            {"methodConfig": [{"retryPolicy": {**RETRY, "retryableStatusCodes": ["NOPE"]}}]},
            "methodConfig[0].retryPolicy.retryableStatusCodes[0]",
        ),
        (
            {"methodConfig": [{"retryPolicy": {**RETRY, "retryableStatusCodes": []}}]},
            "methodConfig[0].retryPolicy.retryableStatusCodes",
        ),
        (
            {"methodConfig": [{"retryPolicy": {k: v for k, v in RETRY.items() if k != "maxBackoff"}}]},
            "methodConfig[0].retryPolicy.maxBackoff",
        ),
        ({"methodConfig": [{"timeout": 5}]}, "methodConfig[0].timeout"),
        ({"methodConfig": [{"retryPolicy": RETRY, "hedgingPolicy": {"maxAttempts": 2}}]}, "methodConfig[0]"),
        (
            {"methodConfig": [{"hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "x"}}]},
            "methodConfig[0].hedgingPolicy.hedgingDelay",
        ),
        ({"methodConfig": [{"name": [{"method": "Get"}]}]}, "methodConfig[0].name[0].service"),
        ({"methodConfig": [{"name": [{}]}, {"name": [{}]}]}, "methodConfig[1].name[0]"),
        ({"retryThrottling": {"maxTokens": 0, "tokenRatio": 0.1}}, "retryThrottling.maxTokens"),
        ({"retryThrottling": {"maxTokens": 2000, "tokenRatio": 0.1}}, "retryThrottling.maxTokens"),
        ({"retryThrottling": {"maxTokens": 10}}, "retryThrottling.tokenRatio"),
        ({"methodConfig": {}}, "methodConfig"),
    ],
)
def test_bad_config_names_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ServiceConfig.parse(config)
    assert info.value.field == field


def test_bad_json_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        ServiceConfig.parse("{methodConfig")


def test_durations() -> None:
    assert parse_duration("t", "0.000000001s") == 1e-9
    for bad in ("1", "-1s", "1.5 s", 1.5, "1e3s"):
        with pytest.raises(ConfigurationError):
            parse_duration("t", bad)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        (["250"], 0.25),
        ([b"0"], 0.0),
        (["-1"], False),
        (["soon"], False),
        (["1.5"], False),
        (["1", "2"], False),
        (["99999999999"], False),
        ([" 10 "], 0.01),
    ],
)
def test_pushback_values(values: list[str | bytes], expected: float | bool | None) -> None:
    assert parse_pushback(values) == expected


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"methodConfg": []}, "methodConfg"),
        ({"retryThrotling": {}}, "retryThrotling"),
        ({"methodConfig": [{"name": [{}], "timout": "2s"}]}, "methodConfig[0].timout"),
        ({"methodConfig": [{"name": [{"servce": "s.S"}]}]}, "methodConfig[0].name[0].servce"),
        ({"methodConfig": [{"retryPolicy": {**RETRY, "maxAtempts": 4}}]}, "methodConfig[0].retryPolicy.maxAtempts"),
        (
            {"methodConfig": [{"hedgingPolicy": {"maxAttempts": 3, "hedgeDelay": "1s"}}]},
            "methodConfig[0].hedgingPolicy.hedgeDelay",
        ),
        ({"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1, "ratio": 1}}, "retryThrottling.ratio"),
    ],
)
def test_a_misspelt_key_at_any_level_is_refused_naming_it_and_the_valid_keys(
    config: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        ServiceConfig.parse(config)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: unknown key; expected one of ")
    valid = {"": "methodConfig", "timout": "timeout", "servce": "service", "maxAtempts": "maxAttempts"}
    listed = valid.get(field.rsplit(".", 1)[-1], valid[""] if "." not in field else "")
    assert listed in str(info.value)  # the valid keys of that level are listed


def test_a_misspelt_method_config_no_longer_parses_to_no_entries() -> None:
    with pytest.raises(ConfigurationError, match="methodConfig, retryThrottling"):
        ServiceConfig.parse('{"methodConfg": [{"name": [{}], "timeout": "1s"}]}')


def test_the_real_keys_the_kit_leaves_to_grpcio_are_accepted() -> None:
    config = ServiceConfig.parse(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "loadBalancingPolicy": "round_robin",
            "healthCheckConfig": {"serviceName": ""},
            "methodConfig": [
                {
                    "name": [{"service": "s.S", "method": "Get"}],
                    "timeout": "1s",
                    "waitForReady": True,
                    "maxRequestMessageBytes": 1024,
                    "maxResponseMessageBytes": "2048",
                },
                {
                    "name": [{"service": "s.S", "method": "Put"}],
                    "retryPolicy": {
                        "maxAttempts": 3,
                        "initialBackoff": "0.1s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                        "perAttemptRecvTimeout": "0.5s",
                    },
                },
            ],
        }
    )
    assert config.method("/s.S/Get").timeout == 1.0
    assert config.method("/s.S/Put").retry is not None
