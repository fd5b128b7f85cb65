"""Reading OpenAPI 3.0, 3.1 and Swagger 2.0 documents into the model, and every kind of bad document."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from documents import PAYMENTS, payments, write

from integration_kit.errors import ConfigurationError
from integration_kit.openapi import OpenAPIError, read_openapi
from integration_kit.openapi.generate import spec_text


def test_openapi_30_yaml_into_the_model() -> None:
    doc = read_openapi(PAYMENTS)
    assert doc.dialect == "3.0"
    assert [s.url for s in doc.servers] == ["https://api.payments.example/v1"]
    assert {op.operation_id for op in doc.operations} == {"createCharge", "listCharges", "getCharge", "createRefund"}
    charge = doc.operation("createCharge")
    assert (charge.method, charge.path) == ("POST", "/charges")
    key = charge.idempotency_key
    assert key is not None
    assert key.required
    assert key.pointer == "/components/parameters/IdempotencyKey"
    assert charge.body is not None
    assert charge.body.required
    assert charge.body.schema_pointer == "/paths/~1charges/post/requestBody/content/application~1json/schema"
    assert charge.error_statuses == (400, 402, 409, 429, 503)
    assert charge.response_for(201) is not None
    assert charge.response_for(201).schema_pointer
    assert doc.security_of(charge) == ("bearerAuth",)
    assert doc.security_schemes["bearerAuth"].scheme == "bearer"
    get = doc.operation("getCharge")
    assert [(p.name, p.location, p.required) for p in get.parameters] == [("charge_id", "path", True)]
    assert get.idempotency_key is None


def test_openapi_31_json_with_server_variables(tmp_path: Path) -> None:
    data = payments()
    data["openapi"] = "3.1.0"
    data["servers"] = [{"url": "https://{region}.payments.example/v1", "variables": {"region": {"default": "eu"}}}]
    doc = read_openapi(write(tmp_path, data))
    assert doc.dialect == "3.1"
    assert doc.servers[0].url == "https://eu.payments.example/v1"


def _swagger() -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "Legacy shipping", "version": "1"},
        "host": "api.shipping.example",
        "basePath": "/v2",
        "schemes": ["https"],
        "securityDefinitions": {"key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        "security": [{"key": []}],
        "paths": {
            "/shipments": {
                "post": {
                    "operationId": "createShipment",
                    "parameters": [
                        {"name": "Idempotency-Key", "in": "header", "type": "string", "required": True},
                        {"name": "body", "in": "body", "required": True, "schema": {"$ref": "#/definitions/New"}},
                    ],
                    "responses": {
                        "201": {"description": "ok", "schema": {"$ref": "#/definitions/Shipment"}},
                        "429": {"description": "slow down"},
                    },
                }
            }
        },
        "definitions": {
            "New": {"type": "object", "required": ["address"], "properties": {"address": {"type": "string"}}},
            "Shipment": {"type": "object", "properties": {"id": {"type": "string"}}},
        },
    }


def test_swagger_20_into_the_model(tmp_path: Path) -> None:
    doc = read_openapi(write(tmp_path, _swagger()))
    assert doc.dialect == "2.0"
    assert doc.servers[0].url == "https://api.shipping.example/v2"
    op = doc.operation("createShipment")
    assert op.idempotency_key is not None
    assert op.body is not None
    assert op.body.schema_pointer == "/paths/~1shipments/post/parameters/1/schema"
    assert op.error_statuses == (429,)
    assert doc.security_schemes["key"].header == "X-Api-Key"


# -- bad documents: a typed error naming the place, quickly, with bounded memory ---------------------------------


def _error(path: Path, **kwargs: Any) -> OpenAPIError:
    with pytest.raises(OpenAPIError) as caught:
        read_openapi(path, **kwargs)
    assert isinstance(caught.value, ConfigurationError)
    return caught.value


def test_a_broken_ref_names_where_it_is_written(tmp_path: Path) -> None:
    data = payments()
    data["paths"]["/charges"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/Nowhere"
    }
    error = _error(write(tmp_path, data))
    assert error.pointer == "/paths/~1charges/post/requestBody/content/application~1json/schema/$ref"
    assert "#/components/schemas/Nowhere" in str(error)


def test_a_ref_to_another_file_is_refused(tmp_path: Path) -> None:
    data = payments()
    data["components"]["schemas"]["Charge"] = {"$ref": "other.yaml#/Charge"}
    error = _error(write(tmp_path, data))
    assert error.pointer == "/components/schemas/Charge/$ref"
    assert "outside the document" in str(error)


def test_a_ref_cycle_is_an_error_and_a_recursive_schema_is_not(tmp_path: Path) -> None:
    data = payments()
    data["components"]["schemas"]["A"] = {"$ref": "#/components/schemas/B"}
    data["components"]["schemas"]["B"] = {"$ref": "#/components/schemas/A"}
    error = _error(write(tmp_path, data))
    assert "cycle" in str(error)
    assert error.pointer.startswith("/components/schemas/")
    tree = payments()
    tree["components"]["schemas"]["Node"] = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}},
    }
    assert read_openapi(write(tmp_path, tree, "tree.json")).operation("getCharge")


def test_a_yaml_bomb_is_refused_at_its_first_alias_quickly(tmp_path: Path) -> None:
    lines = ['openapi: "3.0.3"', "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = write(tmp_path, "\n".join(lines) + "\n", "bomb.yaml")
    started = time.perf_counter()
    error = _error(path)
    assert time.perf_counter() - started < 2.0  # 9**10 items if expanded: refused before
    assert error.pointer == "line 3, column 10"
    assert "alias *a0" in str(error)


def test_not_an_openapi_document(tmp_path: Path) -> None:
    error = _error(write(tmp_path, {"name": "a package.json, say"}))
    assert error.pointer == ""
    assert "not an OpenAPI document" in str(error)
    assert "not an OpenAPI" in str(_error(write(tmp_path, "- a\n- list\n", "list.yaml")))
    assert _error(write(tmp_path, {"openapi": "4.0.0"}, "v4.json")).pointer == "/openapi"
    assert _error(write(tmp_path, {"swagger": "1.2"}, "v1.json")).pointer == "/swagger"


def test_malformed_yaml_and_json_name_the_line(tmp_path: Path) -> None:
    assert _error(write(tmp_path, "openapi: 3.0.3\npaths: [\n", "bad.yaml")).pointer.startswith("line ")
    assert _error(write(tmp_path, '{"openapi": "3.0.3",\n  oops}', "bad.json")).pointer == "line 2, column 3"


def test_too_large_a_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, payments())
    error = _error(path, max_bytes=100)
    assert "more than the limit of 100" in str(error)


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    assert "cannot read the file" in str(_error(tmp_path / "absent.yaml"))


def test_a_duplicate_operation_id_names_both_places(tmp_path: Path) -> None:
    data = payments()
    data["paths"]["/refunds"]["post"]["operationId"] = "createCharge"
    error = _error(write(tmp_path, data))
    assert error.pointer == "/paths/~1refunds/post/operationId"
    assert "/paths/~1charges/post/operationId" in str(error)


def test_missing_servers_stop_the_spec_naming_servers(tmp_path: Path) -> None:
    data = payments()
    del data["servers"]
    doc = read_openapi(write(tmp_path, data))  # the model needs no server; a spec does
    with pytest.raises(OpenAPIError) as caught:
        spec_text(doc, "payments")
    assert caught.value.pointer == "/servers"
    data["servers"] = [{"url": "http://api.payments.example"}]
    with pytest.raises(OpenAPIError, match="plain http") as caught:
        spec_text(read_openapi(write(tmp_path, data, "http.json")), "payments")
    assert caught.value.pointer == "/servers/0/url"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.yaml", "openapi: 3.0.3\nx: " + "[" * 100_000 + "\n"),
        ("deep.json", '{"openapi": "3.0.3", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    ],
)
def test_nesting_past_the_parsers_limits_is_an_error_not_a_crash(tmp_path: Path, name: str, text: str) -> None:
    assert "nest" in str(_error(write(tmp_path, text, name)))
