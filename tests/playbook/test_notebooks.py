"""The stage notebooks, run by papermill with small parameters, and the CLI around them.

Each test asserts on what the notebooks recorded (the summary, the events, the charts), not just that they ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from integration_kit.playbook.cli.app import main
from integration_kit.playbook.kinds.http.exercise import load_exercise
from integration_kit.playbook.project import Project
from integration_kit.playbook.run.runner import NOTEBOOKS, notebook_path, run_playbook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # papermill starts a kernel per stage

TUNE_NOTEBOOK = "04_tune.ipynb"  # not a stage of `integration-kit run`: run on its own


def execute(notebook: str, out: Path, **parameters: object) -> nbformat.NotebookNode:
    target = out / notebook
    with notebook_path(notebook) as source:
        pm.execute_notebook(
            str(source),
            str(target),
            parameters=parameters,
            cwd=str(Project.discover().root),
            progress_bar=False,
            log_output=False,
        )
    return nbformat.read(str(target), as_version=4)


def outputs(nb: nbformat.NotebookNode) -> str:
    return "\n".join(
        o.get("text", "") if o.get("output_type") == "stream" else str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def test_every_notebook_has_one_tagged_parameters_cell_with_typed_defaults() -> None:
    for name in (*NOTEBOOKS, TUNE_NOTEBOOK):
        with notebook_path(name) as source:
            nb = nbformat.read(str(source), as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        for line in tagged[0].source.splitlines():
            assert ": " in line.split("=")[0], f"{name}: untyped parameter {line!r}"
            assert "#" in line, f"{name}: undocumented parameter {line!r}"
        assert not any("def " in c.source for c in nb.cells if c.cell_type == "code"), f"{name} defines a function"


def test_tune_notebook_charts_a_search_and_its_verdict(tmp_path: Path) -> None:
    nb = execute(TUNE_NOTEBOOK, tmp_path, integration="shipping", trials=4, seed=1, seeds=1, jobs=1)
    text = outputs(nb)
    assert "shipping: 4 candidates x 2 scenarios x 1 seeds" in text
    assert "recommended: candidate 0" in text  # the spec's own settings meet its objectives
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))  # the front
    assert "deadline_overruns" in text  # the verdict table, every objective the gate checks
    assert "outage-and-recovery" in text


def test_design_stage_renders_the_document_and_writes_it(tmp_path: Path) -> None:
    nb = execute("01_design.ipynb", tmp_path, integration="catalog", out_dir=str(tmp_path))
    text = outputs(nb)
    assert "11/11 items pass" in text
    assert (tmp_path / "design.md").read_text().startswith("# catalog: integration design")


def bare_spec(folder: Path) -> str:
    """A spec outside data/ that fails several checklist items."""
    path = folder / "bare.toml"
    path.write_text('name = "bare"\ndescription = "x"\nbase_url = "https://x.example"\nscenarios = ["steady"]\n')
    return str(path)


def test_design_stage_in_strict_mode_fails_on_a_failed_item(tmp_path: Path) -> None:
    spec = bare_spec(tmp_path)
    with pytest.raises(pm.PapermillExecutionError, match="checklist item"):
        execute("01_design.ipynb", tmp_path, integration=spec, strict=True, out_dir=str(tmp_path))
    nb = execute("01_design.ipynb", tmp_path, integration=spec, strict=False, out_dir=str(tmp_path))
    assert "[ ] Credentials come from the environment" in outputs(nb)


def test_exercise_and_charts_stages_record_and_draw(tmp_path: Path) -> None:
    execute(
        "02_exercise.ipynb",
        tmp_path,
        integration="payments",
        scenario="outage-and-recovery",
        seed=5,
        duration=100.0,
        out_dir=str(tmp_path),
    )
    events, server, summary = load_exercise(tmp_path)
    figures = summary["scenarios"]["outage-and-recovery"]
    assert summary["integration"] == "payments"
    assert figures["calls"] == int((events.event == "call_finished").sum())
    assert "closed->open" in figures["transitions"]
    assert figures["upstream_received"] == int(server.received.sum())
    nb = execute("03_charts.ipynb", tmp_path, out_dir=str(tmp_path))
    pngs = sorted(p.name for p in (tmp_path / "charts").glob("*.png"))
    assert "outage-and-recovery-breaker.png" in pngs
    assert len(pngs) == 7  # the dashboard and its six panels
    assert all((tmp_path / "charts" / p).stat().st_size > 5000 for p in pngs)
    assert any(o.get("output_type") == "display_data" for c in nb.cells for o in c.get("outputs", []))


def test_run_playbook_writes_everything_into_one_run_folder(tmp_path: Path) -> None:
    run = run_playbook("shipping", scenario="slow-partner", duration=60, out=tmp_path, run_id="r1")
    assert run.ok, run.error
    folder = tmp_path / "shipping" / "r1"
    assert run.out_dir == folder
    for name in (*NOTEBOOKS, "design.md", "events.csv", "server.csv", "summary.json", "report.html"):
        assert (folder / name).is_file(), name
    report = (folder / "report.html").read_text()
    assert "integration design" in report
    assert "slow-partner" in report
    assert json.loads((folder / "summary.json").read_text())["scenarios"]["slow-partner"]["calls"] > 0


def test_cli_run_exits_nonzero_naming_the_failed_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", bare_spec(tmp_path), "--strict", "--out", str(tmp_path), "--duration", "5"])
    assert code == 1
    err = capsys.readouterr().err
    assert "01_design.ipynb: cell" in err
    assert "ConfigurationError" in err
