"""A bad value nested in a spec is reported by the path the user wrote (``retry.base_delay: ...``), in every kind,
never by the class that checked it (``RetryPolicy.base_delay``), which the user never wrote."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.files import is_name, spec_path
from integration_kit.playbook.kinds.table import load_spec
from integration_kit.playbook.project import Project
from integration_kit.playbook.run.runs import run_folders

CASES = [
    ("payments", r"^base_delay = .*", "base_delay = -3", "retry.base_delay: must be a finite number >= 0, got -3"),
    ("github-events", r"^base_delay = .*", "base_delay = -3", "handler.base_delay: must be a number >= 0, got -3"),
    ("market-prices", r"^stale_after = .*", "stale_after = -1.0", "keepalive.stale_after: must be a finite number > 0"),
    ("market-prices", r'^jitter = "full"', 'jitter = "fancy"', "reconnect.jitter: must be one of 'none', 'full'"),
    ("inventory", r"^failure_rate_threshold = .*", "failure_rate_threshold = 5", "breaker.failure_rate_threshold: "),
    ("order-events-consumer", r"^max_attempts = 5", "max_attempts = 0", "queue.max_attempts: must be >= 1, got 0"),
]


@pytest.mark.parametrize(("name", "line", "bad", "expected"), CASES, ids=[f"{c[0]}:{c[2]}" for c in CASES])
def test_a_nested_error_names_the_path_the_user_wrote(
    tmp_path: Path, name: str, line: str, bad: str, expected: str
) -> None:
    text = (Project.discover().integrations / f"{name}.toml").read_text()
    changed, count = re.subn(line, bad, text, count=1, flags=re.MULTILINE)
    assert count == 1
    (tmp_path / f"{name}.toml").write_text(changed)
    with pytest.raises(ConfigurationError) as caught:
        load_spec(tmp_path / f"{name}.toml")
    message = str(caught.value)
    assert expected in message
    assert not re.search(r"\b[A-Z][A-Za-z]+(Policy|Config|Scenario)\.", message), message


def test_a_reason_keeps_a_message_that_does_not_begin_with_its_field() -> None:
    error = ConfigurationError("RetryPolicy.base_delay must be a finite number >= 0, got -3", field="retry.max_delay")
    assert error.reason == error.message
    assert ConfigurationError("base_delay: too long", field="retry.base_delay").reason == "too long"
    assert ConfigurationError("anything", field=None).reason == "anything"


@pytest.mark.parametrize("name", ["payments\n", "payments\r\n", "steady\n"])
def test_a_name_with_a_trailing_line_break_is_no_name(tmp_path: Path, name: str) -> None:
    """Names become file names: one ending in a line break is refused everywhere a name is read (a ``$`` in the
    pattern matched before a final newline, so ``is_name("payments\\n")`` was true)."""
    assert not is_name(name)
    with pytest.raises(ConfigurationError, match="is not an integration name"):
        spec_path(name)
    text = (Project.discover().integrations / "payments.toml").read_text()
    (tmp_path / "payments.toml").write_text(text.replace('name = "payments"', f"name = {name!r}".replace("'", '"'), 1))
    with pytest.raises(ConfigurationError) as caught:
        load_spec(tmp_path / "payments.toml")
    assert caught.value.field == "name"


def test_a_run_folder_with_a_trailing_line_break_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "payments" / "20261207T031500123Z").mkdir(parents=True)
    (tmp_path / "payments" / "20261207T031500124Z\n").mkdir()
    assert [p.name for p in run_folders(tmp_path, "payments")] == ["20261207T031500123Z"]
