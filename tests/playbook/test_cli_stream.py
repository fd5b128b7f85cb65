"""``integration-kit simulate --stream DIR``: the events land in CSV files, the summary is unchanged."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from integration_kit.playbook.cli.app import main


def _rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1  # less the header


def test_stream_writes_one_csv_per_kind_and_the_summary_counts_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "events" / "run"  # created, parents too
    argv = ["simulate", "--scenario", "outage-and-recovery", "--rate", "20", "--seed", "1", "--stream", str(folder)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    calls = re.search(r"^calls\s+([\d,]+)$", out, re.MULTILINE)
    assert calls is not None
    assert "closed -> open  (failure_rate" in out
    assert f"streamed to {folder}" in out
    for kind in ("attempt_started", "attempt_finished", "call_finished"):
        assert (folder / f"events-{kind}.csv").is_file()
    assert _rows(folder / "events-call_finished.csv") == int(calls.group(1).replace(",", "")) > 1000


def test_stream_gives_the_same_summary_as_keeping_the_events(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["simulate", "--scenario", "brownout", "--integration", "payments", "--duration", "20", "--seed", "3"]
    assert main(argv) == 0
    kept = _summary(capsys.readouterr().out)
    assert main([*argv, "--stream", str(tmp_path)]) == 0
    assert _summary(capsys.readouterr().out) == kept


def _summary(out: str) -> list[str]:
    """The printed summary table and transitions, without the wall time or where the events went."""
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("calls "))
    return [line for line in lines[first:] if line and "streamed to" not in line]


def test_stream_and_events_are_exclusive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["simulate", "--scenario", "steady", "--stream", str(tmp_path), "--events", str(tmp_path / "e.csv")]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_stream_into_a_folder_that_cannot_be_made_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    assert main(["simulate", "--scenario", "steady", "--stream", str(tmp_path / "a-file" / "events")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("integration-kit: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--duration", "300"], "more than 2,000,000 simulated calls; lower --rate or --duration, or --stream"),
        (["--duration", "4000", "--stream", "STREAM"], "more than 36,000,000 simulated calls; lower --rate or"),
    ],
)
def test_stream_raises_the_size_limit(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    extra = [str(tmp_path) if arg == "STREAM" else arg for arg in extra]
    assert main(["simulate", "--scenario", "steady", "--rate", "10000", *extra]) == 2
    assert message in capsys.readouterr().err
