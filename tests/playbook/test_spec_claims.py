"""Specs are checked for what they claim: a protocol the kind cannot speak, secrets named but not set."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.app import main
from integration_kit.playbook.kinds.http.design import checklist
from integration_kit.playbook.kinds.http.spec import PROTOCOLS, IntegrationSpec
from integration_kit.playbook.kinds.protocol import env_presence
from integration_kit.playbook.kinds.table import kind_of, load_spec

_HTTP = {
    "name": "orders",
    "description": "orders API",
    "base_url": "https://api.example.com",
    "auth": {"type": "bearer", "env": "ORDERS_TOKEN_FOR_TEST"},
    "scenarios": ["steady"],
}


def test_a_protocol_the_http_kind_cannot_speak_is_an_error_naming_the_field_and_the_protocols() -> None:
    with pytest.raises(ConfigurationError) as caught:
        IntegrationSpec.from_mapping({**_HTTP, "protocol": "grpc"}, source="orders.toml")
    assert caught.value.field == "protocol"
    message = str(caught.value)
    assert message.startswith("orders.toml: protocol:")
    assert "'grpc'" in message
    assert all(p in message for p in PROTOCOLS)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_protocol_the_kind_speaks_loads(protocol: str) -> None:
    assert IntegrationSpec.from_mapping({**_HTTP, "protocol": protocol}).protocol == protocol


def test_check_fails_on_a_grpc_http_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "orders.toml"
    spec.write_text(
        'name = "orders"\ndescription = "x"\nprotocol = "grpc"\n'
        'base_url = "https://a.example"\nscenarios = ["steady"]\n'
    )
    assert main(["check", str(spec)]) == 2
    assert "protocol" in capsys.readouterr().err


def test_env_presence_names_the_variable_never_the_value() -> None:
    text = env_presence(["A_SET", "B_UNSET"], {"A_SET": "s3cret"})
    assert text == (
        "variable A_SET is named (set in this environment); variable B_UNSET is named (not set in this environment)"
    )
    assert "s3cret" not in text


def test_the_credentials_item_says_whether_the_variable_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = IntegrationSpec.from_mapping(_HTTP)
    monkeypatch.delenv("ORDERS_TOKEN_FOR_TEST", raising=False)
    item = next(i for i in checklist(spec) if i.key == "credentials")
    assert "variable ORDERS_TOKEN_FOR_TEST is named (not set in this environment)" in item.detail
    monkeypatch.setenv("ORDERS_TOKEN_FOR_TEST", "tok-123")
    item = next(i for i in checklist(spec) if i.key == "credentials")
    assert "(set in this environment)" in item.detail
    assert "tok-123" not in item.detail


def test_the_webhook_checklist_names_its_secret_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET", raising=False)
    spec = load_spec("github-events", directory=Path(__file__).parents[2] / "data" / "integrations")
    from_kind = kind_of(spec)
    item = next(i for i in from_kind.checklist(spec) if i.key == "secrets")
    assert "variable GITHUB_WEBHOOK_SECRET is named (not set in this environment)" in item.detail
