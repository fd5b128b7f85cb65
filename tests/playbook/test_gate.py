"""The gate: ``integration-kit run`` exits 1 when an objective fails, after writing the whole report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integration_kit.playbook.cli.app import main
from integration_kit.playbook.project import Project
from integration_kit.playbook.verdict.verdict import Verdict

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # papermill starts a kernel per stage


def test_a_bundled_integration_with_an_unmeetable_objective_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (Project.discover().integrations / "payments.toml").read_text()
    # The brownout: the default budget starves retries, and no budget makes a brownout 100% successful.
    text = text.replace("token_ratio = 1.0", "token_ratio = 0.1")
    text += "\n[scenario_objectives.brownout]\nsuccess_rate = 1.0\n"
    spec = tmp_path / "payments.toml"
    spec.write_text(text)
    out = tmp_path / "out"
    for old in ("20260101T000000000Z", "20260102T000000000Z"):
        (out / "payments" / old).mkdir(parents=True)
    argv = ["run", str(spec), "--scenario", "brownout", "--out", str(out)]
    assert main([*argv, "--keep", "1"]) == 1
    printed = capsys.readouterr()
    assert "FAILED: payments brownout  success_rate (phase 'brownout' 30-150 s):" in printed.out
    assert "refused" in printed.out
    assert "token_ratio of" in printed.out  # the finding says which budget would have let the retries through
    assert "objective check(s) failed" in printed.err
    (run_dir,) = (out / "payments").iterdir()  # the spec's name, given a path; --keep 1 deleted the old runs
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


def test_a_live_run_reports_its_load_model_and_keeps_progress_out_of_the_report(tmp_path: Path) -> None:
    from integration_kit.playbook.run.runner import run_playbook

    run = run_playbook(
        "shipping", mode="live", scenario="outage-and-recovery", duration=20, time_scale=20, out=tmp_path
    )
    assert run.ok, run.error
    assert run.verdict is not None
    assert run.verdict.load_model.startswith("open-loop: Poisson arrivals at 30 calls/s, served by a pool of up to")
    for notebook in run.out_dir.glob("0*.ipynb"):
        outputs = [o for c in json.loads(notebook.read_text())["cells"] for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("name") == "stderr"], notebook.name  # no progress bar, no warnings
    report = (run.out_dir / "report.html").read_text()
    assert "%|" not in report
    assert "IProgress" not in report
    assert "served by a pool of up to" in report
    assert not (run.out_dir / "progress.tsv").exists()
