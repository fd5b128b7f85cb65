"""Issue 27's playbook item: a scenario's ``malformed`` answers, counted in the simulator and caught live by the
validating client over the partner's OpenAPI document, and judged by the verdict's ``malformed_accepted``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.tables import run_table
from integration_kit.playbook.kinds.http.design import checklist, design_document
from integration_kit.playbook.kinds.http.exercise import exercise
from integration_kit.playbook.kinds.http.judge import judge_run
from integration_kit.playbook.kinds.http.live import live_exercise
from integration_kit.playbook.kinds.http.spec import IntegrationSpec
from integration_kit.sim.keyed import KeyedRandom
from integration_kit.sim.scenarios import (
    FAULT_ORDER,
    Decision,
    ErrorMix,
    FaultKind,
    Latency,
    Phase,
    Scenario,
    load_scenario,
)
from integration_kit.sim.simulate import simulate

PAYMENTS = Path(__file__).resolve().parents[2] / "data" / "openapi" / "payments.yaml"
MALFORMED = FAULT_ORDER.index("malformed")


def quick_scenario(malformed: float, duration: float = 30) -> dict[str, Any]:
    """A healthy, fast partner whose ``malformed`` fraction of answers break the document."""
    return {
        "name": "quick-malformed",
        "description": "a fast partner that breaks its schema",
        "phases": [
            {"name": "ok", "duration": duration, "latency": {"kind": "constant", "value": 0.01}},
            {"name": "bad", "duration": duration, "latency": 0.01, "errors": {"malformed": malformed}},
        ],
    }


def spec_data(**extra: Any) -> dict[str, Any]:
    """A charges integration over the payments partner, exercised on its ``createCharge`` operation."""
    return {
        "name": "charges",
        "description": "charges through the payments partner",
        "base_url": "https://api.payments.example/v1",
        "idempotency_methods": ["POST"],
        "deadline": 8.0,
        "timeouts": {"connect": 2.0, "read": 2.5, "write": 5.0, "pool": 1.0},
        "scenario": [quick_scenario(0.2)],
        "exercise": {"method": "POST", "path": "/charges", "rate": 10},
        "openapi": str(PAYMENTS),
        **extra,
    }


def spec_at(tmp_path: Path, **extra: Any) -> IntegrationSpec:
    return IntegrationSpec.from_mapping(spec_data(**extra), source="charges.toml", path=tmp_path / "charges.toml")


# -- the scenario model ----------------------------------------------------------------------------------------


def test_a_malformed_draw_is_a_200_marked_malformed_and_old_mixes_draw_as_before() -> None:
    scenario = Scenario.from_mapping(quick_scenario(1.0))
    rng = KeyedRandom(3)
    rng.rekey_request(1, 1)
    assert scenario.decide(10.0, rng) == Decision(FaultKind.RESPOND, 200, 0.01, None)  # the healthy phase
    rng.rekey_request(1, 1)
    assert scenario.decide(40.0, rng) == Decision(FaultKind.RESPOND, 200, 0.01, None, malformed=True)
    assert scenario.has_malformed
    assert not load_scenario("steady").has_malformed
    # a mix that gives no malformed fraction draws exactly what it drew before the fault existed
    old = Scenario("old", (Phase(10, errors=ErrorMix(http_503=0.2, hang=0.1)),))
    new = Scenario("new", (Phase(10, errors=ErrorMix(http_503=0.2, hang=0.1, malformed=0.0)),))
    a, b = KeyedRandom(5), KeyedRandom(5)
    for n in range(1, 500):
        a.rekey_request(n, 1)
        b.rekey_request(n, 1)
        assert old.draw(1.0, a) == new.draw(1.0, b)


@pytest.mark.parametrize(
    ("value", "reason"),
    [(1.5, r"probability in \[0, 1\]"), (-0.1, ">= 0"), ("often", "finite number"), (True, "finite number")],
)
def test_a_bad_malformed_fraction_names_the_field(value: object, reason: str) -> None:
    data = {"name": "x", "phases": [{"duration": 10, "errors": {"malformed": value}}]}
    with pytest.raises(ConfigurationError, match=reason) as caught:
        Scenario.from_mapping(data, source="x.toml")
    assert caught.value.field == "phases[0].errors.malformed"


def test_the_bundled_malformed_answers_scenario_is_a_steady_partner_with_a_few_percent_malformed() -> None:
    scenario = load_scenario("malformed-answers")
    assert [p.errors.malformed for p in scenario.phases] == [0.03]
    assert scenario.phases[0].errors.total < 0.05


# -- the simulator -----------------------------------------------------------------------------------------------


def test_the_simulator_counts_exactly_the_malformed_answers_it_drew() -> None:
    scenario = Scenario("bad", (Phase(30, Latency.constant(0.02), ErrorMix(malformed=0.1)),))
    result = simulate(scenario, rate=50, seed=4, breaker=None, budget=None)
    # every call is one attempt (nothing else fails): replay the keyed draws of attempt 1 of each call
    rng = KeyedRandom(4)
    expected = 0
    for number in range(1, result.calls_started + 1):
        rng.rekey_request(number, 1)
        expected += scenario.draw(1.0, rng)[1] == MALFORMED
    assert result.malformed == expected
    assert 0.05 * result.calls_started < expected < 0.15 * result.calls_started
    assert result.summary.success_rate == 1.0  # the engine saw 200s: validation happens after the call
    assert simulate(load_scenario("steady"), rate=50, duration=10, seed=4).malformed == 0


def test_simulated_exercise_counts_them_caught_when_the_spec_validates_and_accepted_when_not(tmp_path: Path) -> None:
    validating = exercise(spec_at(tmp_path), mode="simulate", seed=1).runs[0]
    assert validating.malformed_caught > 0
    assert validating.malformed_accepted == 0
    trusting = exercise(spec_at(tmp_path, validate_responses=False), mode="simulate", seed=1).runs[0]
    assert trusting.malformed_accepted == validating.malformed_caught  # the same keyed draws
    assert trusting.malformed_caught == 0


def test_the_verdict_judges_malformed_accepted(tmp_path: Path) -> None:
    def checks(folder: str, **extra: Any) -> list[Any]:
        spec = spec_at(tmp_path, **extra)
        exercise(spec, mode="simulate", seed=1).save(tmp_path / folder)
        verdict = judge_run(spec, tmp_path / folder)
        return [c for c in verdict.checks if c.objective == "malformed_accepted"]

    (validating,) = checks("validating")  # validate_responses defaults to true with openapi: judged against 0
    assert (validating.target, validating.measured, validating.passed) == (0.0, 0.0, True)
    assert checks("trusting", validate_responses=False) == []  # not declared and not validating: not judged
    (declared,) = checks("declared", validate_responses=False, objectives={"malformed_accepted": 0})
    assert declared.measured > 0
    assert not declared.passed
    summary = (tmp_path / "declared" / "summary.json").read_text()
    assert '"malformed_accepted"' in summary


# -- live ----------------------------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_live_the_validating_client_catches_exactly_the_injected_malformed_answers(tmp_path: Path) -> None:
    spec = spec_at(tmp_path)
    scenario = spec.scenario("quick-malformed")
    # x5: the read timeout is 0.5 s of real time, which a loaded machine's answers keep (at x20, 0.125 s: a read cut
    # short by the machine, not by the partner, left one injected answer neither caught nor accepted)
    result = live_exercise(spec, scenario, seed=2, time_scale=5)
    assert result.malformed_injected > 5
    assert result.malformed_caught == result.malformed_injected
    assert result.malformed_accepted == 0
    # the calls that met none succeeded: every documented answer passed validation
    assert result.summary.calls - result.summary.succeeded <= 0.02 * result.summary.calls


@pytest.mark.timeout(120)
def test_live_without_validation_the_malformed_answers_reach_the_caller_and_the_verdict_says_so(
    tmp_path: Path,
) -> None:
    spec = spec_at(tmp_path, validate_responses=False, objectives={"malformed_accepted": 0})
    run = exercise(spec, mode="live", seed=2, time_scale=20)
    assert run.runs[0].malformed_caught == 0
    assert run.runs[0].malformed_accepted > 5
    assert "malformed_accepted" in run.summary_table().columns
    run.save(tmp_path / "live")
    (check,) = [c for c in judge_run(spec, tmp_path / "live").checks if c.objective == "malformed_accepted"]
    assert check.measured == run.runs[0].malformed_accepted
    assert not check.passed


# -- the spec --------------------------------------------------------------------------------------------------


def test_the_spec_resolves_its_document_and_validates_by_default(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "api.yaml").write_text(PAYMENTS.read_text())
    spec = spec_at(tmp_path, openapi="docs/api.yaml")
    assert spec.openapi == (tmp_path / "docs" / "api.yaml").resolve()
    assert spec.validate_responses
    assert not spec_at(tmp_path, validate_responses=False).validate_responses
    without = IntegrationSpec.from_mapping({k: v for k, v in spec_data().items() if k != "openapi"})
    assert without.openapi is None
    assert not without.validate_responses


def test_the_checklist_makes_response_validation_a_real_check_when_a_document_is_named(tmp_path: Path) -> None:
    def item(spec: IntegrationSpec) -> list[Any]:
        return [i for i in checklist(spec) if i.key == "response_validation"]

    (on,) = item(spec_at(tmp_path))
    assert on.passed
    assert "payments.yaml" in on.detail
    (off,) = item(spec_at(tmp_path, validate_responses=False))
    assert not off.passed
    assert item(IntegrationSpec.from_mapping({k: v for k, v in spec_data().items() if k != "openapi"})) == []
    assert "Responses are validated after receiving" in design_document(spec_at(tmp_path))
    assert "| malformed_accepted | 0 |" in design_document(spec_at(tmp_path))


@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        ({"openapi": "nowhere.yaml"}, "openapi", "no such file"),
        ({"openapi": 3}, "openapi", "must be the path"),
        ({"openapi": ""}, "openapi", "must be the path"),
        ({"validate_responses": "yes"}, "validate_responses", "true or false"),
        ({"objectives": {"malformed_accepted": -3}}, "objectives.malformed_accepted", "count >= 0"),
    ],
)
def test_bad_openapi_settings_name_the_field(tmp_path: Path, extra: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason) as caught:
        spec_at(tmp_path, **extra)
    assert caught.value.field == field


def test_validate_responses_without_a_document_is_refused() -> None:
    data = {k: v for k, v in spec_data(validate_responses=True).items() if k != "openapi"}
    with pytest.raises(ConfigurationError, match="needs openapi") as caught:
        IntegrationSpec.from_mapping(data)
    assert caught.value.field == "validate_responses"


def test_a_live_run_of_an_operation_the_document_lacks_is_a_configuration_error(tmp_path: Path) -> None:
    spec = spec_at(tmp_path, exercise={"method": "DELETE", "path": "/charges", "rate": 10})
    with pytest.raises(ConfigurationError, match="not an operation") as caught:
        live_exercise(spec, spec.scenario("quick-malformed"), duration=1, time_scale=20)
    assert caught.value.field == "exercise.path"


def test_the_run_table_shows_malformed_caught_and_accepted_with_their_definitions() -> None:
    rows: list[tuple[str, str, dict[str, object]]] = [
        ("payments", "malformed-answers", {"calls": 10, "malformed_caught": 3, "malformed_accepted": 1}),
        ("payments", "steady", {"calls": 10}),
    ]
    table = run_table(rows)
    assert "payments malformed-answers: malformed caught 3, accepted 1" in table
    assert "malformed caught: calls whose 2xx answer broke" in table
    assert "malformed" not in run_table(rows[1:])  # runs that met none print as before
