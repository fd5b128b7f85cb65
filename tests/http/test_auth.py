"""Credentials (``integration_kit.http.auth``), exactly: what each setting loads, what it refuses, and that no
error, repr or message ever holds a secret's value.

Pure logic over an injected environment mapping (``os.environ`` only where the default source is the point).
Each assertion pins one behaviour the mutation sweep of issue 29 found unguarded: the exact header and encoding,
the name checks (whole-string, so a trailing newline is no name), a blank or line-breaking variable refused,
the table form's errors and the field each names.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.http.auth import (
    BasicAuth,
    BearerAuth,
    Credential,
    HeaderAuth,
    auth_from_mapping,
)
from integration_kit.http.redact import Secret

SECRET = "s3cr3t-X-V4lue"  # an X: the line-break check looks for exactly CR, LF and NUL


def _basic(value: Secret) -> bytes:
    text = value.reveal()
    assert text.startswith("Basic ")
    return base64.b64decode(text.removeprefix("Basic "), validate=True)


# -- what each setting loads ------------------------------------------------------------------------------------


def test_bearer_loads_the_authorization_header_with_the_stripped_token() -> None:
    credential = BearerAuth(env="TOKEN").load({"TOKEN": f"  {SECRET}\t"})
    assert credential == Credential("Authorization", Secret(f"Bearer {SECRET}"))
    assert (credential.header, credential.value.reveal()) == ("Authorization", f"Bearer {SECRET}")
    assert SECRET not in repr(credential)
    assert SECRET not in str(credential)


def test_header_auth_loads_its_own_header_name_unchanged() -> None:
    credential = HeaderAuth(header="X-Api-Key", env="KEY").load({"KEY": f" {SECRET} "})
    assert credential.header == "X-Api-Key"
    assert credential.value.reveal() == SECRET
    assert SECRET not in repr(credential)


def test_basic_auth_encodes_user_colon_password_in_utf8() -> None:
    credential = BasicAuth(username_env="USER", password_env="PASS").load({"USER": " ädä ", "PASS": "p:ä ss"})
    assert credential.header == "Authorization"
    assert _basic(credential.value) == "ädä:p:ä ss".encode()
    assert credential.value.reveal().isascii()
    assert "p:ä ss" not in repr(credential)


def test_the_default_source_is_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IK_TEST_TOKEN", SECRET)
    monkeypatch.setenv("IK_TEST_USER", "ada")
    monkeypatch.setenv("IK_TEST_PASS", "pw")
    assert BearerAuth(env="IK_TEST_TOKEN").load().value.reveal() == f"Bearer {SECRET}"
    assert HeaderAuth(header="X-Key", env="IK_TEST_TOKEN").load().value.reveal() == SECRET
    assert _basic(BasicAuth(username_env="IK_TEST_USER", password_env="IK_TEST_PASS").load().value) == b"ada:pw"
    # A given mapping is the only source: the process environment is not consulted then.
    with pytest.raises(ConfigurationError, match="is not set"):
        BearerAuth(env="IK_TEST_TOKEN").load({})


# -- a bad variable: named, never shown -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "owner"),
    [
        (BearerAuth(env="V"), "BearerAuth"),
        (HeaderAuth(header="X-Key", env="V"), "HeaderAuth"),
        (BasicAuth(username_env="V", password_env="P"), "BasicAuth"),
        (BasicAuth(username_env="U", password_env="V"), "BasicAuth"),
    ],
)
@pytest.mark.parametrize(
    ("value", "state"),
    [
        (None, "is not set"),
        ("", "is empty"),
        ("   \t ", "is empty"),
        (f"{SECRET}\r", "holds a line break or NUL"),
        (f"{SECRET}\nX-Evil: 1", "holds a line break or NUL"),
        (f"{SECRET}\0", "holds a line break or NUL"),
    ],
)
def test_a_bad_variable_is_named_with_its_owner_and_state(auth: Any, owner: str, value: str | None, state: str) -> None:
    environ = {"U": "ada", "P": "pw"} | ({} if value is None else {"V": value})
    with pytest.raises(ConfigurationError) as caught:
        auth.load(environ)
    assert str(caught.value) == f"environment variable 'V' ({owner}) {state}"
    assert caught.value.field is None
    assert SECRET not in f"{caught.value} {caught.value!r}"


def test_a_basic_user_name_with_a_colon_is_refused_before_the_password_is_read() -> None:
    auth = BasicAuth(username_env="USER", password_env="PASS")
    with pytest.raises(ConfigurationError) as caught:
        auth.load({"USER": f"ada:{SECRET}"})  # no PASS: the user name is checked first
    assert str(caught.value) == "environment variable 'USER' (BasicAuth user name) must not contain ':'"
    assert SECRET not in repr(caught.value)


# -- names are checked whole, at construction -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "1TOKEN", "TO-KEN", "TO KEN", "TOKEN\n", "\nTOKEN", "TOKÉN", 7, None])
def test_an_env_name_is_a_whole_identifier(name: Any) -> None:
    builders: list[tuple[Callable[[Any], object], str, str]] = [
        (lambda n: BearerAuth(env=n), "BearerAuth", "env"),
        (lambda n: HeaderAuth(header="X-Key", env=n), "HeaderAuth", "env"),
        (lambda n: BasicAuth(username_env=n, password_env="P"), "BasicAuth", "username_env"),
        (lambda n: BasicAuth(username_env="U", password_env=n), "BasicAuth", "password_env"),
    ]
    for build, owner, field in builders:
        with pytest.raises(ConfigurationError) as caught:
            build(name)
        assert str(caught.value) == f"{owner}.{field} must be an environment variable name, got {name!r}"
        assert caught.value.field == field


@pytest.mark.parametrize("name", ["_", "a", "Z9_x", "_1"])
def test_an_env_name_may_be_any_identifier(name: str) -> None:
    assert BearerAuth(env=name).env == name
    assert BasicAuth(username_env=name, password_env=name).password_env == name


@pytest.mark.parametrize("header", ["", "X Key", "X-Key\n", "X-Key\r\nX-Evil", "X:Key", "Ä-Key", "(X)", 5, None])
def test_a_header_name_is_a_whole_http_token(header: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        HeaderAuth(header=header, env="KEY")
    assert str(caught.value) == f"HeaderAuth.header must be an HTTP header name, got {header!r}"
    assert caught.value.field == "header"


def test_every_token_character_is_allowed_in_a_header_name() -> None:
    header = "!#$%&'*+-.^_`|~09azAZ"
    assert HeaderAuth(header=header, env="KEY").load({"KEY": "v"}).header == header


def test_the_header_name_is_checked_before_the_env_name() -> None:
    with pytest.raises(ConfigurationError) as caught:
        HeaderAuth(header="X Key", env="bad name")
    assert caught.value.field == "header"


# -- the table form ---------------------------------------------------------------------------------------------


def test_a_table_builds_each_kind() -> None:
    assert auth_from_mapping({"type": "bearer", "env": "T"}) == BearerAuth(env="T")
    assert auth_from_mapping({"type": "header", "header": "X-K", "env": "T"}) == HeaderAuth(header="X-K", env="T")
    basic = auth_from_mapping({"type": "basic", "username_env": "U", "password_env": "P"})
    assert basic == BasicAuth(username_env="U", password_env="P")


def test_no_table_and_a_built_setting_pass_through() -> None:
    assert auth_from_mapping(None) is None
    for setting in (BearerAuth(env="T"), HeaderAuth(header="X-K", env="T"), BasicAuth("U", "P")):
        assert auth_from_mapping(setting) is setting


def test_the_table_given_is_left_as_it_was() -> None:
    table = {"type": "bearer", "env": "T"}
    auth_from_mapping(table)
    assert table == {"type": "bearer", "env": "T"}


@pytest.mark.parametrize(
    ("values", "message", "field"),
    [
        (["bearer"], "auth: expected a mapping with a 'type', got list", None),
        ("bearer", "auth: expected a mapping with a 'type', got str", None),
        ({"env": "T"}, "auth.type must be one of 'bearer', 'header', 'basic', got None", "type"),
        ({"type": "Bearer", "env": "T"}, "auth.type must be one of 'bearer', 'header', 'basic', got 'Bearer'", "type"),
        ({"type": 1, "env": "T"}, "auth.type must be one of 'bearer', 'header', 'basic', got 1", "type"),
        (
            {"type": "bearer", "env": "T", "token": SECRET, "a_key": SECRET},
            "auth.a_key: unknown field (expected one of env, type)",
            "a_key",
        ),
        (
            {"type": "header", "env": "T", "header": "X", "value": SECRET},
            "auth.value: unknown field (expected one of env, header, type)",
            "value",
        ),
        (
            {"type": "basic", "username_env": "U", "password": SECRET},
            "auth.password: unknown field (expected one of password_env, type, username_env)",
            "password",
        ),
        ({"type": "bearer"}, "auth.env is required for a bearer auth", "env"),
        ({"type": "header", "env": "T"}, "auth.header is required for a header auth", "header"),
        ({"type": "basic"}, "auth.username_env is required for a basic auth", "username_env"),
        ({"type": "basic", "username_env": "U"}, "auth.password_env is required for a basic auth", "password_env"),
        ({"type": "bearer", "env": ["T"]}, "auth (bearer).env must be", "env"),
        (
            {"type": "basic", "username_env": "U", "password_env": 3},
            "auth (basic).password_env must be",
            "password_env",
        ),
    ],
)
def test_a_bad_table_names_its_field_never_a_value(values: Any, message: str, field: str | None) -> None:
    with pytest.raises(ConfigurationError) as caught:
        auth_from_mapping(values)
    assert str(caught.value).startswith(message)
    assert caught.value.field == field
    assert SECRET not in f"{caught.value} {caught.value!r}"
