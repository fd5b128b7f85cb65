"""``integration-kit webhooks dead-letters`` and ``webhooks replay`` on a real SQLite inbox."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from integration_kit.playbook.cli.app import main
from integration_kit.server.inbox import InboxEvent, InboxState, SQLiteInbox

HANDLED: list[str] = []


def _inbox_with_dead_letters(path: Path) -> None:
    inbox = SQLiteInbox(path)
    for i in range(3):
        inbox.put(InboxEvent(f"evt_{i}", "shop", float(i), b"{}"))
        inbox.finish(f"evt_{i}", InboxState.DEAD, "RetriesExhausted: RuntimeError: down")
    inbox.close()


def test_list_and_replay_through_a_handler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "inbox.db"
    _inbox_with_dead_letters(path)
    module = types.ModuleType("replay_handlers_for_test")
    module.handle = lambda event: HANDLED.append(event.id)  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    assert main(["webhooks", "dead-letters", "--inbox", str(path)]) == 0
    assert "3 dead letters" in capsys.readouterr().out
    argv = ["webhooks", "replay", "--inbox", str(path), "--id", "evt_1", "--handler", f"{module.__name__}:handle"]
    assert main(argv) == 0
    assert HANDLED == ["evt_1"]
    assert main(["webhooks", "replay", "--inbox", str(path)]) == 0
    assert "2 dead letters are pending again" in capsys.readouterr().out
    inbox = SQLiteInbox(path)
    assert inbox.counts()[InboxState.PENDING] == 2
    assert inbox.counts()[InboxState.DONE] == 1
    inbox.close()


def test_a_bad_handler_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    _inbox_with_dead_letters(path)
    assert main(["webhooks", "replay", "--inbox", str(path), "--handler", "nowhere"]) == 2
