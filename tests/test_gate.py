"""The gate: ``integration-kit run`` exits 1 when an objective fails, after writing the whole report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration_kit.playbook.cli import main
from integration_kit.playbook.spec import INTEGRATION_DIR
from integration_kit.playbook.verdict import Verdict

pytestmark = pytest.mark.slow


def test_a_bundled_integration_with_an_unmeetable_objective_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (INTEGRATION_DIR / "payments.toml").read_text()
    # The brownout: the default budget starves retries, and no budget makes a brownout 100% successful.
    text = text.replace("token_ratio = 1.0", "token_ratio = 0.1")
    text += "\n[scenario_objectives.brownout]\nsuccess_rate = 1.0\n"
    spec = tmp_path / "payments.toml"
    spec.write_text(text)
    out = tmp_path / "out"
    argv = ["run", str(spec), "--scenario", "brownout", "--out", str(out)]
    assert main(argv) == 1
    printed = capsys.readouterr()
    assert "FAILED: payments brownout  success_rate (phase 'brownout'):" in printed.out
    assert "refused" in printed.out
    assert "token_ratio of" in printed.out  # the finding says which budget would have let the retries through
    assert "objective check(s) failed" in printed.err
    (run_dir,) = (out / "payments").iterdir()  # the run folder uses the spec's name, given a path
    report = (run_dir / "report.html").read_text()
    assert report.index("FAIL") < report.index("integration design")  # the verdict opens the report
    assert "tqdm" not in report
    assert "DtypeWarning" not in report
    verdict = Verdict.load(run_dir)
    assert not verdict.passed
    assert any(f.rule == "budget_refused_retries" for f in verdict.findings)
    assert json.loads((run_dir / "summary.json").read_text())["load_model"].startswith("open-loop")
    assert main([*argv, "--no-gate"]) == 0


def test_an_unknown_scenario_fails_before_any_notebook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "payments", "--scenario", "nope", "--out", str(tmp_path)]) == 2
    assert "no scenario 'nope'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
