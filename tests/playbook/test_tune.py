"""Tuning in virtual time: the figures, the objectives, the TOML edit, and a small deterministic optuna search."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.app import main
from integration_kit.playbook.kinds.http import judge as verdict
from integration_kit.playbook.kinds.http.exercise import exercise, simulate_integration
from integration_kit.playbook.kinds.http.figures import measure
from integration_kit.playbook.kinds.http.sim_figures import bad_phases, scenario_figures, verdict_figures
from integration_kit.playbook.kinds.http.spec import load_integration
from integration_kit.playbook.kinds.http.tune_space import TIME_WINDOW_BOUNDS
from integration_kit.playbook.tune.spec_edit import apply_settings, settings_diff, write_settings
from integration_kit.playbook.tune.study import OBJECTIVES, TuneResult, evaluate, search_bounds, tune
from integration_kit.policies.config import RetryPolicy
from integration_kit.sim.scenarios import load_scenario
from integration_kit.sim.simulate import simulate

SPEC = """# a tiny integration for tuning tests
name = "tiny"
description = "a tiny integration for tuning tests"
base_url = "https://tiny.example"
deadline = 5.0

[timeouts]
read = 2.0   # seconds

[retry]
max_attempts = 2          # keep: a comment stays
base_delay = 0.1

[exercise]
rate = 20

[[scenario]]
name = "blip"
description = "healthy, a short brownout, healthy"

[[scenario.phases]]
name = "up"
duration = 10
latency = 0.05

[[scenario.phases]]
name = "brownout"
duration = 10
latency = 0.01
errors = { 503 = 0.3 }

[[scenario.phases]]
name = "up again"
duration = 20
latency = 0.05
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SPEC)
    return path


def test_figures_of_an_outage_run() -> None:
    outage = load_scenario("outage-and-recovery")
    assert bad_phases(outage) == [(60.0, 120.0, True)]
    figures = scenario_figures(simulate(outage, rate=50, seed=1))
    assert figures.outage_load < 0.1
    assert figures.success_outside_outages > figures.success_rate
    assert 0 < figures.recovery_time <= 10 + 30 + 5  # the ramp, then at most one breaker wait, then a window
    naive = scenario_figures(simulate(outage, rate=50, seed=1, retry=RetryPolicy(), budget=None, breaker=None))
    assert naive.outage_load > 2.5
    storm = scenario_figures(simulate(load_scenario("retry-storm"), seed=1, budget=None, breaker=None))
    assert storm.overloaded_at_end
    assert math.isinf(storm.recovery_time)


@pytest.mark.parametrize(
    ("integration", "scenario"),
    [("catalog", "flapping"), ("catalog", "rate-limited"), ("shipping", "slow-partner"), ("payments", "brownout")],
)
def test_the_tuner_measures_a_run_exactly_as_the_verdict_does(integration: str, scenario: str) -> None:
    spec = load_integration(integration)
    result = simulate_integration(spec, spec.scenario(scenario), seed=3, duration=90)
    fast = verdict_figures(result, deadline=spec.client.deadline)
    framed = measure(result.to_frame(), result.server.to_frame(), result.scenario, deadline=spec.client.deadline)
    assert fast == framed
    assert fast.phases  # the comparison covered the per-phase figures too


def test_apply_settings_keeps_comments_and_adds_what_is_missing() -> None:
    edited = apply_settings(
        SPEC,
        {
            "retry.max_attempts": 3,
            "retry.max_delay": 2.5,
            "breaker.wait_in_open": 5.0,
            "breaker.ignore_statuses": [429],
            "timeouts.read": 1.0,
        },
    )
    data = tomllib.loads(edited)
    assert data["retry"] == {"max_attempts": 3, "base_delay": 0.1, "max_delay": 2.5}
    assert data["breaker"] == {"wait_in_open": 5.0, "ignore_statuses": [429]}
    assert data["timeouts"] == {"read": 1.0}
    assert "max_attempts = 3          # keep: a comment stays" in edited
    assert edited.index("[breaker]") < edited.index("[[scenario]]")  # a new table goes before the arrays
    assert data["scenario"][0]["phases"][1]["errors"] == {"503": 0.3}


def test_evaluate_judges_every_objective_per_scenario_and_can_stop_at_the_first_failure(tiny: Path) -> None:
    spec = load_integration(tiny)
    candidate = evaluate(spec, {"retry.max_attempts": 1}, seeds=(1,))
    assert set(candidate.scores) == {"blip"}
    blip = candidate.scores["blip"]
    assert set(blip.violations) == {*OBJECTIVES, "deadline_overruns"}
    assert blip.measured["amplification"] == pytest.approx(1.0, abs=0.01)  # one attempt per call
    assert blip.violations["amplification"] < 0  # met
    assert 0.6 < blip.measured["success_rate"] < 0.95  # the brownout phase, judged like the gate: missed
    assert blip.violations["success_rate"] > 0
    assert candidate.complete
    assert not candidate.feasible
    stopped = evaluate(spec, {"retry.max_attempts": 1}, seeds=(1, 2), stop_early=True)
    assert stopped.scores["blip"].seeds == 1  # the first seed failed: the second never ran
    assert not stopped.complete
    assert stopped.scores["blip"].violations == blip.violations  # the same run, judged the same
    assert evaluate(spec, {"retry.max_attempts": 3}, seeds=(1, 2), stop_early=True).feasible


@pytest.mark.slow
def test_tune_is_deterministic_and_recommends_settings_that_hold_on_unseen_seeds(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = load_integration(tiny)
    first = tune(spec, trials=8, seed=3, jobs=2, batch=4)
    again = tune(spec, trials=8, seed=3, jobs=1, batch=4)  # one process or two: the same search
    assert [c.settings for c in first.candidates] == [c.settings for c in again.candidates]

    def figures(result: TuneResult) -> list[object]:  # measured values hold NaN (nothing to measure): not ==
        return [(c.partner_load, c.p99_latency, [s.violations for s in c.scores.values()]) for c in result.candidates]

    assert figures(first) == figures(again)
    assert first.recommended is not None
    assert again.recommended is not None
    assert (first.recommended.number, first.recommended.settings) == (
        again.recommended.number,
        again.recommended.settings,
    )
    nsga = tune(spec, trials=8, seed=3, jobs=2, batch=4, sampler="nsga2")
    assert [c.settings for c in nsga.candidates] == [
        c.settings for c in tune(spec, trials=8, seed=3, jobs=1, batch=4, sampler="nsga2").candidates
    ]
    assert first.recommended is not None
    assert first.validation is not None
    assert first.validation.feasible
    assert set(first.validation_seeds).isdisjoint(first.seeds)
    assert first.front
    assert all(c.feasible for c in first.front)
    table = first.verdict_frame()
    assert set(table.scenario) == {"blip"}
    assert table["pass"].all()
    diff = settings_diff(tiny, first.changes)
    assert diff.startswith("--- a/tiny.toml")
    assert main(["tune", str(tiny), "--trials", "4", "--seed", "3", "--jobs", "1", "--write"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "tune tiny: 100%" in captured.err  # the progress bar, on stderr
    assert "Pareto front" in out
    assert "recommended: candidate" in out
    written = load_integration(tiny)  # still a valid spec after --write
    assert written.name == "tiny"


def test_bounds_narrow_the_search_and_a_bad_bound_is_refused(tiny: Path) -> None:
    spec = load_integration(tiny)
    result = tune(spec, trials=4, seed=5, jobs=1, batch=4, bounds={"retry.max_attempts": (2, 2)})
    assert {c.settings["retry.max_attempts"] for c in result.candidates} == {2}
    with pytest.raises(ConfigurationError, match=r"bounds\.retry\.max_attempts: must lie within the kit's bounds"):
        tune(spec, trials=2, bounds={"retry.max_attempts": (0, 9)})
    with pytest.raises(ConfigurationError, match=r"bounds\.retry\.nope: unknown setting"):
        tune(spec, trials=2, bounds={"retry.nope": (1, 2)})
    assert main(["tune", str(tiny), "--trials", "2", "--bound", "retry.max_attempts=two"]) == 2
    assert main(["tune", str(tiny), "--trials", "2", "--bound", "retry.max_attempts=2.5:3"]) == 2  # an integer


def test_a_tune_table_narrows_the_search(tiny: Path) -> None:
    tiny.write_text(
        SPEC.replace(
            "[exercise]",
            '[tune]\nretry.max_attempts = [2, 3]\nretry.jitter = ["full"]\n'
            "retry.base_delay = [0.05, 0.5]\n\n[exercise]",
        )
    )
    spec = load_integration(tiny)
    assert spec.tune_bounds["retry.max_attempts"] == (2, 3)
    assert spec.tune_bounds["retry.jitter"] == ("full",)
    assert spec.tune_bounds["budget.token_ratio"] == (0.05, 5.0)  # the kit's own where the table says nothing
    assert "breaker.slow_call_duration" not in spec.tune_bounds  # switched off in the spec: never searched
    assert search_bounds(spec, {"retry.max_attempts": (4, 5)})["retry.max_attempts"] == (4, 5)  # the CLI's on top
    result = tune(spec, trials=4, seed=2, jobs=1, batch=4)
    assert {c.settings["retry.jitter"] for c in result.candidates} == {"full"}
    assert all(2 <= c.settings["retry.max_attempts"] <= 3 for c in result.candidates)
    assert all(0.05 <= c.settings["retry.base_delay"] <= 0.5 for c in result.candidates)
    assert load_integration("payments").tune_bounds["breaker.window_size"] == TIME_WINDOW_BOUNDS  # seconds


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("retry.max_attempts = [5, 2]", r"tune\.retry\.max_attempts: expected low <= high, got \[5, 2\]"),
        ("retry.max_attempts = [2.5, 4]", r"tune\.retry\.max_attempts\[0\]: expected \[low, high\], two integers"),
        ("retry.max_attempts = [1, 50]", r"tune\.retry\.max_attempts: must lie within the kit's bounds \[1, 5\]"),
        ("retry.max_attempts = 3", r"tune\.retry\.max_attempts: expected a list"),
        ("retry.base_delay = [0.1]", r"tune\.retry\.base_delay: expected \[low, high\], two numbers"),
        ("retry.nope = [1, 2]", r"tune\.retry\.nope: unknown setting"),
        ("breaker.slow_call_duration = [0.5, 1]", r"tune\.breaker\.slow_call_duration: the spec switches"),
        ('retry.jitter = ["none"]', r"tune\.retry\.jitter: 'none' is not one of the choices"),
        ("retry = 3", r"tune\.retry: expected dotted settings"),
    ],
)
def test_a_bad_tune_table_names_the_field(tiny: Path, table: str, message: str) -> None:
    tiny.write_text(SPEC.replace("[exercise]", f"[tune]\n{table}\n\n[exercise]"))
    with pytest.raises(ConfigurationError, match=message) as info:
        load_integration(tiny)
    assert str(info.value).startswith(str(tiny))


@pytest.mark.slow
@pytest.mark.parametrize("integration", ["payments", "catalog", "shipping"])
def test_tune_recommends_settings_for_each_bundled_spec_that_pass_the_gate(integration: str, tmp_path: Path) -> None:
    source = load_integration(integration).path
    assert source is not None
    path = tmp_path / f"{integration}.toml"
    path.write_text(source.read_text())
    spec = load_integration(path)
    result = tune(spec, trials=12, seed=0, jobs=2)
    assert result.recommended is not None, result.verdict_frame().to_string()
    assert result.validation is not None
    assert result.validation.feasible  # every objective of every scenario, on seeds the search never used
    assert result.verdict_frame()["pass"].all()
    write_settings(path, result.changes)
    tuned = load_integration(path)
    run = exercise(tuned, seed=0)  # what `integration-kit run NAME` simulates, then judges
    judged = verdict.evaluate(tuned, run.frame(), run.server_frame())
    assert judged.passed, [c.describe() for c in judged.failures]
