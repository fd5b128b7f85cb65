"""Scenarios: loading and validation (file, field, reason), sampling statistics, ramps, determinism."""

from __future__ import annotations

import math
import random
import statistics
from pathlib import Path
from typing import Any

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.sim.scenarios import (
    ErrorMix,
    FaultKind,
    Latency,
    Phase,
    Scenario,
    bundled_scenarios,
    load_scenario,
)

BUNDLED = {
    "brownout",
    "flapping",
    "github-limits",
    "ietf-quota",
    "outage-and-recovery",
    "rate-limited",
    "retry-storm",
    "shopify-bucket",
    "slack-tiers",
    "slow-partner",
    "steady",
    "stripe-locks",
}


def one_phase(**phase: Any) -> dict[str, Any]:
    return {"name": "t", "phases": [{"duration": 10, **phase}]}


def test_the_bundle_loads_and_every_scenario_is_short() -> None:
    scenarios = bundled_scenarios()
    assert set(scenarios) == BUNDLED
    for name, scenario in scenarios.items():
        assert scenario.name == name
        assert scenario.description
        assert 60 <= scenario.duration <= 300


def test_load_scenario_by_name_and_by_path(tmp_path: Path) -> None:
    assert load_scenario("steady").phases[0].name == "steady"
    path = tmp_path / "mine.toml"
    path.write_text("[[phases]]\nduration = 5\nlatency = 0.1\nerrors = { 503 = 0.5 }\n")
    mine = load_scenario(path)
    assert mine.name == "mine"  # the file's stem
    assert mine.phases[0].latency == Latency.constant(0.1)
    assert mine.phases[0].errors.http_503 == 0.5


def test_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"no scenario named 'nope' in .* \(available: brownout, flapping"):
        load_scenario("nope")


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"name": "t"}, "phases", "non-empty array"),
        (one_phase(), None, None),
        ({"name": "t", "phases": [{"latency": 0.1}]}, r"phases\[0\]\.duration", "is required"),
        (one_phase(duration=-1), r"phases\[0\]\.duration", "must be > 0"),
        (one_phase(latency={"kind": "normal"}), r"phases\[0\]\.latency\.kind", "must be one of constant"),
        (one_phase(latency={"kind": "lognormal", "median": 0.1}), r"phases\[0\]\.latency\.p99", "is required"),
        (
            one_phase(latency={"kind": "lognormal", "median": 0.5, "p99": 0.1}),
            r"phases\[0\]\.latency\.p99",
            r"must be >= median",
        ),
        (one_phase(latency={"kind": "uniform", "low": 2, "high": 1}), r"phases\[0\]\.latency\.high", ">= low"),
        (one_phase(latency={"kind": "empirical", "samples": []}), r"phases\[0\]\.latency\.samples", "at least"),
        (one_phase(latency={"kind": "constant", "value": "x"}), r"phases\[0\]\.latency\.value", "finite number"),
        (one_phase(errors={"503": 1.5}), r"phases\[0\]\.errors\.503", r"must be a probability in \[0, 1\]"),
        (one_phase(errors={"418": 0.1}), r"phases\[0\]\.errors\.418", "unknown key"),
        (one_phase(errors={"503": 0.6, "500": 0.6}), r"phases\[0\]\.errors:", "sum to at most 1"),
        (one_phase(ramp=20), r"phases\[0\]\.ramp", "must be <= duration"),
        (one_phase(ramp=5), r"phases\[0\]\.ramp", "no previous phase"),
        (one_phase(colour="red"), r"phases\[0\]\.colour", "unknown key"),
        ({"name": "", "phases": [{"duration": 1}]}, "name", "non-empty string"),
    ],
)
def test_validation_names_the_source_the_field_and_the_reason(
    data: dict[str, Any], field: str | None, reason: str | None
) -> None:
    if field is None:  # valid: the defaults fill the phase in
        (phase,) = Scenario.from_mapping(data, source="spec.toml").phases
        assert phase.duration == 10
        assert phase.latency == Latency.constant(0.02)
        assert phase.errors.total == 0.0
        assert phase.ramp == 0.0
        return
    with pytest.raises(ConfigurationError, match=rf"^spec\.toml: {field}.*{reason}"):
        Scenario.from_mapping(data, source="spec.toml")


def test_a_broken_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[phases]]\nduration = \n")
    with pytest.raises(ConfigurationError, match=r"broken\.toml: not valid TOML"):
        load_scenario(path)
    path.write_text("[[phases]]\nduration = 5\nerrors = { 503 = 2 }\n")
    with pytest.raises(ConfigurationError, match=r"broken\.toml: phases\[0\]\.errors\.503: must be a probability"):
        load_scenario(path)


def test_the_error_mix_is_sampled_at_its_probabilities() -> None:
    scenario = Scenario("mix", (Phase(10, errors=ErrorMix(http_503=0.2, http_429=0.1, refused=0.05, hang=0.05)),))
    rng = random.Random(3)
    n = 40_000
    decisions = [scenario.decide(1.0, rng) for _ in range(n)]
    share = {
        key: sum(1 for d in decisions if (d.status or d.fault.value) == key) / n
        for key in (200, 503, 429, "refuse", "hang")
    }
    assert share[503] == pytest.approx(0.2, abs=0.01)
    assert share[429] == pytest.approx(0.1, abs=0.01)
    assert share["refuse"] == pytest.approx(0.05, abs=0.006)
    assert share["hang"] == pytest.approx(0.05, abs=0.006)
    assert share[200] == pytest.approx(0.6, abs=0.01)
    assert all(d.latency == math.inf for d in decisions if d.fault is FaultKind.HANG)
    assert all(d.latency == 0 for d in decisions if d.fault is FaultKind.REFUSE)
    assert all(d.retry_after == 1.0 for d in decisions if d.status == 429)
    assert all(d.retry_after is None for d in decisions if d.status != 429)


def test_latency_distributions_have_the_stated_shape() -> None:
    rng = random.Random(11)
    lognormal = sorted(Latency.lognormal(0.1, 0.8).sample(rng) for _ in range(40_000))
    assert statistics.median(lognormal) == pytest.approx(0.1, rel=0.03)
    assert lognormal[int(0.99 * len(lognormal))] == pytest.approx(0.8, rel=0.08)
    uniform = [Latency.uniform(1, 3).sample(rng) for _ in range(10_000)]
    assert min(uniform) >= 1
    assert max(uniform) <= 3
    assert statistics.fmean(uniform) == pytest.approx(2, abs=0.03)
    assert Latency.constant(0.25).sample(rng) == 0.25
    empirical = {Latency.empirical([0.1, 0.2, 0.7]).sample(rng) for _ in range(200)}
    assert empirical == {0.1, 0.2, 0.7}


def test_phases_follow_in_time_and_the_last_one_goes_on() -> None:
    scenario = load_scenario("outage-and-recovery")
    assert [scenario.phase_at(t).name for t in (0, 59.9, 60, 119.9, 120, 500)] == [
        "healthy",
        "healthy",
        "outage",
        "outage",
        "recovery",
        "recovery",
    ]


def test_a_ramp_blends_error_rates_and_latency_linearly() -> None:
    scenario = Scenario(
        "ramp",
        (
            Phase(10, latency=Latency.constant(0.0), errors=ErrorMix(http_503=1.0)),
            Phase(10, latency=Latency.constant(1.0), ramp=10),
        ),
    )
    rng = random.Random(5)
    for t, expected in ((10.0, 1.0), (12.5, 0.75), (15.0, 0.5), (19.0, 0.1)):
        decisions = [scenario.decide(t, rng) for _ in range(8000)]
        failing = sum(d.status == 503 for d in decisions) / len(decisions)
        assert failing == pytest.approx(expected, abs=0.02), t
        assert decisions[0].latency == pytest.approx(1 - expected)
    assert scenario.decide(20.0, rng).status == 200


def test_sampling_is_deterministic_for_a_seed() -> None:
    scenario = load_scenario("brownout")
    times = [i * 0.37 for i in range(500)]
    first = [scenario.decide(t, random.Random(9)) for t in times]
    again = [scenario.decide(t, random.Random(9)) for t in times]
    other = [scenario.decide(t, random.Random(10)) for t in times]
    assert first == again
    assert first != other


def test_inline_mapping_with_a_default_name() -> None:
    scenario = Scenario.from_mapping(
        {"phases": [{"duration": 3, "errors": {"429": 1.0, "retry_after": -1}}]}, name="inline-429"
    )
    decision = scenario.decide(0.0, random.Random(0))
    assert scenario.name == "inline-429"
    assert decision.status == 429
    assert decision.retry_after is None
