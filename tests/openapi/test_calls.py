"""Validated calls over real sockets: requests checked before the first attempt (nothing sent), answers checked
against the documented schema (the failing field's path, never its value), opt-in per wrapper and per call."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from documents import PAYMENTS, payments, write
from scripted_upstream import Reply, Upstream

from integration_kit import AsyncResilientClient, BearerAuth, ClientConfig, ResilientClient
from integration_kit.errors import IntegrationError, InvalidResponse
from integration_kit.openapi import InvalidRequest, InvalidResponseBody, read_openapi
from integration_kit.openapi.calls import AsyncValidatedCalls, ValidatedCalls
from integration_kit.openapi.validation import OperationValidators

TOKEN = "sk_live_do_not_leak_4242"
CHARGE = {"amount": 1200, "currency": "eur", "source": "tok_visa"}
DOCUMENT = read_openapi(PAYMENTS)


def _json(body: Any, status: int = 201) -> Reply:
    return Reply(status, headers={"content-type": "application/json"}, body=json.dumps(body).encode())


def _config(upstream: Upstream) -> ClientConfig:
    return ClientConfig(
        name="payments",
        base_url=f"{upstream.base_url}/v1",
        auth=BearerAuth(env="PAYMENTS_API_TOKEN"),
        idempotency_methods=frozenset({"POST"}),
    )


@pytest.fixture
def calls(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[ValidatedCalls]:
    monkeypatch.setenv("PAYMENTS_API_TOKEN", TOKEN)
    with ResilientClient(_config(upstream)) as client:
        yield ValidatedCalls(client, DOCUMENT)


def test_a_valid_call_goes_through(calls: ValidatedCalls, upstream: Upstream) -> None:
    upstream.script(_json({"id": "ch_1", "amount": 1200, "currency": "eur", "status": "succeeded"}))
    response = calls.call("createCharge", json=CHARGE, idempotency_key="order-17")
    assert response.status_code == 201
    seen = upstream.requests[0]
    assert (seen.method, seen.path) == ("POST", "/v1/charges")
    upstream.script(_json({"id": "ch_1", "amount": 1, "currency": "eur", "status": "pending"}, 200))
    assert calls.call("getCharge", path_params={"charge_id": "ch_1"}).status_code == 200
    assert upstream.requests[1].path == "/v1/charges/ch_1"


@pytest.mark.parametrize(
    ("options", "path", "rule"),
    [
        ({"json": {**CHARGE, "amount": "1200"}, "idempotency_key": "k"}, "/body/amount", "type"),
        ({"json": {"amount": 1200, "currency": "eur"}, "idempotency_key": "k"}, "/body/source", "required"),
        ({"idempotency_key": "k"}, "/body", "required"),
        ({"json": {**CHARGE, "currency": "EURO"}, "idempotency_key": "k"}, "/body/currency", "pattern"),
    ],
)
def test_an_invalid_request_is_refused_before_anything_is_sent(
    calls: ValidatedCalls, upstream: Upstream, options: dict[str, Any], path: str, rule: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        calls.call("createCharge", **options)
    assert (caught.value.path, caught.value.rule, caught.value.operation) == (path, rule, "createCharge")
    assert upstream.count == 0
    assert "1200" not in str(caught.value)
    assert "EURO" not in str(caught.value)


def test_a_required_idempotency_key_the_client_would_not_send(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMENTS_API_TOKEN", TOKEN)
    config = ClientConfig(
        name="payments", base_url=f"{upstream.base_url}/v1", auth=BearerAuth(env="PAYMENTS_API_TOKEN")
    )
    # no idempotency_methods: no key unless the call gives one
    with ResilientClient(config) as client, pytest.raises(InvalidRequest) as caught:
        ValidatedCalls(client, DOCUMENT).call("createCharge", json=CHARGE)
    assert (caught.value.path, caught.value.rule) == ("/header/Idempotency-Key", "required")
    assert upstream.count == 0


def test_query_and_path_parameters_are_checked(calls: ValidatedCalls, upstream: Upstream) -> None:
    with pytest.raises(InvalidRequest) as caught:
        calls.call("listCharges", params={"limit": 1000})
    assert (caught.value.path, caught.value.rule) == ("/query/limit", "maximum")
    with pytest.raises(InvalidRequest) as caught:
        calls.call("getCharge", path_params={"charge_id": "../admin"})
    assert (caught.value.path, caught.value.rule) == ("/path/charge_id", "pattern")
    with pytest.raises(InvalidRequest, match="required"):
        calls.call("getCharge")
    assert upstream.count == 0


def test_an_invalid_answer_names_the_field_and_never_its_value(calls: ValidatedCalls, upstream: Upstream) -> None:
    upstream.script(_json({"id": "ch_1", "amount": TOKEN, "currency": "eur", "status": "succeeded"}))
    with pytest.raises(InvalidResponseBody) as caught:
        calls.call("createCharge", json=CHARGE, idempotency_key="k")
    error = caught.value
    assert isinstance(error, InvalidResponse)
    assert (error.path, error.rule) == ("/amount", "type")
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error.args)
    assert error.url is not None
    assert error.url.endswith("/v1/charges")
    assert error.integration == "payments"
    upstream.script(_json({"id": "ch_1", "amount": 1, "currency": "eur", "status": "refunded"}, 200))
    with pytest.raises(InvalidResponseBody) as caught:
        calls.call("getCharge", path_params={"charge_id": "ch_1"})
    assert (caught.value.path, caught.value.rule) == ("/status", "enum")
    upstream.script(_json({"data": [{"id": "ch_1", "amount": 1, "currency": "eur"}]}, 200))
    with pytest.raises(InvalidResponseBody) as caught:
        calls.call("listCharges")
    assert (caught.value.path, caught.value.rule) == ("/data/0/status", "required")


def test_a_non_json_answer_is_invalid(calls: ValidatedCalls, upstream: Upstream) -> None:
    upstream.script(Reply(200, headers={"content-type": "text/html"}, body=b"<html>maintenance</html>"))
    with pytest.raises(InvalidResponseBody, match="expected a JSON body"):
        calls.call("listCharges")


def test_validation_is_opt_in_per_wrapper_and_per_call(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_API_TOKEN", TOKEN)
    bad = {"id": "ch_1", "amount": "x", "currency": "eur", "status": "succeeded"}
    with ResilientClient(_config(upstream)) as client:
        off = ValidatedCalls(client, DOCUMENT, requests=False, responses=False)
        upstream.script(_json(bad))
        assert off.call("createCharge", json={"amount": "x"}, idempotency_key="k").status_code == 201
        upstream.script(_json(bad))
        with pytest.raises(InvalidResponseBody):
            off.call("createCharge", json=CHARGE, idempotency_key="k2", validate=True)
        on = ValidatedCalls(client, DOCUMENT)
        upstream.script(_json(bad))
        assert on.call("createCharge", json={"amount": "x"}, idempotency_key="k3", validate=False).status_code == 201
    assert upstream.count == 3


def test_validators_are_compiled_once_per_operation() -> None:
    validators = OperationValidators(DOCUMENT)
    op = DOCUMENT.operation("getCharge")
    body = {"id": "ch_1", "amount": 1, "currency": "eur", "status": "pending"}
    assert validators.check_response(op, 200, body) is None
    compiled = dict(validators._cache)
    for _ in range(3):
        assert validators.check_response(op, 200, body) is None
    assert validators._cache == compiled
    assert len(compiled) == 1


def test_the_async_client_validates_the_same_way(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_API_TOKEN", TOKEN)

    async def scenario() -> tuple[str, int]:
        async with AsyncResilientClient(_config(upstream)) as client:
            calls = AsyncValidatedCalls(client, DOCUMENT)
            with pytest.raises(InvalidRequest) as caught:
                await calls.call("createCharge", json={**CHARGE, "amount": 0}, idempotency_key="k")
            sent_before = upstream.count
            upstream.script(_json({"id": "ch_1", "amount": 1200, "currency": "eur", "status": "succeeded"}))
            response = await calls.call("createCharge", json=CHARGE, idempotency_key="k")
            assert response.status_code == 201
            return caught.value.rule, sent_before

    assert anyio.run(scenario) == ("minimum", 0)
    assert upstream.count == 1


def test_a_31_document_is_validated_as_json_schema_2020_12(tmp_path: Path) -> None:
    data = payments()
    data["openapi"] = "3.1.0"
    charge = data["components"]["schemas"]["Charge"]
    charge["properties"]["card_last4"] = {"type": ["string", "null"]}  # 3.1's way of saying nullable
    document = read_openapi(write(tmp_path, data))
    validators = OperationValidators(document)
    op = document.operation("getCharge")
    body = {"id": "ch_1", "amount": 1, "currency": "eur", "status": "pending", "card_last4": None}
    assert validators.check_response(op, 200, body) is None
    violation = validators.check_response(op, 200, {**body, "card_last4": 4242})
    assert violation is not None
    assert (violation.path, violation.rule) == ("/card_last4", "type")


def test_a_write_the_document_gives_no_key_is_not_retried(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAYMENTS_API_TOKEN", TOKEN)
    data = payments()
    del data["paths"]["/refunds"]["post"]["parameters"]  # createRefund declares no Idempotency-Key any more
    document = read_openapi(write(tmp_path, data))
    refund = {"id": "re_1", "charge": "ch_1", "amount": 5}
    with ResilientClient(_config(upstream)) as client:  # POST is keyed client-wide, so the client would retry
        calls = ValidatedCalls(client, document)
        upstream.script(Reply(503))
        with pytest.raises(IntegrationError):
            calls.call("createRefund", json={"charge": "ch_1", "amount": 5})
        assert upstream.count == 1  # one attempt: the partner may have applied it
        upstream.script(Reply(503), _json(refund))
        assert calls.call("createRefund", json={"charge": "ch_1", "amount": 5}, retry=True).status_code == 201
        assert upstream.count == 3  # the caller chose to retry: two attempts
        upstream.script(Reply(503), _json({"id": "ch_1", "amount": 1, "currency": "eur", "status": "pending"}))
        calls.call("createCharge", json=CHARGE)  # keyed by the document: retried
        assert upstream.count == 5


def test_a_swagger_20_parameter_is_checked_by_its_own_type(tmp_path: Path) -> None:
    data = {
        "swagger": "2.0",
        "info": {"title": "Legacy", "version": "1"},
        "host": "api.legacy.example",
        "paths": {
            "/items": {
                "get": {
                    "operationId": "listItems",
                    "parameters": [
                        {"name": "limit", "in": "query", "type": "integer", "maximum": 50, "required": True}
                    ],
                    "responses": {
                        "200": {"description": "ok", "schema": {"type": "array", "items": {"type": "string"}}}
                    },
                }
            }
        },
    }
    document = read_openapi(write(tmp_path, data))
    validators = OperationValidators(document)
    op = document.operation("listItems")
    check = functools.partial(validators.check_request, op, path_params={}, headers={}, body=None)
    assert check(params={"limit": 10}) is None
    assert str(check(params={"limit": 500})) == "/query/limit breaks 'maximum' (expected maximum 50)"
    assert str(check(params={})) == "/query/limit breaks 'required' (expected a value)"
    assert validators.check_response(op, 200, ["a"]) is None
    violation = validators.check_response(op, 200, ["a", 2])
    assert violation is not None
    assert violation.path == "/1"
