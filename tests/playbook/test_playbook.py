"""The playbook core: exercising specs in the simulator, saving and loading runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.http.design import failed_items
from integration_kit.playbook.kinds.http.exercise import exercise, load_exercise, simulate_integration
from integration_kit.playbook.kinds.http.spec import load_integration
from integration_kit.playbook.project import Project
from integration_kit.playbook.run.stages import open_stage


def test_simulate_integration_uses_the_spec_policies() -> None:
    spec = load_integration("payments")
    result = simulate_integration(spec, spec.scenario("outage-and-recovery"), seed=1, duration=120)
    frame = result.to_frame()
    posts = frame[frame.event == "attempt_started"]
    assert set(posts.method) == {"POST"}
    assert posts.idempotency_key.notna().all()  # the spec puts keys on POST
    assert (frame.integration == "payments").all()
    # the spec's deadline bounds every call
    finished = frame[frame.event == "call_finished"]
    assert finished.duration.max() <= spec.client.deadline + 1e-9
    assert ("closed", "open") in result.transition_pairs


def test_exercise_is_deterministic_for_a_seed() -> None:
    a = exercise("catalog", scenario="rate-limited", seed=3, duration=30)
    b = exercise("catalog", scenario="rate-limited", seed=3, duration=30)
    assert a.as_dict() == b.as_dict()
    c = exercise("catalog", scenario="rate-limited", seed=4, duration=30)
    assert c.as_dict() != a.as_dict()


def test_exercise_all_scenarios_and_round_trip(tmp_path: Path) -> None:
    result = exercise("shipping", seed=0, duration=40)
    assert [run.scenario for run in result.runs] == ["slow-partner", "outage-and-recovery"]
    table = result.summary_table()
    assert list(table.index) == ["slow-partner", "outage-and-recovery"]
    folder = result.save(tmp_path / "run")
    events, server, summary = load_exercise(folder)
    assert len(events) == len(result.frame())
    assert set(events.scenario) == {"slow-partner", "outage-and-recovery"}
    assert summary["integration"] == "shipping"
    for name, run in zip(summary["scenarios"], result.runs, strict=True):
        assert summary["scenarios"][name]["calls"] == run.summary.calls
        assert summary["scenarios"][name]["upstream_received"] == server[server.scenario == name].received.sum()
    json.loads((folder / "summary.json").read_text())  # strict JSON: no NaN


def test_exercise_errors() -> None:
    with pytest.raises(ConfigurationError, match="mode must be"):
        exercise("catalog", mode="dream")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="no scenario 'nope'"):
        exercise("catalog", scenario="nope")
    with pytest.raises(ConfigurationError, match="run stage 02 first"):
        load_exercise("/nonexistent/run")


def test_design_helpers(tmp_path: Path) -> None:
    spec = load_integration("payments")
    assert failed_items(spec) == []  # the bundled spec passes every item, so the strict mode lets it through
    stage = open_stage("payments", str(tmp_path))
    stage.enforce_checklist()
    assert stage.write_design().read_text().startswith("# payments: integration design")
    assert open_stage("payments").out_dir == Project.discover().out / "payments" / "latest"
    assert stage.out_dir == tmp_path


def test_strict_checklist_names_failed_items(tmp_path: Path) -> None:
    path = tmp_path / "bare.toml"
    path.write_text('name = "bare"\ndescription = "x"\nbase_url = "https://bare.example"\nscenarios = ["steady"]\n')
    with pytest.raises(ConfigurationError, match=r"fails \d checklist item\(s\): Credentials come from"):
        open_stage(str(path), str(tmp_path)).enforce_checklist()
