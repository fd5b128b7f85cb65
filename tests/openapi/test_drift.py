"""``integration-kit check NAME --openapi FILE``: contract drift between a spec and a modified document."""

from __future__ import annotations

from pathlib import Path

import pytest
from documents import PAYMENTS, payments, write

from integration_kit.playbook.cli.app import main


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "."]) == 0
    assert main(["new", "partner", "--openapi", str(PAYMENTS)]) == 0
    return tmp_path


def test_the_same_document_has_no_drift(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["check", "partner", "--openapi", str(PAYMENTS)]) == 0
    assert "0 breaking change(s), 0 note(s)" in capsys.readouterr().out


def test_a_breaking_document_fails_the_check_naming_each_change(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = payments()
    del data["paths"]["/refunds"]  # createRefund is gone
    data["components"]["schemas"]["ChargeRequest"]["required"].append("customer")  # a new required field
    data["paths"]["/charges"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Charge"},
    }  # listCharges answers an array now
    capsys.readouterr()
    assert main(["check", "partner", "--openapi", str(write(project, data))]) == 1
    out = capsys.readouterr().out
    assert "BREAKING createRefund: gone: POST /refunds is not in the document" in out
    assert "BREAKING createCharge: new-required: new required request fields: body.customer" in out
    assert "BREAKING listCharges: response-type: the 2xx answer was object, is now array" in out
    assert "3 breaking change(s)" in out


def test_a_moved_or_renamed_operation(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = payments()
    data["paths"]["/charges/{charge_id}"]["get"]["operationId"] = "retrieveCharge"  # renamed: calls still work
    data["paths"]["/payments"] = {"post": data["paths"]["/charges"].pop("post")}  # createCharge moved
    capsys.readouterr()
    assert main(["check", "partner", "--openapi", str(write(project, data))]) == 1
    out = capsys.readouterr().out
    assert "note getCharge: renamed: now operationId 'retrieveCharge'" in out
    assert "BREAKING createCharge: moved: POST /charges is now POST /payments" in out


def test_a_new_429_without_pacing_is_reported_without_failing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = project / "integrations" / "partner.toml"
    text = spec.read_text(encoding="utf-8").replace("respect_retry_after = true", "respect_retry_after = false")
    spec.write_text(text, encoding="utf-8")
    data = payments()
    data["paths"]["/charges/{charge_id}"]["get"]["responses"]["429"] = {"$ref": "#/components/responses/Error"}
    capsys.readouterr()
    assert main(["check", "partner", "--openapi", str(write(project, data))]) == 0
    out = capsys.readouterr().out
    assert "note getCharge: new-429: 429 newly documented at /paths/~1charges~1{charge_id}/get/responses" in out
    spec.write_text(text.replace("respect_retry_after = false", "respect_retry_after = true"), encoding="utf-8")
    assert main(["check", "partner", "--openapi", str(write(project, data))]) == 0
    assert "new-429" not in capsys.readouterr().out  # paced: Retry-After is honoured on 429


def test_a_spec_without_operations_cannot_be_compared(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "plain"]) == 0
    capsys.readouterr()
    assert main(["check", "plain", "--openapi", str(PAYMENTS)]) == 2
    assert "lists no [[operations]]" in capsys.readouterr().err
