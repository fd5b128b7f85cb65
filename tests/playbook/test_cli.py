"""The command line: demo, simulate (with and without an integration spec, writing events) and errors."""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path

import pytest

from integration_kit.events import FRAME_COLUMNS
from integration_kit.playbook.cli.app import main
from integration_kit.playbook.cli.simulate import run_simulation


def test_demo_still_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--calls", "300"]) == 0
    assert "load amplification" in capsys.readouterr().out


def test_simulate_prints_the_summary_and_the_transitions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    argv = ["simulate", "--scenario", "outage-and-recovery", "--rate", "20", "--seed", "1", "--events", str(events)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for label in ("calls", "success rate", "load amplification", "latency p50 / p95 / p99", "partner received"):
        assert label in out
    assert "closed -> open  (failure_rate" in out
    assert "half_open -> closed  (probes_succeeded)" in out
    with events.open() as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == FRAME_COLUMNS
    assert len(rows) > 1000


def test_simulate_is_deterministic_for_a_seed() -> None:
    first = run_simulation("flapping", rate=10, seed=5)
    again = run_simulation("flapping", rate=10, seed=5)
    assert first.summary == again.summary
    assert first.transition_lines() == again.transition_lines()


def test_simulate_with_an_integration_uses_its_policies() -> None:
    from integration_kit.playbook.kinds.http.spec import load_integration

    spec = load_integration("payments")
    result = run_simulation("brownout", integration="payments", seed=1, duration=30)
    assert result.recorder.events[0].integration == "payments"
    assert result.calls_started == pytest.approx(spec.exercise.rate * 30, rel=0.25)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--scenario", "nope"], "no scenario named 'nope'"),
        (["simulate", "--scenario", "steady", "--integration", "nope"], "no integration named 'nope'"),
    ],
)
def test_simulate_reports_configuration_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_list_shows_the_bundled_integrations_of_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    width = len("order-events-consumer")  # names are aligned to the longest
    for name in ("payments", "catalog", "shipping"):
        assert f"\n{name:<{width}}  [http] " in "\n" + out
    assert f"\n{'order-events-consumer':<{width}}  [queue] " in "\n" + out
    assert f"\n{'github-events':<{width}}  [webhook-in] " in "\n" + out
    assert f"\n{'order-events':<{width}}  [webhook-out] " in "\n" + out


@pytest.mark.parametrize(("name", "kind"), [("order-events-consumer", "queue"), ("github-events", "webhook-in")])
def test_check_runs_the_checklist_of_every_kind(name: str, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", name]) == 0
    out = capsys.readouterr().out
    assert f"{name} ({kind}): " in out
    assert "[x] " in out


@pytest.mark.parametrize(
    "argv",
    [
        ["alerts", "order-events-consumer"],
        ["dashboard", "github-events"],
        ["tune", "order-events-consumer", "--trials", "2"],
        ["simulate", "--integration", "order-events", "--scenario", "steady"],
    ],
)
def test_http_only_commands_refuse_other_kinds_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "spec, and this needs an HTTP spec" in err
    assert "Traceback" not in err


def test_check_passes_for_a_bundled_spec_and_fails_for_a_bare_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["check", "payments"]) == 0
    assert "12/12 checklist items pass" in capsys.readouterr().out  # 11 + response validation (it names openapi)
    bare = tmp_path / "bare.toml"
    bare.write_text('name = "bare"\ndescription = "x"\nbase_url = "https://x.example"\nscenarios = ["steady"]\n')
    assert main(["check", str(bare)]) == 1
    assert "[ ] Credentials come from the environment" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "nope"], "no integration named 'nope'"),
        (["check", "../../etc/passwd"], "not an integration name"),
        (["run", "nope"], "no integration named 'nope'"),
        (["run", "../x"], "not an integration name"),
        (["run", "payments", "--base-url", "https://x.example"], "--base-url needs --mode live"),
    ],
)
def test_cli_errors_are_clear_and_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_live_run_against_a_real_service_needs_its_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYMENTS_API_TOKEN", raising=False)
    assert main(["run", "payments", "--mode", "live", "--base-url", "https://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "PAYMENTS_API_TOKEN" in err


def test_init_writes_a_project_file_that_reads_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "."]) == 0
    text = (tmp_path / "integration-kit.toml").read_text()
    assert tomllib.loads(text) == {"integrations": "integrations", "scenarios": "scenarios", "out": "out"}
    first, *rest = text.splitlines()
    assert first.startswith("# An integration-kit project")
    assert all(not line.lstrip().startswith("#") for line in rest)  # no stray header left as a comment line
