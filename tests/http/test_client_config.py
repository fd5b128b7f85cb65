"""ClientConfig validation and loading, auth from environment variables, Secret and redaction."""

from __future__ import annotations

import base64
import pickle
from pathlib import Path

import certifi
import pytest

from integration_kit import BasicAuth, BearerAuth, ClientConfig, HeaderAuth
from integration_kit.errors import ConfigurationError
from integration_kit.http.redact import Secret, redact_headers, redact_text, redact_url, secret_query_values
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, Limits, RetryPolicy, Timeouts

BASE = "https://api.partner.example/v2"


def test_defaults_are_safe() -> None:
    config = ClientConfig(name="partner", base_url=BASE)
    assert config.follow_redirects is False
    assert config.verify is True
    assert config.allow_insecure_http is False
    assert config.deadline == 30.0
    assert config.max_response_bytes == 10 * 1024 * 1024
    assert config.breaker == BreakerPolicy()
    assert config.budget == BudgetPolicy()
    assert config.idempotency_methods == frozenset()
    assert config.origin == ("https", "api.partner.example", 443)
    with pytest.raises(AttributeError):
        config.name = "other"  # type: ignore[misc]


def test_timeouts_accept_a_float_or_a_mapping() -> None:
    assert ClientConfig(name="p", base_url=BASE, timeouts=2.5).timeouts == Timeouts(2.5, 2.5, 2.5, 2.5)  # type: ignore[arg-type]
    assert ClientConfig(name="p", base_url=BASE, timeouts={"read": 4}).timeouts == Timeouts(read=4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "name"),
        ({"base_url": "ftp://partner.example"}, "absolute http"),
        ({"base_url": "/relative"}, "absolute http"),
        ({"base_url": "https://user:hunter2@partner.example"}, "must not hold credentials"),
        ({"base_url": "https://partner.example/?token=x"}, "query"),
        ({"base_url": "http://partner.example"}, "plain http"),
        ({"deadline": 0}, "deadline"),
        ({"max_response_bytes": 0}, "max_response_bytes"),
        ({"follow_redirects": "yes"}, "follow_redirects"),
        ({"retry": {"max_attempts": 2}}, "from_mapping"),
        ({"breaker": "on"}, "breaker"),
        ({"headers": {"X-Trace": "a\r\nb"}}, "CR"),
        ({"headers": {"Authorization": "Bearer literal"}}, "credential header"),
        ({"headers": {"Bad Name": "x"}}, "HTTP token"),
        ({"verify": "/no/such/ca.pem"}, "CA bundle"),
        ({"idempotency_methods": ["PO ST"]}, "HTTP token"),
        ({"auth": {"type": "magic"}}, "auth.type"),
    ],
)
def test_invalid_settings_are_clear_configuration_errors(overrides: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"name": "partner", "base_url": BASE, **overrides}
    with pytest.raises(ConfigurationError, match=message) as caught:
        ClientConfig(**values)  # type: ignore[arg-type]
    assert "hunter2" not in str(caught.value)


def test_verify_accepts_a_ca_bundle_path(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())  # a real PEM bundle: it is loaded at construction
    assert ClientConfig(name="p", base_url=BASE, verify=str(bundle)).verify == str(bundle)


def test_from_mapping_builds_nested_policies() -> None:
    config = ClientConfig.from_mapping(
        {
            "name": "payments",
            "base_url": BASE,
            "timeouts": 3,
            "retry": {"max_attempts": 5, "retry_on_status": [503]},
            "breaker": {"failure_threshold": 4},
            "budget": False,
            "limits": {"max_concurrent": 8},
            "auth": {"type": "header", "header": "X-Api-Key", "env": "PAYMENTS_KEY"},
            "idempotency_methods": ["post", "patch"],
            "redact_query_params": ["Sig"],
        }
    )
    assert config.timeouts == Timeouts(3, 3, 3, 3)
    assert config.retry == RetryPolicy(max_attempts=5, retry_on_status=frozenset({503}))
    assert config.breaker == BreakerPolicy(failure_threshold=4)
    assert config.budget is None
    assert config.limits == Limits(max_concurrent=8)
    assert config.auth == HeaderAuth(header="X-Api-Key", env="PAYMENTS_KEY")
    assert config.idempotency_methods == {"POST", "PATCH"}
    assert config.redact_query_params == {"sig"}
    with pytest.raises(ConfigurationError, match="unknown field"):
        ClientConfig.from_mapping({"name": "p", "base_url": BASE, "retries": 3})


def test_from_env_overrides_base_url_timeouts_deadline_and_attempts() -> None:
    env = {
        "PAYMENTS_BASE_URL": "https://staging.partner.example",
        "PAYMENTS_TIMEOUT": "4",
        "PAYMENTS_READ_TIMEOUT": "9",
        "PAYMENTS_DEADLINE": "12.5",
        "PAYMENTS_MAX_ATTEMPTS": "5",
    }
    config = ClientConfig.from_env("PAYMENTS", environ=env, base_url=BASE, retry={"base_delay": 0.5})
    assert config.name == "payments"
    assert config.base_url == "https://staging.partner.example"
    assert config.timeouts == Timeouts(connect=4, read=9, write=4, pool=4)
    assert config.deadline == 12.5
    assert (config.retry.max_attempts, config.retry.base_delay) == (5, 0.5)
    assert ClientConfig.from_env("PAYMENTS", environ={"PAYMENTS_DEADLINE": "none"}, base_url=BASE).deadline is None
    defaults = ClientConfig.from_env("payments_", environ={}, base_url=BASE)
    assert defaults == ClientConfig(name="payments", base_url=BASE)
    with pytest.raises(ConfigurationError, match="PAYMENTS_MAX_ATTEMPTS"):
        ClientConfig.from_env("PAYMENTS", environ={"PAYMENTS_MAX_ATTEMPTS": "many"}, base_url=BASE)


# -- auth ---------------------------------------------------------------------------------------------------------


def test_auth_reads_the_environment_once_into_a_secret() -> None:
    env = {"TOKEN": "t0k3n", "KEY": "k3y", "USER": "ada", "PASS": "pa:ss"}
    bearer = BearerAuth(env="TOKEN").load(env)
    assert bearer.header == "Authorization"
    assert bearer.value.reveal() == "Bearer t0k3n"
    assert HeaderAuth(header="X-Api-Key", env="KEY").load(env).value.reveal() == "k3y"
    basic = BasicAuth(username_env="USER", password_env="PASS").load(env).value.reveal()
    assert base64.b64decode(basic.removeprefix("Basic ")) == b"ada:pa:ss"
    assert "t0k3n" not in repr(bearer)


@pytest.mark.parametrize(
    ("auth", "env", "message"),
    [
        (BearerAuth(env="MISSING_TOKEN"), {}, "'MISSING_TOKEN' .* is not set"),
        (BearerAuth(env="EMPTY"), {"EMPTY": ""}, "'EMPTY' .* is empty"),
        (HeaderAuth(header="X-Key", env="NL"), {"NL": "se\ncret"}, "'NL' .* line break"),
        (BasicAuth(username_env="U", password_env="P"), {"U": "ada"}, "'P'"),
    ],
)
def test_a_missing_or_bad_variable_is_named_never_shown(auth: BearerAuth, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        auth.load(env)
    assert "se\ncret" not in str(caught.value)
    assert "ada" not in str(caught.value)


def test_auth_settings_validate_names() -> None:
    with pytest.raises(ConfigurationError, match="environment variable name"):
        BearerAuth(env="not a name")
    with pytest.raises(ConfigurationError, match="header name"):
        HeaderAuth(header="X Key", env="KEY")


def test_a_client_fails_at_construction_when_the_secret_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from integration_kit import ResilientClient

    monkeypatch.delenv("PARTNER_TOKEN_UNSET", raising=False)
    config = ClientConfig(name="p", base_url=BASE, auth=BearerAuth(env="PARTNER_TOKEN_UNSET"))
    with pytest.raises(ConfigurationError, match="PARTNER_TOKEN_UNSET"):
        ResilientClient(config)


# -- Secret and redaction -------------------------------------------------------------------------------------------


def test_secret_is_masked_everywhere_but_reveal() -> None:
    secret = Secret("hunter2")
    assert secret.reveal() == "hunter2"
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret]), repr({"k": secret})):
        assert "hunter2" not in text
    assert secret == Secret("hunter2")
    assert secret != Secret("hunter3")
    with pytest.raises(TypeError):
        pickle.dumps(secret)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/x", "https://a.example/x"),
        ("https://a.example/x?page=2&token=abc", "https://a.example/x?page=2&token=***"),
        (
            "https://a.example/x?api_key=1&Signature=2&X-Amz-Credential=3",
            "https://a.example/x?api_key=***&Signature=***&X-Amz-Credential=***",
        ),
        (
            "https://a.example/x?client_secret=s&password=p&auth=a",
            "https://a.example/x?client_secret=***&password=***&auth=***",
        ),
        ("https://user:pw@a.example/x?q=1", "https://a.example/x?q=1"),
        ("https://a.example/x?flag&access%5Ftoken=t#frag", "https://a.example/x?flag&access%5Ftoken=***#frag"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_with_configured_names() -> None:
    assert redact_url("https://a.example/?sig=1&page=2", ["sig"]) == "https://a.example/?sig=***&page=2"


def test_redact_headers() -> None:
    headers = {
        "Authorization": "Bearer x",
        "cookie": "a=b",
        "Set-Cookie": "s=1",
        "Proxy-Authorization": "Basic y",
        "X-Api-Key": "k",
        "X-Partner-Token": "t",
        "X-Custom-Cred": "c",
        "Content-Type": "application/json",
    }
    redacted = redact_headers(headers, ["x-custom-cred"])
    assert redacted == {name: "***" for name in headers} | {"Content-Type": "application/json"}
    assert redact_headers([("set-cookie", "a"), ("x-id", "1")]) == {"set-cookie": "***", "x-id": "1"}


def test_redact_text_and_secret_query_values() -> None:
    assert redact_text("echo: Bearer t0k and t0k", [Secret("t0k")]) == "echo: Bearer *** and ***"
    assert secret_query_values([("page", "1"), ("api_key", "k"), ("token", "")]) == ["k"]
