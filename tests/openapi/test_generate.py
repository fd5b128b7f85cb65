"""``integration-kit new NAME --openapi FILE``: a spec that passes ``check``, with a source on every value, and the
``[[operations]]`` table it writes (validated, shown in the design document)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from documents import PAYMENTS, payments, write

from integration_kit.errors import ConfigurationError
from integration_kit.openapi import read_openapi
from integration_kit.openapi.generate import spec_text
from integration_kit.playbook.cli.app import main
from integration_kit.playbook.kinds.http.design import checklist, design_document
from integration_kit.playbook.kinds.http.spec import IntegrationSpec, bundled_integrations, load_integration

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "."]) == 0
    return tmp_path


def test_new_from_the_payments_document_passes_check(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "partner", "--openapi", str(PAYMENTS)]) == 0
    assert main(["check", "partner"]) == 0
    assert "11/11 checklist items pass" in capsys.readouterr().out
    spec = load_integration(project / "integrations" / "partner.toml")
    assert spec.client.base_url == "https://api.payments.example/v1"
    assert spec.client.auth is not None
    assert spec.client.auth.env == "PARTNER_API_TOKEN"
    assert spec.client.idempotency_methods == frozenset({"POST"})
    decisions = {e.id: (e.method, e.path, e.retry, e.timeout) for e in spec.operations}
    assert decisions == {
        "listCharges": ("GET", "/charges", "safe", "fast"),
        "createCharge": ("POST", "/charges", "keyed", "standard"),
        "getCharge": ("GET", "/charges/{charge_id}", "safe", "fast"),
        "createRefund": ("POST", "/refunds", "keyed", "standard"),
    }
    charge = next(e for e in spec.operations if e.id == "createCharge")
    assert charge.errors == (400, 402, 409, 429, 503)
    assert charge.required == ("body.amount", "body.currency", "body.source", "header.Idempotency-Key")
    assert charge.returns == "object"
    names = [s.name for s in spec.scenarios]
    assert {"rate-limited", "outage-and-recovery", "brownout"} <= set(names)  # 429 and 503 are documented
    assert spec.client.breaker is not None
    assert spec.client.breaker.ignore_statuses == frozenset({429})


def test_every_generated_value_says_where_it_came_from() -> None:
    text = spec_text(read_openapi(PAYMENTS), "payments")
    tables = ""
    for line in text.splitlines():
        if line.startswith("["):
            tables = line
        elif re.match(r"^[a-z_]+ = ", line) and "#" not in line:
            assert "kit default" in tables or "not in the document" in tables, line  # a table's comment covers it
    assert "# /servers/0/url" in text
    assert "# /components/securitySchemes/bearerAuth" in text
    assert 'id = "createCharge"  # /paths/~1charges/post/operationId' in text
    assert "Idempotency-Key header (/components/parameters/IdempotencyKey)" in text


def test_the_design_document_lists_every_operation_with_its_decision(project: Path) -> None:
    assert main(["new", "partner", "--openapi", str(PAYMENTS)]) == 0
    spec = load_integration(project / "integrations" / "partner.toml")
    document = design_document(spec)
    section = document.split("## Operations", 1)[1].split("## 4.", 1)[0]
    for entry in spec.operations:
        assert f"| `{entry.id}` | `{entry.method} {entry.path}` | {entry.retry} |" in section
    assert "Idempotency-Key: retried with the same key" in section
    assert all(item.passed for item in checklist(spec))


def test_operations_select_a_subset_and_an_unknown_id_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new", "reads", "--openapi", str(PAYMENTS), "--operations", "getCharge,listCharges"]) == 0
    spec = load_integration(project / "integrations" / "reads.toml")
    assert [e.id for e in spec.operations] == ["getCharge", "listCharges"]
    assert spec.client.idempotency_methods == frozenset()
    assert main(["new", "bad", "--openapi", str(PAYMENTS), "--operations", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no operation has operationId 'nope'" in err
    assert "Traceback" not in err
    assert not (project / "integrations" / "bad.toml").exists()


def test_a_bad_document_is_one_line_on_stderr_and_no_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = payments()
    data["paths"]["/charges"]["get"]["responses"]["200"] = {"$ref": "#/components/responses/Gone"}
    bad = write(project, data, "bad.json")
    assert main(["new", "partner", "--openapi", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "#/paths/~1charges/get/responses/200/$ref" in err
    assert not (project / "integrations" / "partner.toml").exists()


def test_a_swagger_20_document_with_an_api_key_header(project: Path) -> None:
    doc: dict[str, Any] = {
        "swagger": "2.0",
        "info": {"title": "Legacy", "version": "1"},
        "host": "api.legacy.example",
        "securityDefinitions": {"key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        "security": [{"key": []}],
        "paths": {"/items": {"get": {"operationId": "listItems", "responses": {"200": {"description": "ok"}}}}},
    }
    assert main(["new", "legacy", "--openapi", str(write(project, doc))]) == 0
    spec = load_integration(project / "integrations" / "legacy.toml")
    assert spec.client.base_url == "https://api.legacy.example"
    assert spec.client.auth is not None
    assert spec.client.auth.header == "X-Api-Key"


def test_the_payments_spec_agrees_with_its_document() -> None:
    """The bundled spec's document-derived settings are what the shipped document regenerates."""
    generated = IntegrationSpec.from_mapping(tomllib.loads(spec_text(read_openapi(PAYMENTS), "payments")))
    shipped = load_integration(DATA / "integrations" / "payments.toml")
    assert generated.client.base_url == shipped.client.base_url
    assert generated.client.auth == shipped.client.auth
    assert generated.client.idempotency_methods == shipped.client.idempotency_methods
    assert {s.name for s in shipped.scenarios if not s.name.startswith("card-")} <= {
        s.name for s in generated.scenarios
    }
    assert (shipped.exercise.method, shipped.exercise.path) in {(e.method, e.path) for e in generated.operations}
    assert shipped.operations == generated.operations


def test_the_bundled_payments_spec_has_no_drift_from_its_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(DATA / "integrations" / "payments.toml"), "--openapi", str(PAYMENTS)]) == 0
    assert "0 breaking change(s), 0 note(s)" in capsys.readouterr().out


# -- the [[operations]] table of an HTTP spec --------------------------------------------------------------------


def _spec(operations: list[dict[str, Any]], **extra: Any) -> IntegrationSpec:
    data = {"name": "x", "description": "d", "base_url": "https://a.example", "scenarios": ["steady"], **extra}
    return IntegrationSpec.from_mapping({**data, "operations": operations})


@pytest.mark.parametrize(
    ("entry", "extra", "field", "words"),
    [
        ({"id": "a", "method": "POST", "path": "/a", "retry": "safe"}, {}, "operations[0].retry", "not idempotent"),
        ({"id": "a", "method": "POST", "path": "/a", "retry": "keyed"}, {}, "operations[0].retry", "idempotency_meth"),
        ({"id": "a", "method": "GET", "path": "a", "retry": "safe"}, {}, "operations[0].path", "start with '/'"),
        ({"id": "a", "method": "GET", "path": "/a", "retry": "maybe"}, {}, "operations[0].retry", "one of"),
        (
            {"id": "a", "method": "GET", "path": "/a", "retry": "safe", "errors": [200]},
            {},
            "operations[0].errors[0]",
            "400 to 599",
        ),
        (
            {"id": "a", "method": "GET", "path": "/a", "retry": "safe", "colour": 1},
            {},
            "operations[0].colour",
            "unknown field",
        ),
        ({"method": "GET", "path": "/a", "retry": "safe"}, {}, "operations[0].id", "required"),
        ({"id": "a", "method": "FETCH", "path": "/a", "retry": "safe"}, {}, "operations[0].method", "HTTP method"),
    ],
)
def test_a_bad_operations_entry_names_its_field(
    entry: dict[str, Any], extra: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _spec([entry], **extra)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_operations_are_optional_and_every_bundled_spec_stays_valid() -> None:
    assert _spec([]).operations == ()
    keyed = _spec([{"id": "a", "method": "POST", "path": "/a", "retry": "keyed"}], idempotency_methods=["POST"])
    assert keyed.operations[0].retry == "keyed"
    with pytest.raises(ConfigurationError, match="listed twice"):
        _spec([{"id": "a", "method": "GET", "path": "/a", "retry": "safe"}] * 2)
    specs = bundled_integrations(DATA / "integrations")
    assert {name: len(spec.operations) for name, spec in specs.items()} == {"catalog": 0, "payments": 4, "shipping": 0}


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["new", "x", "--operations", "getCharge"], "--operations needs --openapi"),
        (["new", "x", "--kind", "queue", "--openapi", str(PAYMENTS)], "--openapi writes an HTTP spec"),
        (["new", "Bad Name", "--openapi", str(PAYMENTS)], "is not an integration name"),
    ],
)
def test_misused_openapi_options_are_one_line(
    project: Path, argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_an_existing_spec_is_kept_unless_forced(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "partner", "--openapi", str(PAYMENTS), "--operations", "getCharge"]) == 0
    assert main(["new", "partner", "--openapi", str(PAYMENTS)]) == 2
    assert "--force replaces it" in capsys.readouterr().err
    assert main(["new", "partner", "--openapi", str(PAYMENTS), "--force"]) == 0
    assert len(load_integration(project / "integrations" / "partner.toml").operations) == 4
