"""Tuning in virtual time: the figures, the objectives, the TOML edit, and a small deterministic optuna search."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest

from integration_kit.playbook.cli import main
from integration_kit.playbook.objectives import Objectives
from integration_kit.playbook.sim_figures import bad_phases, scenario_figures
from integration_kit.playbook.spec import load_integration
from integration_kit.playbook.spec_edit import apply_settings, settings_diff
from integration_kit.playbook.tune import DEFAULT_THRESHOLDS, evaluate, thresholds_for, tune
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


def test_thresholds_are_the_verdicts_objectives(tiny: Path, tmp_path: Path) -> None:
    spec = load_integration(tiny)
    defaults = Objectives()
    got = thresholds_for(spec, spec.scenarios[0])  # no [objectives]: the verdict's documented defaults
    assert (got.success_rate, got.p99_latency, got.recovery_time) == (
        defaults.success_rate,
        defaults.p99_latency,
        defaults.recovery_time,
    )
    declared = tmp_path / "declared" / "tiny.toml"
    declared.parent.mkdir()
    declared.write_text(tiny.read_text() + "\n[objectives]\nsuccess_rate = 0.99\np99_latency = 1.5\n")
    spec = load_integration(declared)
    got = thresholds_for(spec, spec.scenarios[0])
    assert (got.success_rate, got.p99_latency) == (0.99, 1.5)
    assert thresholds_for(spec, load_scenario("retry-storm")) == DEFAULT_THRESHOLDS  # not one of the spec's


def test_apply_settings_keeps_comments_and_adds_what_is_missing() -> None:
    edited = apply_settings(
        SPEC, {"retry.max_attempts": 3, "retry.max_delay": 2.5, "breaker.wait_in_open": 5.0, "timeouts.read": 1.0}
    )
    data = tomllib.loads(edited)
    assert data["retry"] == {"max_attempts": 3, "base_delay": 0.1, "max_delay": 2.5}
    assert data["breaker"] == {"wait_in_open": 5.0}
    assert data["timeouts"] == {"read": 1.0}
    assert "max_attempts = 3          # keep: a comment stays" in edited
    assert edited.index("[breaker]") < edited.index("[[scenario]]")  # a new table goes before the arrays
    assert data["scenario"][0]["phases"][1]["errors"] == {"503": 0.3}


def test_evaluate_gives_figures_and_violations_per_scenario(tiny: Path) -> None:
    spec = load_integration(tiny)
    candidate = evaluate(spec, {"retry.max_attempts": 1}, seeds=(1,))
    assert set(candidate.figures) == {"blip"}
    assert set(candidate.violations["blip"]) == {
        "success_rate",
        "p99_latency",
        "amplification",
        "outage_load",
        "recovery_time",
    }
    blip = candidate.figures["blip"]
    assert blip.amplification == pytest.approx(1.0, abs=0.01)  # one attempt per call
    assert blip.outage_load == 0.0  # no outage phase
    assert 0.6 < blip.success_rate < 0.95
    assert candidate.violations["blip"]["amplification"] < 0  # met


@pytest.mark.slow
def test_tune_is_deterministic_and_recommends_settings_that_hold_on_unseen_seeds(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = load_integration(tiny)
    first = tune(spec, trials=8, seed=3, jobs=2, batch=4)
    again = tune(spec, trials=8, seed=3, jobs=1, batch=4)
    assert [c.settings for c in first.candidates] == [c.settings for c in again.candidates]
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
    out = capsys.readouterr().out
    assert "Pareto front" in out
    assert "recommended: candidate" in out
    written = load_integration(tiny)  # still a valid spec after --write
    assert written.name == "tiny"


@pytest.mark.slow
def test_the_tune_notebook_charts_a_search(tiny: Path, tmp_path: Path) -> None:
    import nbformat
    import papermill as pm

    from integration_kit.playbook.runner import NOTEBOOK_DIR, REPO_ROOT

    target = tmp_path / "04_tune.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK_DIR / "04_tune.ipynb"),
        str(target),
        parameters={"integration": str(tiny), "trials": 4, "seed": 1, "jobs": 1},
        cwd=str(REPO_ROOT),
        progress_bar=False,
    )
    nb = nbformat.read(str(target), as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    texts = "\n".join(o.get("text", "") or str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "tiny: 4 candidates x 1 scenarios x 2 seeds" in texts
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert "success_rate" in texts  # the verdict table


def test_bounds_narrow_the_search_and_a_bad_bound_is_refused(tiny: Path) -> None:
    spec = load_integration(tiny)
    result = tune(spec, trials=4, seed=5, jobs=1, batch=4, bounds={"retry.max_attempts": (2, 2)})
    assert {c.settings["retry.max_attempts"] for c in result.candidates} == {2}
    with pytest.raises(ValueError, match=r"retry\.max_attempts must lie within"):
        tune(spec, trials=2, bounds={"retry.max_attempts": (0, 9)})
    with pytest.raises(ValueError, match="unknown setting"):
        tune(spec, trials=2, bounds={"retry.nope": (1, 2)})
    assert main(["tune", str(tiny), "--trials", "2", "--bound", "retry.max_attempts=two"]) == 2
