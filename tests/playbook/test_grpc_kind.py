"""gRPC integrations in the playbook: the spec kind, its validation, checklist, design, simulated and live
exercises, the verdict, and the bundled ``inventory`` integration through the stage notebooks."""

from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.grpc import Idempotency
from integration_kit.playbook.kinds.grpc.exercise import load_run
from integration_kit.playbook.kinds.grpc.kind import GRPC
from integration_kit.playbook.kinds.grpc.spec import GrpcSpec
from integration_kit.playbook.kinds.protocol import ExerciseOptions
from integration_kit.playbook.kinds.table import kind_of, load_spec
from integration_kit.playbook.project import Project
from integration_kit.playbook.run.runner import run_playbook
from integration_kit.playbook.verdict.bench import BenchHealth

BUNDLED = Project.discover().integrations / "inventory.toml"
RETRY = {
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def bundled() -> dict[str, Any]:
    return tomllib.loads(BUNDLED.read_text())


def test_the_bundled_spec_loads_as_a_grpc_spec() -> None:
    spec = load_spec(BUNDLED)
    assert isinstance(spec, GrpcSpec)
    assert kind_of(spec) is GRPC
    assert [m.short for m in spec.methods] == ["GetItem", "Reserve", "WatchStock"]
    assert spec.idempotency["inventory.v1.Inventory/Reserve"] is Idempotency.UNKNOWN
    assert spec.service_config.method("/inventory.v1.Inventory/Reserve").timeout == 4.0
    assert spec.service_config.throttling is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target": "no-port"}, "target"),
        ({"tls": False}, "tls"),  # plaintext to a partner
        ({"credential_env": "1BAD"}, "credential_env"),
        ({"method": []}, "method"),
        ({"method": [{"name": "GetItem"}]}, "method[0].name"),
        ({"method": [{"name": "a.B/C", "idempotency": "SAFE"}]}, "method[0].idempotency"),
        ({"method": [{"name": "a.B/C", "rate": 0}]}, "method[0].rate"),
        ({"service_config": {"methodConfig": [{"retryPolicy": {**RETRY, "maxAttempts": 1}}]}},
         "service_config.methodConfig[0].retryPolicy.maxAttempts"),
        ({"service_config": "missing.json"}, "service_config"),
        ({"service_config": {"methodConfg": []}}, "service_config.methodConfg"),
        ({"service_config": {"methodConfig": [{"timout": "2s"}]}}, "service_config.methodConfig[0].timout"),
        ({"service_config": {"methodConfig": [{"retryPolicy": {**RETRY, "maxAtempts": 4}}]}},
         "service_config.methodConfig[0].retryPolicy.maxAtempts"),
        ({"breaker": {"window_size": "ten"}}, "breaker.window_size"),
        ({"objectives": {"success_rate": 2}}, "objectives.success_rate"),
        ({"objectives": {"p50": 1}}, "objectives.p50"),
        ({"scenario_objectives": {"nope": {}}}, "scenario_objectives.nope"),
        ({"scenarios": ["no-such-scenario"]}, "scenarios[0]"),
        ({"extra": 1}, "extra"),
    ],
)  # fmt: skip
def test_bad_specs_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    data = {**bundled(), **change}
    with pytest.raises(ConfigurationError) as info:
        GrpcSpec.from_mapping(data, source="inventory.toml", path=BUNDLED)
    assert info.value.field == field
    assert str(info.value).startswith(f"inventory.toml: {field}: ")
    assert f"{field}: {field}" not in str(info.value)  # the path is said once


def test_a_service_config_file_beside_the_spec_is_read(tmp_path: Path) -> None:
    data = bundled()
    (tmp_path / "inventory.json").write_text(json.dumps(data.pop("service_config")))
    spec = GrpcSpec.from_mapping({**data, "service_config": "inventory.json"}, path=tmp_path / "inventory.toml")
    assert spec.service_config.method("/inventory.v1.Inventory/GetItem").retry is not None


def test_the_checklist_passes_the_bundled_spec_and_flags_each_rule() -> None:
    assert all(item.passed for item in GRPC.checklist(load_spec(BUNDLED)))
    data = copy.deepcopy(bundled())
    config = data["service_config"]
    del config["retryThrottling"]
    del config["methodConfig"][0]["timeout"]
    config["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"] = ["UNAVAILABLE", "INVALID_ARGUMENT"]
    config["methodConfig"][1] = {
        "name": [{"service": "inventory.v1.Inventory", "method": "Reserve"}],
        "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.1s"},
    }
    del data["breaker"]
    data.pop("credential_env")
    spec = GrpcSpec.from_mapping(data)
    failed = {item.key for item in GRPC.checklist(spec) if not item.passed}
    assert failed == {"credential", "deadline", "retry-statuses", "throttling", "hedging", "breaker"}


def test_the_design_document_lists_every_method_with_its_policy() -> None:
    text = GRPC.design_document(load_spec(BUNDLED))
    assert "| `inventory.v1.Inventory/Reserve` | IDEMPOTENCY_UNKNOWN + request id | 4 s | retry x4" in text
    assert "gRFC A6 throttling, 20 tokens" in text


def test_preflight_refuses_an_unknown_scenario_and_a_base_url() -> None:
    spec = load_spec(BUNDLED)
    with pytest.raises(ConfigurationError, match="no scenario"):
        GRPC.preflight(spec, ExerciseOptions(scenario="nope"))
    with pytest.raises(ConfigurationError, match="base-url"):
        GRPC.preflight(spec, ExerciseOptions(base_url="https://x.example"))


def test_simulated_exercise_meets_the_objectives_and_is_judged(tmp_path: Path) -> None:
    spec = load_spec(BUNDLED)
    GRPC.exercise(spec, ExerciseOptions(seed=0), tmp_path).save(tmp_path)
    summary = load_run(tmp_path)
    brownout = summary["scenarios"]["brownout"]
    assert brownout["calls"] > 5000
    assert 1.05 < brownout["amplification"] < 2.0  # retried
    assert brownout["methods"]["GetItem"]["success_rate"] > 0.85
    outage = summary["scenarios"]["outage-and-recovery"]
    assert outage["rejected"] > 0  # the breaker opened
    assert "closed->open" in outage["transitions"]
    verdict = GRPC.judge(spec, tmp_path)
    assert verdict.passed, verdict.to_text()
    assert {c.scope for c in verdict.checks} >= {"whole run", "method Reserve"}
    charts = GRPC.charts(spec, tmp_path)
    assert charts["brownout"]["dashboard"].stat().st_size > 5000


def test_simulated_exercise_plays_hedges_and_shows_their_load(tmp_path: Path) -> None:
    data = bundled()
    hedged = {"maxAttempts": 3, "hedgingDelay": "0.1s", "nonFatalStatusCodes": ["UNAVAILABLE"]}
    data["service_config"]["methodConfig"] = [
        {"name": [{"service": "inventory.v1.Inventory"}], "timeout": "2s", "hedgingPolicy": hedged}
    ]
    options = ExerciseOptions(seed=0, scenario="brownout", duration=60)
    plain = GRPC.exercise(load_spec(BUNDLED), options, tmp_path).summary()["scenarios"]["brownout"]["methods"]
    methods = GRPC.exercise(GrpcSpec.from_mapping(data), options, tmp_path).summary()["scenarios"]["brownout"][
        "methods"
    ]
    get_item, reserve = methods["GetItem"], methods["Reserve"]
    assert get_item["amplification"] == 1.0  # a hedged group is one engine attempt...
    assert get_item["requests_per_call"] > 1.05  # ...whose copies the partner received
    assert get_item["latency_p99"] < plain["GetItem"]["latency_p99"]
    assert reserve["requests_per_call"] == reserve["amplification"] == 1.0  # never hedged: not idempotent
    assert plain["GetItem"]["requests_per_call"] == plain["GetItem"]["amplification"]


@pytest.mark.timeout(120)
def test_live_exercise_against_the_flaky_grpc_upstream(tmp_path: Path) -> None:
    spec = load_spec(BUNDLED)
    options = ExerciseOptions(mode="live", scenario="brownout", duration=60, time_scale=10, seed=3)
    exercise = GRPC.exercise(spec, options, tmp_path)
    summary = exercise.summary()
    figures = summary["scenarios"]["brownout"]
    assert summary["mode"] == "live"
    assert figures["methods"]["GetItem"]["calls"] == 300  # thinned to MAX_CALLS
    assert figures["methods"]["WatchStock"]["calls"] == 120
    assert figures["methods"]["GetItem"]["amplification"] > 1.0  # the channel retried over real sockets
    assert figures["success_rate"] > 0.8
    # The bench judged itself: every planned call was offered, and the health is saved with the figures.
    health = exercise.bench["brownout"]
    calls = sum(m["calls"] for m in figures["methods"].values())
    assert health.scheduled == health.offered == calls
    assert health.time_scale == 10
    assert BenchHealth.from_dict(figures["bench"]) == health
    # Had the generator fallen behind, the scenario would be an invalid run, never a failure.
    strained = dataclasses.replace(health, offered=health.scheduled - 50, lateness_max=31.0, lateness_p99=4.2)
    dataclasses.replace(exercise, bench={"brownout": strained}).save(tmp_path)
    verdict = GRPC.judge(spec, tmp_path)
    assert verdict.invalid["brownout"].startswith("invalid run: the load generator fell behind")
    assert verdict.status() == "INVALID RUN"
    assert verdict.failures == []


def test_the_template_passes_check() -> None:
    text = GRPC.templates["grpc"].replace("{name}", "partner")
    spec = GRPC.build(tomllib.loads(text), source="template", path=None)
    assert all(item.passed for item in GRPC.checklist(spec) if item.key != "credential")


@pytest.mark.slow
@pytest.mark.timeout(300)  # papermill starts a kernel per stage
def test_the_bundled_inventory_run_passes_through_the_notebooks(tmp_path: Path) -> None:
    run = run_playbook("inventory", out=tmp_path, run_id="g1")
    assert run.ok, run.error
    assert run.verdict is not None
    assert run.verdict.passed
    assert run.verdict.kind == "grpc"
    assert (run.out_dir / "report.html").is_file()
    assert (run.out_dir / "charts" / "brownout-dashboard.png").is_file()
