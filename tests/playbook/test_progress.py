"""Live-run progress on the console: a bar on a terminal, one line per scenario anywhere else (a log file, CI).

The notebook side writes the progress file with :func:`progress_to_file`; :class:`ConsoleProgress` reads it when it
closes as well as while open, so each test writes the file first and then opens and closes the console view: no
waiting on its polling thread.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from integration_kit.playbook.run.progress import ConsoleProgress, _LineView, progress_to_file, read_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _play(path: Path, *fractions: tuple[str, float]) -> None:
    report = progress_to_file(path)
    for scenario, fraction in fractions:
        report(scenario, fraction)


def test_off_a_terminal_each_scenario_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "progress.tsv"
    _play(path, ("steady", 0.5), ("steady", 1.0), ("outage", 0.7), ("outage", 1.0), ("brownout", 0.4))
    log = io.StringIO()
    with ConsoleProgress(path, 3, stream=log):
        pass
    lines = log.getvalue().splitlines()
    assert len(lines) == 3, log.getvalue()
    assert re.fullmatch(r"live run: steady \(1/3\) done in \d+\.\d s", lines[0])
    assert re.fullmatch(r"live run: outage \(2/3\) done in \d+\.\d s", lines[1])
    assert lines[2] == "live run: brownout (3/3) stopped at 40%"  # the run ended before the scenario did
    assert "\r" not in log.getvalue()
    assert "%/s" not in log.getvalue()


def test_many_updates_still_make_one_line_per_scenario() -> None:
    """The regression: a non-terminal log received one bar frame per update (about 1,280 in a live run)."""
    log = io.StringIO()
    view = _LineView(2, log)
    for step in range(1, 501):  # scenario "a", then "b", each reported 250 times
        done = {"a": min(1.0, step / 250)}
        if step > 250:
            done["b"] = (step - 250) / 250
        view.update(done)
    view.close()
    assert [line.split(" done")[0] for line in log.getvalue().splitlines()] == [
        "live run: a (1/2)",
        "live run: b (2/2)",
    ]


def test_a_scenario_that_stops_short_of_100_percent_ends_when_the_next_starts() -> None:
    log = io.StringIO()
    view = _LineView(2, log)
    view.update({"a": 0.98})
    assert log.getvalue() == ""
    view.update({"a": 0.99, "b": 0.01})
    assert log.getvalue().startswith("live run: a (1/2) done in ")
    view.close()
    assert log.getvalue().splitlines()[1] == "live run: b (2/2) stopped at 1%"


def test_on_a_terminal_it_draws_a_bar(tmp_path: Path) -> None:
    path = tmp_path / "progress.tsv"
    _play(path, ("steady", 0.5))
    terminal = _Terminal()
    with ConsoleProgress(path, 2, stream=terminal):
        pass
    drawn = terminal.getvalue()
    assert "\r" in drawn  # tqdm redraws in place
    assert "steady" in drawn
    assert "done in" not in drawn


def test_the_progress_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "progress.tsv"
    _play(path, ("a", 0.25), ("a", 0.1), ("b", 1.0))  # a fraction never goes back
    assert read_progress(path) == {"a": 0.25, "b": 1.0}
    assert read_progress(tmp_path / "missing.tsv") == {}
