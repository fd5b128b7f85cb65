"""Integration specs: loading, validation errors that name file/field/reason, the checklist and design document."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.http.design import checklist, configuration_rows, design_document, failed_items
from integration_kit.playbook.kinds.http.spec import (
    IntegrationSpec,
    bundled_integrations,
    integration_names,
    load_integration,
)

HEAD = 'name = "a"\ndescription="x"\nbase_url="https://a.example"\n'
TAIL = 'description="x"\nbase_url="https://a.example"\nscenarios=["steady"]'
MINIMAL = """
name = "orders"
description = "Read orders."
base_url = "https://orders.example"
scenarios = ["steady"]
"""


def write(tmp_path: Path, text: str, name: str = "orders") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_bundled_integrations_load_and_pass_their_checklist() -> None:
    specs = {n: s for n, s in bundled_integrations().items() if getattr(s, "kind", "http") != "queue"}
    assert set(specs) == {"catalog", "payments", "shipping"}
    for spec in specs.values():
        assert failed_items(spec) == [], spec.name
        assert spec.client.auth is not None
        assert spec.scenarios


def test_payments_spec_shapes_the_client() -> None:
    spec = load_integration("payments")
    assert spec.client.idempotency_methods == frozenset({"POST"})
    assert spec.client.deadline == 8.0
    assert spec.client.retry.jitter == "decorrelated"
    assert spec.exercise.method == "POST"
    assert spec.scenario("card-network-timeouts").phases[1].errors.hang == 0.3
    assert spec.source("retry.max_attempts") == "spec"
    assert spec.source("budget.enabled") == "default"
    with pytest.raises(ConfigurationError, match="has no scenario 'nope'"):
        spec.scenario("nope")


def test_minimal_spec_takes_defaults(tmp_path: Path) -> None:
    spec = load_integration(str(write(tmp_path, MINIMAL)))
    assert spec.client.retry.max_attempts == 3
    assert spec.source("timeouts") == "default"
    failed = {item.key for item in failed_items(spec)}
    assert {"credentials", "fallback", "timeout_scenarios"} <= failed
    assert "base_url" not in failed


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (
            'name = "Bad Name"\ndescription="x"\nbase_url="https://a.example"\nscenarios=["steady"]',
            "name",
            "lower-case",
        ),
        ('name = "a"\nbase_url="https://a.example"\nscenarios=["steady"]', "description", "must say"),
        ('name = "a"\ndescription="x"\nscenarios=["steady"]', "base_url", "is required"),
        ('name = "a"\ndescription="x"\nbase_url="http://a.example"\nscenarios=["steady"]', "base_url", "plain http"),
        (
            'name = "a"\ndescription="x"\nbase_url="https://a.example"\nscenarios=["nope"]',
            "scenarios[0]",
            "no scenario",
        ),
        ('name = "a"\ndescription="x"\nbase_url="https://a.example"\nscenarios=[]', "scenarios", "at least one"),
        (
            'name = "a"\ndescription="x"\nbase_url="https://a.example"\ncolour="red"\nscenarios=["steady"]',
            "colour",
            "unknown field",
        ),
        (
            'name = "a"\ndescription="x"\nbase_url="https://a.example"\nscenarios=["steady"]\n[retry]\nmax_attempts=0',
            "retry",
            "max_attempts",
        ),
        (
            'name = "a"\ndescription="x"\nbase_url="https://a.example"\nscenarios=["steady"]\n[breaker]\nwindow_size=0',
            "breaker",
            "window_size",
        ),
        (
            'name = "a"\ndescription="x"\nbase_url="https://a.example"\nscenarios=["steady"]\n[breaker]\n'
            "ignore_statuses=[200]",
            "breaker",
            "ignore_statuses",
        ),
        (
            'name = "a"\ndescription="x"\nbase_url="https://a.example"\nscenarios=["steady"]\n[fallback]\nkind="magic"',
            "fallback",
            "kind",
        ),
        (
            'name = "a"\ndescription="x"\nbase_url="https://a.example"\nscenarios=["steady"]\n[exercise]\nrate=-1',
            "exercise",
            "rate",
        ),
        (
            'name = "a"\ndescription="x"\nbase_url="https://a.example"\nscenarios=["steady"]\n[exercise]\nscenarios=[]',
            "exercise.scenarios",
            "unknown field",
        ),
        (
            'name = "a"\ndescription="x"\nbase_url="https://a.example"\nscenarios=["steady", "steady"]',
            "scenarios",
            "listed twice",
        ),
    ],
)
def test_invalid_specs_name_file_field_and_reason(tmp_path: Path, text: str, field: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        load_integration(str(path))
    message = str(info.value)
    assert str(path) in message
    assert f": {field}" in message
    assert reason in message


def test_malformed_toml_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_integration(str(write(tmp_path, "name = ")))
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_integration(str(tmp_path / "missing.toml"))


@pytest.mark.parametrize("name", ["../payments", "/etc/passwd", "payments/../../x", "..", "a b", "PAYMENTS"])
def test_names_cannot_leave_the_data_folder(name: str) -> None:
    with pytest.raises(ConfigurationError, match="not an integration name"):
        load_integration(name)


def test_unknown_integration_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"no integration named 'nope'.*catalog.*order-events-consumer.*payments"
    ):
        load_integration("nope")
    write(tmp_path, MINIMAL)
    assert integration_names(tmp_path) == ["orders"]


def test_inline_scenario_errors_name_the_spec(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[scenario]]\nname = "x"\n[[scenario.phases]]\nduration = -1\n'
    with pytest.raises(ConfigurationError, match=r"orders\.toml: scenario\[0\]"):
        load_integration(str(write(tmp_path, text)))


def test_checklist_flags_each_missing_part(tmp_path: Path) -> None:
    text = MINIMAL.replace('scenarios = ["steady"]', 'scenarios = ["outage-and-recovery"]') + (
        "\n[breaker]\nfailure_threshold = 5\n[exercise]\nmethod = 'POST'\n"
    )
    spec = load_integration(str(write(tmp_path, text)))
    items = {item.key: item for item in checklist(spec)}
    assert not items["idempotency"].passed
    assert "POST is not idempotent" in items["idempotency"].detail
    assert not items["credentials"].passed
    assert not items["fallback"].passed
    assert not items["timeout_scenarios"].passed
    assert items["error_scenarios"].passed
    assert items["timeouts"].passed
    assert items["base_url"].passed


def test_design_document_has_every_section_and_the_configuration_table() -> None:
    spec = load_integration("payments")
    doc = design_document(spec)
    for heading in (
        "## 1. Client implementation",
        "## 2. Configuration",
        "## 3. Resilience patterns",
        "## 4. Security",
        "## 5. Testing strategy",
        "## 6. Checklist",
    ):
        assert heading in doc
    assert "| Setting | Value | Source |" in doc
    assert "| retry.jitter | decorrelated | spec |" in doc
    assert "| budget.enabled | True | default |" in doc
    assert "PAYMENTS_API_TOKEN" in doc
    assert "- [x] A fallback is defined" in doc
    rows = configuration_rows(spec)
    assert ("deadline", "8.0", "spec") in rows


def test_spec_from_mapping_directly() -> None:
    spec = IntegrationSpec.from_mapping(
        {"name": "m", "description": "d", "base_url": "https://m.example", "scenarios": ["steady"]}
    )
    assert spec.path is None
    assert spec.protocol == "https+json"
