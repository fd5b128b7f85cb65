"""The CLI's run table is kind-aware through ``Kind.run_columns``: a WebSocket run shows its own figures, a gRPC
run says each figure's scope (all methods) as the verdict defines it, and the HTTP table is unchanged."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from integration_kit.playbook.cli.tables import run_table
from integration_kit.playbook.kinds.grpc.kind import GRPC
from integration_kit.playbook.kinds.http.kind import HTTP
from integration_kit.playbook.kinds.protocol import ExerciseOptions, Kind
from integration_kit.playbook.kinds.queue.kind import QUEUE
from integration_kit.playbook.kinds.table import TABLE
from integration_kit.playbook.kinds.websocket.kind import WEBSOCKET


def simulated_rows(kind: Kind[Any], tmp_path: Path) -> list[tuple[str, str, dict[str, object]]]:
    text = next(iter(kind.templates.values())).replace("{name}", "feed")
    spec = kind.build(tomllib.loads(text), source="feed.toml", path=None)
    kind.exercise(spec, ExerciseOptions(mode="simulate"), tmp_path).save(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    return [("feed", scenario, figures) for scenario, figures in summary["scenarios"].items()]


def test_a_websocket_run_shows_its_own_figures_not_http_columns(tmp_path: Path) -> None:
    rows = simulated_rows(WEBSOCKET, tmp_path)
    table = run_table(rows, {"feed": WEBSOCKET})
    header = table.splitlines()[0].split()
    assert {"lost", "dupes", "p99", "stall", "peak", "back"} <= set(header)
    for http_column in ("success all", "calls offered", "ampl."):
        assert http_column not in table
    (line,) = [x for x in table.splitlines() if x.startswith("feed ")]
    peak = rows[0][2]["peak_handshakes"]
    assert f"{peak:,.0f}" in line.split()
    for name, note in WEBSOCKET.run_notes.items():
        assert f"  {name}: {note}." in table


def test_a_grpc_run_names_the_scope_of_every_figure_as_the_verdict_does(tmp_path: Path) -> None:
    rows = simulated_rows(GRPC, tmp_path)
    table = run_table(rows, {"feed": GRPC})
    first = table.splitlines()[0]
    assert first.count("(all methods)") == 4
    assert "success all " not in table
    assert "all methods" in GRPC.run_notes["success (all methods)"]
    scenario, figures = rows[0][1], rows[0][2]
    line = next(x for x in table.splitlines() if x.startswith(f"feed {scenario}") or f" {scenario} " in x)
    assert format(figures["success_rate"], ".1%") in line


def test_http_and_the_other_kinds_in_the_shared_table_print_as_before() -> None:
    rows: list[tuple[str, str, dict[str, object]]] = [
        ("payments", "steady", {"calls": 1637, "success_rate": 0.99, "latency_p99": 0.5, "amplification": 1.1}),
        ("orders", "poison", {"messages": 10, "lost": 0, "applied_twice": 0, "dead_letters": 1,
                              "latency_p99": 0.2, "max_lag": 1.0, "objectives": []}),
    ]  # fmt: skip
    shared: dict[str, Kind[Any]] = {"payments": HTTP, "orders": QUEUE}
    assert run_table(rows, shared) == run_table(rows)
    assert "success all" in run_table(rows, shared)


def test_every_kind_answers_run_columns_with_its_notes_as_headers() -> None:
    for kind in TABLE:
        cells = kind.run_columns({})
        assert cells is None or list(cells) == list(kind.run_notes), kind.names
        assert cells is None or all(c == "no data" for c in cells.values())
