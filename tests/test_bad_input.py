"""Bad configuration and CLI misuse: a ConfigurationError naming its own field, or exit 2 with one line.

Each example here was found by an adversarial pass (issue 10, item 8) and raised something else before: a
TypeError, AttributeError, UnicodeDecodeError or ssl.SSLError, a NaN accepted, a traceback or an out-of-memory
crash from the CLI. The hypothesis tests then try every kind of value at the same doors.
"""

from __future__ import annotations

import argparse
import math
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_kit import ClientConfig
from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli import app as cli
from integration_kit.playbook.kinds.http.spec import IntegrationSpec, load_integration
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, Limits, RetryPolicy, Timeouts, build
from integration_kit.sim.scenarios import Scenario, load_scenario

BASE = {"name": "partner", "base_url": "https://api.partner.example"}


# -- ClientConfig: each bad value is a ConfigurationError naming its own field ---------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"timeouts": "abc"}, "ClientConfig.timeouts"),
        ({"timeouts": [1, 2]}, "ClientConfig.timeouts"),
        ({"timeouts": {"connect": "a"}}, "Timeouts.connect"),
        ({"retry": 5}, "ClientConfig.retry"),
        ({"limits": []}, "ClientConfig.limits"),
        ({"breaker": "on"}, "ClientConfig.breaker"),
        ({"retry": {"retry_on_status": 5}}, "RetryPolicy.retry_on_status"),
        ({"retry": {"retry_on_status": "503"}}, "RetryPolicy.retry_on_status"),
        ({"idempotency_methods": "POST"}, "ClientConfig.idempotency_methods"),
        ({"redact_query_params": 7}, "ClientConfig.redact_query_params"),
        ({"deadline": math.nan}, "ClientConfig.deadline"),
        ({"auth": {"type": "bearer", "env": "TOKEN", "token": "x"}}, "auth.token: unknown field"),
    ],
)
def test_a_bad_client_setting_names_its_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=field.replace("(", r"\(").replace(")", r"\)")):
        ClientConfig.from_mapping({**BASE, **values})


def test_a_bad_timeouts_argument_is_a_configuration_error_not_a_type_error() -> None:
    with pytest.raises(ConfigurationError, match=r"ClientConfig\.timeouts"):
        ClientConfig(**BASE, timeouts="abc")  # type: ignore[arg-type]


def test_a_lone_method_string_is_named_as_idempotency_methods_not_base_url() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClientConfig(**BASE, idempotency_methods="POST")  # type: ignore[arg-type]
    assert "idempotency_methods" in str(caught.value)
    assert "base_url" not in str(caught.value)
    assert "['POST']" in str(caught.value)  # the message says how to write it


def test_a_verify_file_that_is_not_pem_fails_at_construction(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("this is not a certificate\n")
    with pytest.raises(ConfigurationError, match=r"ClientConfig\.verify"):
        ClientConfig(**BASE, verify=str(bundle))


def test_an_auth_table_lists_its_valid_fields() -> None:
    with pytest.raises(ConfigurationError, match=r"expected one of env, type\)"):
        ClientConfig.from_mapping({**BASE, "auth": {"type": "bearer", "env": "TOKEN", "header": "X"}})


def test_build_names_the_field_it_was_given() -> None:
    with pytest.raises(ConfigurationError, match=r"spec\.retry: expected a mapping or a RetryPolicy, got int"):
        build(RetryPolicy, 5, field="spec.retry")  # type: ignore[arg-type]


# -- specs: bad values and files ----------------------------------------------------------------------------------


def _spec(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "partner",
        "description": "a partner",
        "base_url": "https://api.partner.example",
        "scenarios": ["steady"],
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"fallback": {"kind": "static", "description": 5}}, "fallback"),
        ({"exercise": {"rate": math.nan}}, "exercise"),
        ({"exercise": {"rate": math.inf}}, "exercise"),
        ({"exercise": {"rate": 1e12}}, "exercise"),
        ({"exercise": {"duration": math.nan}}, "exercise"),
        ({"exercise": {"workers": 10**9}}, "exercise"),
    ],
)
def test_a_bad_spec_value_is_a_configuration_error_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=f"<inline>: {field}"):
        IntegrationSpec.from_mapping(_spec(**overrides))


def test_a_spec_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "partner.toml"
    path.write_bytes(b'name = "partner"\ndescription = "caf\xe9"\n')
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        load_integration(path)


def test_a_scenario_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "odd.toml"
    path.write_bytes(b"name = '\xff\xfe'\n")
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        load_scenario(path)


# -- the CLI: misuse exits 2 with one line, no traceback; sizes are bounded --------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "--scenario", "brownout", "--rate", "nan"],
        ["simulate", "--scenario", "brownout", "--rate", "-1"],
        ["simulate", "--scenario", "brownout", "--rate", "1e12"],
        ["simulate", "--scenario", "brownout", "--workers", "-1"],
        ["simulate", "--scenario", "brownout", "--duration", "1e308"],
        ["simulate", "--scenario", "brownout", "--rate", "inf"],
        ["simulate", "--scenario", "brownout", "--seed", "x"],
        ["simulate", "--scenario", "brownout", "--rate", "90000"],  # 90,000/s x 180 s: above the bound
        ["simulate", "--scenario", "no-such-scenario"],
        ["serve", "--scenario", "brownout", "--port", "99999"],
        ["serve", "--scenario", "brownout", "--time-scale", "0"],
        ["run", "payments", "--duration", "nan"],
        ["check", "no-such-integration"],
        ["no-such-command"],
        [],
    ],
)
def test_cli_misuse_exits_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own exit, through our one-line error()
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert err.startswith("integration-kit")


def test_an_events_file_that_cannot_be_written_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-dir" / "events.csv"
    code = cli.main(["simulate", "--scenario", "steady", "--rate", "5", "--duration", "2", "--events", str(target)])
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


# -- fuzzing: every value at the same doors -----------------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(string.ascii_lowercase + "_", max_size=12), inner, max_size=4),
    ),
    max_leaves=12,
)


def _tables(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Mappings whose keys are mostly real field names (so validation gets past the unknown-key check)."""
    return st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=8)), _VALUES, max_size=6)


_CLIENT_KEYS = [
    "timeouts",
    "deadline",
    "retry",
    "budget",
    "breaker",
    "limits",
    "auth",
    "headers",
    "user_agent",
    "verify",
    "idempotency_methods",
    "max_response_bytes",
    "follow_redirects",
    "allow_insecure_http",
    "redact_query_params",
    "profile",
    "quota_reserve",
    "quota_store_env",
]
_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(_tables(_CLIENT_KEYS))
def test_client_config_from_any_mapping_is_valid_or_a_configuration_error(values: dict[str, Any]) -> None:
    try:
        ClientConfig.from_mapping({**BASE, **values})
    except ConfigurationError as exc:
        assert str(exc)


@_FUZZ
@given(
    st.sampled_from([RetryPolicy, BudgetPolicy, BreakerPolicy, Limits, Timeouts]),
    st.one_of(_VALUES, _tables(["max_attempts", "base_delay", "window_size", "connect", "jitter", "max_tokens"])),
)
def test_every_policy_from_any_value_is_valid_or_a_configuration_error(cls: type[Any], value: Any) -> None:
    try:
        build(cls, value, field=f"spec.{cls.__name__}")
    except ConfigurationError as exc:
        assert str(exc)


_SPEC_KEYS = [
    "name",
    "description",
    "fallback",
    "exercise",
    "scenarios",
    "scenario",
    "protocol",
    "owner",
    *_CLIENT_KEYS,
]


@_FUZZ
@given(_tables(_SPEC_KEYS))
def test_a_spec_from_any_table_is_valid_or_a_configuration_error_naming_the_source(values: dict[str, Any]) -> None:
    try:
        IntegrationSpec.from_mapping(_spec(**values), source="fuzz.toml")
    except ConfigurationError as exc:
        assert str(exc).startswith("fuzz.toml"), str(exc)


_PHASE = st.fixed_dictionaries(
    {},
    optional={
        "name": _VALUES,
        "duration": _VALUES,
        "latency": st.one_of(
            _VALUES,
            st.fixed_dictionaries(
                {"kind": st.sampled_from(["constant", "uniform", "lognormal", "empirical", "x"])},
                optional={"value": _VALUES, "median": _VALUES, "p99": _VALUES, "low": _VALUES, "high": _VALUES},
            ),
        ),
        "errors": st.one_of(_VALUES, st.dictionaries(st.sampled_from(["500", "503", "429", "reset", "hang"]), _VALUES)),
        "ramp": _VALUES,
        "retry_after": _VALUES,
    },
)


@_FUZZ
@given(st.fixed_dictionaries({"name": st.just("fuzz")}, optional={"phases": st.lists(_PHASE, max_size=3)}))
def test_a_scenario_from_any_table_is_valid_or_a_configuration_error(data: dict[str, Any]) -> None:
    try:
        Scenario.from_mapping(data, source="fuzz.toml")
    except ConfigurationError as exc:
        assert "fuzz.toml" in str(exc)


_ARG_WORDS = st.sampled_from(
    ["--rate", "--workers", "--duration", "--seed", "--port", "--time-scale", "--scenario", "--events", "-x", "--"]
)
_ARG_VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e308", "99999", "1e12", "0x10", "", " ", "brownout"]),
    st.text(max_size=6),
)


@_FUZZ
@given(
    st.sampled_from(["simulate", "serve", "run", "check", "demo"]),
    st.lists(st.one_of(_ARG_WORDS, _ARG_VALUES), max_size=6),
)
def test_any_command_line_parses_or_exits_2(command: str, words: list[str]) -> None:
    parser = cli.build_parser()
    try:
        args = parser.parse_args([command, *words])
    except SystemExit as exit_:
        assert exit_.code == 2
        return
    assert isinstance(args, argparse.Namespace)
    for name in ("rate", "duration", "time_scale"):
        value = getattr(args, name, None)
        assert value is None or (math.isfinite(value) and value > 0)
