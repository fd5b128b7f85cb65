"""``integration-kit clean``: keep the newest runs of each integration, delete the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.app import main
from integration_kit.playbook.run.runs import clean_runs, run_folders


def make_runs(out: Path, name: str, count: int) -> list[Path]:
    folders = [out / name / f"2026113{day}T120000000Z" for day in range(count)]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "events.csv").write_text("x\n")
    (out / name / "latest").mkdir()
    return folders


def test_clean_keeps_the_newest_runs_per_integration(tmp_path: Path) -> None:
    payments = make_runs(tmp_path, "payments", 5)
    catalog = make_runs(tmp_path, "catalog", 2)
    deleted = clean_runs(tmp_path, keep=3)
    assert sorted(deleted) == sorted(payments[:2])
    assert run_folders(tmp_path, "payments") == payments[2:]
    assert run_folders(tmp_path, "catalog") == catalog
    assert (tmp_path / "payments" / "latest").is_dir()  # not a run id: never deleted
    with pytest.raises(ConfigurationError, match="keep must be an integer >= 0"):
        clean_runs(tmp_path, keep=-1)


def test_clean_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_runs(tmp_path, "payments", 4)
    make_runs(tmp_path, "catalog", 4)
    assert main(["clean", "payments", "--keep", "1", "--out", str(tmp_path)]) == 0
    assert "3 run folder(s) deleted" in capsys.readouterr().out
    assert len(run_folders(tmp_path, "payments")) == 1
    assert len(run_folders(tmp_path, "catalog")) == 4
