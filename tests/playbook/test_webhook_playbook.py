"""The playbook's webhook kinds: spec validation, checklist, the virtual-time simulation through the real receiver
and sender, the objectives, the notebook run and the CLI dispatch."""

from __future__ import annotations

import json
import re
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.app import main
from integration_kit.playbook.kinds.files import spec_kind
from integration_kit.playbook.kinds.http.spec import bundled_integrations, load_integration
from integration_kit.playbook.kinds.webhook.charts import outcome_table, webhook_dashboard
from integration_kit.playbook.kinds.webhook.sim import simulate_webhooks
from integration_kit.playbook.kinds.webhook.spec import (
    WebhookSpec,
    load_webhook_spec,
    webhook_checklist,
    webhook_design_document,
)
from integration_kit.playbook.project import Project
from integration_kit.playbook.run.runner import run_playbook


def raw(name: str) -> dict[str, Any]:
    with (Project.discover().integrations / f"{name}.toml").open("rb") as fh:
        return tomllib.load(fh)


def test_kinds_dispatch_and_the_http_specs_are_untouched() -> None:
    assert spec_kind("github-events") == "webhook-in"
    assert spec_kind("order-events") == "webhook-out"
    assert spec_kind("payments") == "http"
    assert set(bundled_integrations()) == {"catalog", "payments", "shipping"}
    with pytest.raises(ConfigurationError, match="'github-events' is a 'webhook-in' spec, and this needs an HTTP spec"):
        load_integration("github-events")


@pytest.mark.parametrize(
    ("name", "change", "field"),
    [
        ("github-events", {"colour": "blue"}, "colour"),
        ("github-events", {"receiver": {"scheme": "md5"}}, "receiver.scheme"),
        ("github-events", {"receiver": {"tolerence": 300}}, "receiver.tolerence"),
        ("github-events", {"sender": {"url": "https://x.test"}}, "sender"),
        ("github-events", {"scenario": [{"name": "x", "description": "y", "duplicates": 2}]}, "scenario[0].duplicates"),
        ("order-events", {"sender": {"url": "ftp://x.test"}}, "sender.url"),
        ("order-events", {"sender": {"url": "https://x.test", "delays": [-1]}}, "sender.delays[0]"),
        ("order-events", {"kind": "webhook-sideways"}, "kind"),
        ("order-events", {"scenario": []}, "scenario"),
    ],
)
def test_validation_names_the_field(name: str, change: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"spec: {re.escape(field)}:"):
        WebhookSpec.from_mapping({**raw(name), **change}, source="spec")


def test_checklists_pass_for_the_bundled_specs_and_catch_bad_settings() -> None:
    for name in ("github-events", "order-events"):
        spec = load_webhook_spec(name)
        assert all(item.passed for item in webhook_checklist(spec)), name
        document = webhook_design_document(spec)
        assert document.startswith(f"# {name} ({spec.kind})")
        assert "SECRET" in document  # env var names, never values
    lax = WebhookSpec.from_mapping({**raw("github-events"), "receiver": {"scheme": "stripe", "tolerance": 3600}})
    assert not next(i for i in webhook_checklist(lax) if i.key == "tolerance").passed
    long = WebhookSpec.from_mapping(
        {**raw("order-events"), "sender": {"url": "https://x.test/", "delays": [0, 86400, 86400, 86400, 86400]}}
    )
    assert not next(i for i in webhook_checklist(long) if i.key == "schedule").passed
    ssrf = WebhookSpec.from_mapping(
        {**raw("order-events"), "sender": {"url": "http://10.0.0.5/", "allow_private": True}}
    )
    assert not next(i for i in webhook_checklist(ssrf) if i.key == "ssrf").passed


def test_receiving_scenarios_count_every_delivery_and_meet_the_objectives() -> None:
    spec = load_webhook_spec("github-events")
    run = simulate_webhooks(spec, "duplicates-and-forgeries", seed=3)
    c = run.counts
    assert run.ok, run.objectives
    assert c["deliveries"] == c["accepted"] + c["duplicates_suppressed"] + c["rejected_forged"] + c.get(
        "rejected_replay", 0
    )
    assert c["accepted"] == 600
    assert c["rejected_forged"] > 0
    assert c["forged_accepted"] == 0
    assert c["processed"] == 600
    assert simulate_webhooks(spec, "duplicates-and-forgeries", seed=3).counts == c  # deterministic for a seed
    outage = simulate_webhooks(spec, "handler-outage", seed=0)
    assert outage.counts["dead_letters"] > 0
    assert outage.counts["replayed"] == outage.counts["dead_letters"]
    assert outage.counts["lost"] == 0
    assert outage.counts["lag_p99"] > 60  # the outage shows as lag, not as loss


def test_stripe_receiver_refuses_stale_replays() -> None:
    data = {**raw("github-events"), "receiver": {"scheme": "stripe", "secret_env": "STRIPE_WEBHOOK_SECRET"}}
    data["scenario"] = [{"name": "replays", "description": "old deliveries resent", "events": 100, "replays": 0.3}]
    run = simulate_webhooks(WebhookSpec.from_mapping(data), "replays")
    assert run.counts["rejected_replay"] == run.counts["rejected:TimestampOutsideTolerance"] > 0
    assert run.ok


def test_sending_scenarios_a_day_of_schedule_in_about_a_second() -> None:
    spec = load_webhook_spec("order-events")
    began = time.perf_counter()
    down = simulate_webhooks(spec, "endpoint-down-hours")
    elapsed = time.perf_counter() - began
    assert elapsed < 10, elapsed  # about a second on an idle machine; bounded loosely for a shared one
    assert down.ok, down.objectives
    assert down.counts["delivered"] == 200
    assert down.counts["refused_by_breaker"] > 0
    assert down.counts["time_to_deliver_after_recovery_p99"] > 0
    frame = down.frame()
    assert frame["attempt"].max() > 1
    gone = simulate_webhooks(spec, "endpoint-gone")
    assert gone.counts["disabled"] > 0
    assert gone.counts["delivered"] + gone.counts["disabled"] == 200
    assert gone.counts["lost"] == 0
    table = outcome_table([down, gone])
    assert list(table["objectives met"]) == [True, True]
    figure = webhook_dashboard(down, spec.scenario("endpoint-down-hours"))
    assert len(figure.axes) == 2


def test_a_missed_objective_is_reported() -> None:
    data = {**raw("order-events"), "objectives": {"max_lag": 1.0}}
    run = simulate_webhooks(WebhookSpec.from_mapping(data), "endpoint-down-hours")
    assert not run.ok
    assert not run.as_dict()["ok"]


def test_cli_check_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "github-events"]) == 0
    assert "7/7 checklist items pass" in capsys.readouterr().out
    assert main(["list"]) == 0
    assert "[webhook-out]" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.timeout(300)  # papermill starts a kernel per stage
def test_playbook_notebook_run_writes_summary_charts_and_report(tmp_path: Path) -> None:
    run = run_playbook("order-events", out=tmp_path, scenario="endpoint-gone", run_id="r1")
    assert run.ok, run.error
    folder = tmp_path / "order-events" / "r1"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["ok"] is True
    assert summary["scenarios"]["endpoint-gone"]["lost"] == 0
    assert (folder / "charts" / "endpoint-gone-dashboard.png").stat().st_size > 5000
    assert run.verdict is not None
    assert run.verdict.passed
    assert run.verdict.kind == "webhook-out"
    assert {c.objective for c in run.verdict.checks} >= {"events_lost", "payloads_per_event_id"}
    for stage in ("01_design.ipynb", "02_exercise.ipynb", "03_charts.ipynb"):  # the same notebooks as every kind
        assert (folder / stage).is_file(), stage
    assert run.report is not None
    assert run.report.is_file()


@pytest.mark.slow
def test_live_receiving_over_real_sockets() -> None:
    from integration_kit.playbook.kinds.webhook.live import live_webhooks

    data = {**raw("github-events"), "receiver": {"scheme": "standard-webhooks", "secret_env": "HOOK_SECRET"}}
    data["scenario"] = [
        {
            "name": "live",
            "description": "duplicates, stale replays, forgeries and a rotation, over HTTP",
            "events": 60,
            "rate": 10.0,
            "duplicates": 0.2,
            "replays": 0.1,
            "forged": 0.1,
            "rotate_at": 0.5,
            "handler_failure_rate": 0.1,
        }
    ]
    run = live_webhooks(WebhookSpec.from_mapping(data), "live", seed=1, time_scale=20)
    c = run.counts
    assert run.ok, run.objectives
    assert c["accepted"] == 60
    assert c["processed"] == 60
    assert c["rejected_forged"] > 0
    assert c["rejected_replay"] > 0
    assert c["deliveries"] == 60 + c["duplicates_suppressed"] + c["rejected_forged"] + c["rejected_replay"]


@pytest.mark.slow
def test_live_sending_over_real_sockets() -> None:
    from integration_kit.playbook.kinds.webhook.live import live_webhooks

    data = raw("order-events")
    data["scenario"] = [
        {
            "name": "live",
            "description": "down for 10 minutes, then 410",
            "events": 40,
            "rate": 0.1,
            "down": [[0.0, 600.0]],
            "gone_at": 3000.0,
        }
    ]
    run = live_webhooks(WebhookSpec.from_mapping(data), "live", target_seconds=8)
    c = run.counts
    assert run.ok, run.objectives
    assert c["delivered"] + c["disabled"] == 40
    assert c["delivered"] > 0
    assert c["wire_matches_log"] == 1
