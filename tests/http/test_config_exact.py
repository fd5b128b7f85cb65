"""``ClientConfig`` (``integration_kit.http.config``), exactly: each setting's check with the message and the
``field`` it names (never a secret: a credential in the URL or a header is refused without being shown), the
provider profile's union, the quota pacer it builds, pickling, and the mapping and environment loaders.

Pure construction, no network (a Redis URL is only parsed). Each assertion pins one behaviour the mutation sweep
of issue 29 found unguarded; ``test_client_config.py`` holds the broader examples.
"""

from __future__ import annotations

import pickle
import socket
import ssl
from pathlib import Path
from types import MappingProxyType
from typing import Any

import certifi
import pytest

from integration_kit import BearerAuth, ClientConfig, ManualClock
from integration_kit.errors import ConfigurationError
from integration_kit.http.redact import SECRET_HEADERS
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, Limits, RetryPolicy, Timeouts
from integration_kit.policies.profiles import PROFILES
from integration_kit.policies.signals import DEFAULT_SIGNAL_PROFILE

BASE = "https://api.partner.example/v2"
LEAK = "hunter2-l34k"


def _error(**values: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        ClientConfig(**{"name": "p", "base_url": BASE, **values})
    assert LEAK not in f"{caught.value} {caught.value!r}"
    return caught.value


# -- fields -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a b", "tab\there", 5, None])
def test_the_name_is_a_printable_word(name: Any) -> None:
    error = _error(name=name)
    assert str(error) == f"ClientConfig.name must be a non-empty name without spaces, got {name!r}"
    assert error.field == "name"


def test_a_bad_timeouts_value_names_the_timeouts_field() -> None:
    error = _error(timeouts={"read": -1})
    assert str(error).startswith("ClientConfig.timeouts: ")
    assert error.field == "timeouts.read"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("retry", None, "must be a RetryPolicy, got NoneType"),
        ("retry", {"max_attempts": 2}, "must be a RetryPolicy, got dict"),
        ("limits", None, "must be a Limits, got NoneType"),
        ("breaker", "on", "must be a BreakerPolicy or None, got str"),
        ("budget", 1, "must be a BudgetPolicy or None, got int"),
    ],
)
def test_each_policy_must_be_its_class(name: str, value: Any, expected: str) -> None:
    error = _error(**{name: value})
    assert str(error) == f"ClientConfig.{name} {expected} (ClientConfig.from_mapping builds policies from mappings)"
    assert error.field == name


def test_breaker_and_budget_may_be_off_and_deadline_none() -> None:
    config = ClientConfig(name="p", base_url=BASE, breaker=None, budget=None, deadline=None)
    assert (config.breaker, config.budget, config.deadline) == (None, None, None)


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"deadline": 0}, "deadline", "ClientConfig.deadline must be a finite number > 0, got 0"),
        ({"max_response_bytes": 0}, "max_response_bytes", "ClientConfig.max_response_bytes must be an integer >= 1"),
        ({"quota_reserve": -1}, "quota_reserve", "ClientConfig.quota_reserve must be an integer >= 0, got -1"),
        ({"quota_store_env": "a b"}, "quota_store_env", "ClientConfig.quota_store_env must be the name of an env"),
        ({"quota_store_env": 5}, "quota_store_env", "must be the name of an environment variable, got 5"),
        ({"redact_query_params": "sig"}, "redact_query_params", "ClientConfig.redact_query_params must be a coll"),
        ({"follow_redirects": 1}, "follow_redirects", "ClientConfig.follow_redirects must be a bool, got 1"),
        ({"allow_insecure_http": "no"}, "allow_insecure_http", "ClientConfig.allow_insecure_http must be a bool"),
        ({"auth": {"type": "bearer"}}, "auth.env", "auth.env is required for a bearer auth"),
    ],
)
def test_each_scalar_setting_names_its_field(values: dict[str, Any], field: str, message: str) -> None:
    error = _error(**values)
    assert message in str(error)
    assert error.field == field


def test_the_smallest_limits_and_an_auth_table_are_accepted() -> None:
    config = ClientConfig(
        name="p",
        base_url=BASE,
        max_response_bytes=1,
        quota_reserve=0,
        quota_store_env="REDIS_URL",
        auth={"type": "bearer", "env": "T"},  # type: ignore[arg-type]
    )
    assert (config.max_response_bytes, config.quota_reserve, config.auth) == (1, 0, BearerAuth(env="T"))
    assert ClientConfig(name="p", base_url=BASE, max_response_bytes=None).max_response_bytes is None


# -- the base URL -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (5, "ClientConfig.base_url must be a string, got 5"),
        (f"https://api.partner.example:99999/?token={LEAK}", "is not a valid URL: 'https://api.partner.example:99999/"),
        ("ftp://partner.example", "must be an absolute http(s) URL, got 'ftp://partner.example'"),
        ("https:///path", "must be an absolute http(s) URL"),
        (f"https://user:{LEAK}@partner.example", "must not hold credentials ('https://partner.example')"),
        ("https://user@partner.example", "must not hold credentials"),
        (f"https://:{LEAK}@partner.example", "must not hold credentials"),
        ("https://partner.example/#frag", "must not have a query or fragment, got 'https://partner.example/#frag'"),
        (f"https://partner.example/?token={LEAK}", "must not have a query or fragment"),
        (
            "http://partner.example",
            "'http://partner.example' is plain http:// to a non-loopback host; use https:// "
            "(or set allow_insecure_http=True, never in production)",
        ),
    ],
)
def test_a_bad_base_url_is_shown_redacted(url: Any, problem: str) -> None:
    error = _error(base_url=url)
    assert problem in str(error)
    assert error.field == "base_url"


@pytest.mark.parametrize(
    "url", [f"https://partner.example/?partnerid={LEAK}", f"https://partner.example:99999/?partnerid={LEAK}"]
)
def test_a_refused_base_url_masks_the_users_own_secret_query_params(url: str) -> None:
    # Bug (session 33, the WebSocket config's sibling): the refusal masked only the usual names (token, key, ...),
    # not redact_query_params, which the config itself says are secret.
    error = _error(base_url=url, redact_query_params=["PartnerId"])
    assert LEAK not in str(error)
    assert "partnerid=***" in str(error)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost/x", "http://[::1]:9000"])
def test_plain_http_is_allowed_to_loopback(url: str) -> None:
    assert ClientConfig(name="p", base_url=url).base_url == url


def test_plain_http_elsewhere_only_when_allowed() -> None:
    config = ClientConfig(name="p", base_url="http://partner.example", allow_insecure_http=True)
    assert config.origin == ("http", "partner.example", 80)


def test_the_origin_is_scheme_lower_case_host_and_port() -> None:
    assert ClientConfig(name="p", base_url="https://API.Partner.example").origin == (
        "https",
        "api.partner.example",
        443,
    )
    assert ClientConfig(name="p", base_url="https://a.example:8443/x").origin == ("https", "a.example", 8443)


# -- headers ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message", "field"),
    [
        (["X-A"], "ClientConfig.headers must be a mapping, got ['X-A']", "headers"),
        ({5: "v"}, "ClientConfig.headers must have string names, got 5", "headers"),
        ({"X A": "v"}, "ClientConfig.headers.X A: 'X A' is not an HTTP token", "headers.X A"),
        ({"X-A": 5}, "ClientConfig.headers['X-A'] must be a str without CR, LF or NUL", "headers.X-A"),
        ({"X-A": f"{LEAK}\r"}, "ClientConfig.headers['X-A'] must be a str without CR, LF or NUL", "headers.X-A"),
        ({"X-A": f"{LEAK}\n"}, "ClientConfig.headers['X-A'] must be a str without CR, LF or NUL", "headers.X-A"),
        ({"X-A": f"{LEAK}\0"}, "ClientConfig.headers['X-A'] must be a str without CR, LF or NUL", "headers.X-A"),
    ],
)
def test_a_bad_header_names_itself_never_its_value(headers: Any, message: str, field: str) -> None:
    error = _error(headers=headers)
    assert str(error) == message
    assert error.field == field


@pytest.mark.parametrize("name", sorted(SECRET_HEADERS | {"AUTHORIZATION", "X-Api-Key"}))
def test_a_credential_header_is_refused_without_showing_it(name: str) -> None:
    error = _error(headers={name: f"Bearer {LEAK}"})
    assert str(error) == f"ClientConfig.headers[{name!r}] is a credential header: name an env var in auth= instead"
    assert error.field == f"headers.{name}"


@pytest.mark.parametrize("agent", ["ua\rX-Evil: 1", "ua\n", "ua\0", 7])
def test_a_user_agent_must_be_one_clean_line(agent: Any) -> None:
    error = _error(user_agent=agent)
    assert str(error) == f"ClientConfig.user_agent must be a string without CR, LF or NUL, got {agent!r}"
    assert error.field == "user_agent"


def test_headers_are_copied_and_read_only() -> None:
    given = {"X-Trace": "X1"}  # an X: the checks look for exactly CR, LF and NUL
    config = ClientConfig(name="p", base_url=BASE, headers=given, user_agent="X-Kit/1")
    given["X-Trace"] = "2"
    assert dict(config.headers) == {"X-Trace": "X1"}
    assert config.user_agent == "X-Kit/1"
    assert isinstance(config.headers, MappingProxyType)
    restored = pickle.loads(pickle.dumps(config))
    assert restored == config
    assert isinstance(restored.headers, MappingProxyType)
    assert dict(restored.headers) == {"X-Trace": "X1"}


# -- TLS ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("verify", ["/no/such/ca.pem", 5, None])
def test_verify_is_a_bool_or_an_existing_path(verify: Any) -> None:
    error = _error(verify=verify)
    assert str(error) == f"ClientConfig.verify must be a bool or the path of a CA bundle, got {verify!r}"
    assert error.field == "verify"


def test_a_file_that_is_not_a_bundle_is_refused_at_construction(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    error = _error(verify=str(bogus))
    assert str(error) == (
        f"ClientConfig.verify: {str(bogus)!r} is not a usable CA bundle or directory of PEM certificates "
        "(NO_CERTIFICATE_OR_CRL_FOUND)"
    )
    assert error.field == "verify"
    garbled = tmp_path / "garbled.pem"  # OpenSSL gives no reason for this one: the exception's name stands in
    garbled.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert str(_error(verify=str(garbled))).endswith("(SSLError)")


def test_a_path_that_cannot_be_read_as_a_bundle_is_refused_naming_the_error(tmp_path: Path) -> None:
    path = tmp_path / "ca.sock"  # exists, is no directory, and cannot be opened: an OSError without a reason
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        error = _error(verify=str(path))
    assert str(error).endswith("is not a usable CA bundle or directory of PEM certificates (OSError)")
    assert error.field == "verify"


def test_the_ssl_context_follows_verify(tmp_path: Path) -> None:
    assert ClientConfig(name="p", base_url=BASE).ssl_context() is True
    assert ClientConfig(name="p", base_url=BASE, verify=False).ssl_context() is False
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())
    from_file = ClientConfig(name="p", base_url=BASE, verify=str(bundle)).ssl_context()
    assert isinstance(from_file, ssl.SSLContext)
    assert from_file.get_ca_certs()
    from_dir = ClientConfig(name="p", base_url=BASE, verify=str(tmp_path)).ssl_context()
    assert isinstance(from_dir, ssl.SSLContext)
    assert from_dir.verify_mode == ssl.CERT_REQUIRED
    assert from_dir.get_ca_certs() == []  # the directory's certificates only (read lazily), not the system's


# -- methods, query names, profiles ---------------------------------------------------------------------------------


def test_methods_are_tokens_in_upper_case_and_query_names_lower_case() -> None:
    config = ClientConfig(
        name="p",
        base_url=BASE,
        idempotency_methods=["post", "Patch"],  # type: ignore[arg-type]
        redact_query_params=["Sig", "X-Token"],  # type: ignore[arg-type]
    )
    assert config.idempotency_methods == frozenset({"POST", "PATCH"})
    assert config.redact_query_params == frozenset({"sig", "x-token"})


@pytest.mark.parametrize(
    ("methods", "message", "field"),
    [
        (["POST", "P T"], "ClientConfig.idempotency_methods[1]: 'P T' is not an HTTP token", "idempotency_methods[1]"),
        ([""], "ClientConfig.idempotency_methods[0]: '' is not an HTTP token", "idempotency_methods[0]"),
        (["PÖST"], "ClientConfig.idempotency_methods[0]: 'PÖST' is not an HTTP token", "idempotency_methods[0]"),
        ("POST", "ClientConfig.idempotency_methods must be a collection of strings (write ['POST']), got 'POST'", None),
        (5, "ClientConfig.idempotency_methods must be a collection of strings, got 5", None),
        (["POST", 5], "ClientConfig.idempotency_methods must be a collection of strings, got ['POST', 5]", None),
    ],
)
def test_bad_methods_name_the_item(methods: Any, message: str, field: str | None) -> None:
    error = _error(idempotency_methods=methods)
    assert str(error) == message
    assert error.field == (field or ("idempotency_methods[1]" if isinstance(methods, list) else "idempotency_methods"))


def test_a_non_string_in_a_set_names_the_field() -> None:
    error = _error(redact_query_params=frozenset({5}))
    assert error.field == "redact_query_params"


def test_a_profile_adds_its_statuses_and_methods_and_never_removes_one() -> None:
    stripe = PROFILES["stripe"]
    retry = RetryPolicy(retry_on_status=frozenset({418}))
    config = ClientConfig(
        name="p", base_url=BASE, profile="stripe", retry=retry, idempotency_methods=frozenset({"PUT"})
    )
    assert config.retry.retry_on_status == stripe.retry_on_status | {418}
    assert config.idempotency_methods == {"PUT"} | stripe.idempotency_methods
    assert config.provider is stripe
    assert config.signals is stripe.reading
    plain = ClientConfig(name="p", base_url=BASE)
    assert (plain.provider, plain.signals) == (None, DEFAULT_SIGNAL_PROFILE)
    assert plain.retry == RetryPolicy()


def test_an_unknown_profile_lists_the_bundled_ones() -> None:
    error = _error(profile="acme")
    assert str(error) == f"unknown profile 'acme': the bundled profiles are {', '.join(sorted(PROFILES))}"
    assert error.field == "profile"


# -- the quota pacer ------------------------------------------------------------------------------------------------


def test_no_reserve_no_pacer_and_a_reserve_gives_one_named_for_the_client() -> None:
    clock = ManualClock(0.0)
    assert ClientConfig(name="p", base_url=BASE).quota_pacer(clock) is None
    pacer = ClientConfig(name="orders", base_url=BASE, quota_reserve=3).quota_pacer(clock, environ={})
    assert pacer is not None
    assert (pacer.reserve, pacer._name, pacer._clock, pacer._store) == (3, "orders", clock, None)


def test_a_shared_pacer_reads_its_redis_url_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ClientConfig(name="p", base_url=BASE, quota_reserve=1, quota_store_env="IK_QUOTA_REDIS")
    pacer = config.quota_pacer(ManualClock(0.0), environ={"IK_QUOTA_REDIS": f" redis://:{LEAK}@127.0.0.1:1/0 "})
    assert pacer is not None
    assert pacer._store is not None
    assert LEAK not in pacer._store.name
    assert "127.0.0.1:1" in pacer._store.name
    monkeypatch.setenv("IK_QUOTA_REDIS", "redis://127.0.0.1:2/0")
    from_process = config.quota_pacer(ManualClock(0.0))
    assert from_process is not None
    assert from_process._store is not None
    assert "127.0.0.1:2" in from_process._store.name


@pytest.mark.parametrize("environ", [{}, {"IK_QUOTA_REDIS": ""}, {"IK_QUOTA_REDIS": "  "}])
def test_a_shared_pacer_without_its_url_is_a_configuration_error(environ: dict[str, str]) -> None:
    config = ClientConfig(name="p", base_url=BASE, quota_reserve=1, quota_store_env="IK_QUOTA_REDIS")
    with pytest.raises(ConfigurationError) as caught:
        config.quota_pacer(ManualClock(0.0), environ=environ)
    assert str(caught.value) == "ClientConfig.quota_store_env: environment variable 'IK_QUOTA_REDIS' is not set"
    assert caught.value.field == "quota_store_env"


# -- the loaders ----------------------------------------------------------------------------------------------------


def test_from_mapping_switches_breaker_and_budget_and_builds_tables() -> None:
    base = {"name": "p", "base_url": BASE}
    on = ClientConfig.from_mapping({**base, "breaker": True, "budget": True})
    assert (on.breaker, on.budget) == (BreakerPolicy(), BudgetPolicy())
    for off in (False, None):
        config = ClientConfig.from_mapping({**base, "breaker": off, "budget": off})
        assert (config.breaker, config.budget) == (None, None)
    built = ClientConfig.from_mapping(
        {**base, "budget": {"token_ratio": 0.5}, "limits": {"max_concurrent": 2}, "redact_query_params": ["Sig"]}
    )
    assert (built.budget, built.limits) == (BudgetPolicy(token_ratio=0.5), Limits(max_concurrent=2))
    assert built.redact_query_params == {"sig"}
    assert ClientConfig.from_mapping({**base, "auth": BearerAuth(env="T")}).auth == BearerAuth(env="T")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"retry": {"max_attempts": "x"}}, "retry.max_attempts"),
        ({"limits": {"max_concurrent": "x"}}, "limits.max_concurrent"),
        ({"breaker": {"failure_threshold": "x"}}, "breaker.failure_threshold"),
        ({"budget": {"token_ratio": "x"}}, "budget.token_ratio"),
        ({"auth": {"type": "nope"}}, "auth.type"),
        ({"idempotency_methods": "POST"}, "idempotency_methods"),
        ({"redact_query_params": [1]}, "redact_query_params[0]"),
        ({"retries": 3}, "retries"),
    ],
)
def test_from_mapping_names_the_field_under_its_table(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_mapping({"name": "p", "base_url": BASE, **values})
    assert caught.value.field == field


def test_from_env_reads_each_variable() -> None:
    env = {
        "PAY_BASE_URL": "https://pay.example",
        "PAY_CONNECT_TIMEOUT": " 1.5 ",
        "PAY_WRITE_TIMEOUT": "2",
        "PAY_POOL_TIMEOUT": "3",
        "PAY_READ_TIMEOUT": "",
        "PAY_DEADLINE": " 40 ",
        "PAY_MAX_ATTEMPTS": "7",
    }
    config = ClientConfig.from_env("pay__", environ=env, base_url=BASE, timeouts={"read": 9})
    assert (config.name, config.base_url, config.deadline) == ("pay", "https://pay.example", 40.0)
    assert config.timeouts == Timeouts(connect=1.5, read=9, write=2, pool=3)
    assert config.retry.max_attempts == 7
    assert ClientConfig.from_env("PAY", environ={}, name="given", base_url=BASE).name == "given"


@pytest.mark.parametrize("word", ["none", "off", " NONE ", "Off"])
def test_from_env_a_deadline_of_none_or_off_removes_it(word: str) -> None:
    assert ClientConfig.from_env("PAY", environ={"PAY_DEADLINE": word}, base_url=BASE).deadline is None


def test_from_env_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IKTEST_BASE_URL", "https://from-env.example")
    assert ClientConfig.from_env("IKTEST", base_url=BASE).base_url == "https://from-env.example"


@pytest.mark.parametrize("name", ["PAY_TIMEOUT", "PAY_READ_TIMEOUT", "PAY_DEADLINE", "PAY_MAX_ATTEMPTS"])
def test_from_env_a_bad_number_names_the_variable(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_env("PAY", environ={name: "1.5x"}, base_url=BASE)
    assert str(caught.value) == f"environment variable {name!r} must be a number, got '1.5x'"


def test_from_env_strips_only_underscores_from_the_prefix() -> None:
    config = ClientConfig.from_env("tax_", environ={"TAX_DEADLINE": "off"}, base_url=BASE)
    assert (config.name, config.deadline) == ("tax", None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"retry": 5}, "ClientConfig.retry: expected a mapping or a RetryPolicy, got int"),
        ({"limits": [1]}, "ClientConfig.limits: expected a mapping or a Limits, got list"),
        ({"breaker": "on"}, "ClientConfig.breaker: expected a mapping or a BreakerPolicy, got str"),
        ({"budget": 2}, "ClientConfig.budget: expected a mapping or a BudgetPolicy, got int"),
        # the table's types are checked first (check_table), before the loader's own conversion
        ({"idempotency_methods": "POST"}, "ClientConfig.idempotency_methods must be an array of strings, got 'POST'"),
        ({"redact_query_params": ["a", 1]}, "ClientConfig.redact_query_params[1] must be a string, got 1"),
    ],
)
def test_from_mapping_names_the_client_setting(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_mapping({"name": "p", "base_url": BASE, **values})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("prefix", ["", "_", "__"])
def test_from_env_needs_a_prefix(prefix: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_env(prefix, environ={}, base_url=BASE)
    assert str(caught.value) == "ClientConfig.from_env: the prefix must not be empty"
