"""Every kind's template, filled with a name, passes ``check`` and PASSES its own gate in simulate mode: the
kind's exercise and judge called directly (as the exercise and verdict notebooks do), so a template that fails the
objectives it ships with is caught here."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from integration_kit.playbook.kinds.protocol import ExerciseOptions, Kind
from integration_kit.playbook.kinds.table import TABLE

TEMPLATES = [(kind, name) for kind in TABLE for name in kind.templates]


@pytest.mark.parametrize(("kind", "name"), TEMPLATES, ids=[n for _, n in TEMPLATES])
def test_every_template_passes_check_and_its_gate_in_simulate_mode(kind: Kind[Any], name: str, tmp_path: Path) -> None:
    text = kind.templates[name].replace("{name}", "feed")
    path = tmp_path / "feed.toml"
    path.write_text(text)
    spec = kind.build(tomllib.loads(text), source=str(path), path=path)
    assert all(item.passed for item in kind.checklist(spec)), [i for i in kind.checklist(spec) if not i.passed]
    options = ExerciseOptions(mode="simulate")
    kind.preflight(spec, options)
    kind.exercise(spec, options, tmp_path).save(tmp_path)
    verdict = kind.judge(spec, tmp_path)
    assert verdict.passed, verdict.to_text()


def test_a_failed_websocket_herd_gets_a_finding_and_no_claim_that_nothing_calls_for_a_change(tmp_path: Path) -> None:
    kind = TABLE[[k.names for k in TABLE].index(("websocket",))]
    text = kind.templates["websocket"].replace("{name}", "feed")
    data = tomllib.loads(text)
    data["reconnect"]["first_delay"] = 5.0  # the kit's default: ~460 handshakes a second, over the bound of 400
    spec = kind.build(data, source="feed.toml", path=None)
    kind.exercise(spec, ExerciseOptions(mode="simulate"), tmp_path).save(tmp_path)
    verdict = kind.judge(spec, tmp_path)
    assert not verdict.passed
    (finding,) = verdict.findings
    assert finding.scenario == "restart-herd"
    assert "raise reconnect.first_delay from 5 s" in finding.text
    assert finding.figure.startswith("peak_handshakes = ")
    assert "nothing in the events calls for a change" not in verdict.findings_markdown()
    bare = dataclasses.replace(verdict, findings=())
    assert bare.findings_markdown() == "No advice from this kind's findings for the missed objectives above."
