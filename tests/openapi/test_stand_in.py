"""The live flaky upstream answering what the payments document says, over real sockets: a validating client
accepts every documented answer and catches exactly the malformed ones the stand-in injects."""

from __future__ import annotations

import random
from typing import Any

import pytest
from documents import PAYMENTS

from integration_kit import ClientConfig, ResilientClient
from integration_kit.openapi import InvalidResponseBody, read_openapi
from integration_kit.openapi.calls import ValidatedCalls
from integration_kit.openapi.examples import Examples, malformed
from integration_kit.openapi.refs import References
from integration_kit.openapi.stand_in import DocumentedAnswers
from integration_kit.openapi.validation import OperationValidators
from integration_kit.sim.scenarios import Scenario
from integration_kit.sim.upstream import FlakyUpstream, serve_app

DOCUMENT = read_openapi(PAYMENTS)
HEALTHY = Scenario.from_mapping(
    {"name": "healthy", "phases": [{"name": "ok", "duration": 600, "latency": {"kind": "constant", "value": 0.001}}]}
)
CHARGE = {"amount": 1200, "currency": "eur", "source": "tok_visa"}


def test_every_documented_answer_conforms_and_every_broken_one_does_not() -> None:
    examples = Examples(References(DOCUMENT.data, DOCUMENT.source))
    validators = OperationValidators(DOCUMENT)
    rng = random.Random(0)
    checked = 0
    for op in DOCUMENT.operations:
        for response in op.responses:
            if response.schema is None or not response.status.isdigit():
                continue
            body = examples.of(response.schema, response.schema_pointer)
            assert validators.check_response(op, int(response.status), body) is None, (op.operation_id, body)
            assert validators.check_response(op, int(response.status), malformed(body, rng)) is not None
            checked += 1
    assert checked == 17


def _call(calls: ValidatedCalls, index: int) -> Any:
    if index % 3 == 0:
        return calls.call("listCharges", params={"limit": 10})
    if index % 3 == 1:
        return calls.call("getCharge", path_params={"charge_id": f"ch_{index}"})
    return calls.call("createCharge", json=CHARGE, idempotency_key=f"order-{index}")


@pytest.mark.timeout(60)
def test_the_validating_client_counts_exactly_the_injected_malformed_answers() -> None:
    upstream = FlakyUpstream(HEALTHY, seed=0)
    stand_in = DocumentedAnswers(upstream.app, DOCUMENT, prefix="/v1", malformed=0.2, seed=7)
    caught, ok = 0, 0
    with serve_app(stand_in) as url:
        upstream.restart()
        config = ClientConfig(name="payments", base_url=f"{url}/v1", idempotency_methods=frozenset({"POST"}))
        with ResilientClient(config) as client:
            calls = ValidatedCalls(client, DOCUMENT)
            for index in range(60):
                try:
                    _call(calls, index)
                    ok += 1
                except InvalidResponseBody as error:
                    assert error.path
                    assert error.rule in ("type", "enum")
                    caught += 1
    assert stand_in.answered == 60
    assert stand_in.injected > 0
    assert caught == stand_in.injected
    assert ok == 60 - stand_in.injected
    assert upstream.stats()["received"] == 60
    assert upstream.stats()["answers"] == {"200": 60}  # the upstream said 200; the stand-in made creates 201


def test_the_stand_in_refuses_a_fraction_out_of_range() -> None:
    with pytest.raises(ValueError, match="fraction"):
        DocumentedAnswers(FlakyUpstream(HEALTHY).app, DOCUMENT, malformed=1.5)
