"""Alert rules from the objectives: ``promtool check rules``, and ``promtool test rules`` for every rule on synthetic
series that must fire and series that must not. promtool comes from the system packages (.ci/run installs it);
without it these tests skip, except under ``CI=true`` where they fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from integration_kit.telemetry.alerts import AlertThresholds, alert_rules, render_rules, thresholds_from

NAME = "payments"
THRESHOLDS = AlertThresholds(success_rate=0.99, p99_latency=1.0, amplification=1.5, recovery_time=30.0)
SELECTOR = f'integration_kit_integration="{NAME}"'
CALLS = "integration_kit_call_duration_seconds_count"
BUCKET = "integration_kit_call_duration_seconds_bucket"
ATTEMPTS = "http_client_request_duration_seconds_count"
BREAKER = "integration_kit_breaker_state"
REFUSED = "integration_kit_retries_refused_total"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; required under CI=true")
        pytest.skip(message)
    return path


def series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{SELECTOR}{',' if labels else ''}{labels}}}", "values": values}


def calls(success_per_min: int, failed_per_min: int, minutes: int = 20) -> list[dict[str, str]]:
    out = [series(CALLS, 'integration_kit_call_outcome="ServerError"', f"0+{failed_per_min}x{minutes}")]
    if success_per_min:
        out.append(series(CALLS, 'integration_kit_call_outcome="success"', f"0+{success_per_min}x{minutes}"))
    return out


def latency(bucket_of_all: str) -> list[dict[str, str]]:
    """Ten calls a minute, every one in the bucket ``bucket_of_all`` (and so in every bucket above it)."""
    bounds = ["0.1", "0.5", "1.0", "2.5", "5.0", "+Inf"]
    at = bounds.index(bucket_of_all)
    return [series(BUCKET, f'le="{b}"', "0+10x20" if i >= at else "0x20") for i, b in enumerate(bounds)]


#: For each rule: input series that must make it fire at 10 minutes, and series that must not.
CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, str]]]] = {
    "IntegrationSuccessRateBelowObjective": (calls(90, 10), calls(999, 1)),
    "IntegrationLatencyP99AboveObjective": (latency("2.5"), latency("0.5")),
    "IntegrationAmplificationAboveObjective": (
        [
            *calls(10, 0),
            series(ATTEMPTS, 'http_response_status_code="503"', "0+20x20"),
            series(ATTEMPTS, 'http_response_status_code="200"', "0+10x20"),
        ],
        [*calls(10, 0), series(ATTEMPTS, 'http_response_status_code="200"', "0+11x20")],
    ),
    "IntegrationBreakerOpen": (
        [
            series(BREAKER, 'integration_kit_breaker_state="open"', "0 0 1x5 0 1x12"),
            series(BREAKER, 'integration_kit_breaker_state="half_open"', "0 0 0x5 1 0x12"),
        ],
        [
            series(BREAKER, 'integration_kit_breaker_state="open"', "0 1x3 0x16"),
            series(BREAKER, 'integration_kit_breaker_state="closed"', "1 0x3 1x16"),
        ],
    ),
    "IntegrationRetryBudgetExhausted": (
        [series(REFUSED, 'integration_kit_retry_refusal="budget"', "0x5 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15")],
        [
            series(REFUSED, 'integration_kit_retry_refusal="budget"', "0x20"),
            series(REFUSED, 'integration_kit_retry_refusal="max_attempts"', "0+5x20"),
        ],
    ),
}


def rule_test(rule: dict[str, Any], input_series: list[dict[str, str]], fires: bool) -> dict[str, Any]:
    expected = [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}] if fires else []
    return {
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [{"eval_time": "12m", "alertname": rule["alert"], "exp_alerts": expected}],
    }


def test_every_rule_fires_on_a_breach_and_only_then(tmp_path: Path) -> None:
    tool = promtool()
    rules = tmp_path / "rules.yml"
    rules.write_text(render_rules(NAME, THRESHOLDS))
    checked = subprocess.run([tool, "check", "rules", str(rules)], check=False, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout

    by_name = {r["alert"]: r for r in alert_rules(NAME, THRESHOLDS)["groups"][0]["rules"]}
    assert set(by_name) == set(CASES)
    tests = []
    for name, (firing, quiet) in CASES.items():
        tests += [rule_test(by_name[name], firing, True), rule_test(by_name[name], quiet, False)]
    spec = tmp_path / "tests.yml"  # JSON is YAML
    spec.write_text(json.dumps({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}))
    tested = subprocess.run([tool, "test", "rules", str(spec)], check=False, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_rule_that_would_not_fire_is_caught_by_promtool(tmp_path: Path) -> None:
    """The harness itself: expecting the success-rate alert on healthy series must fail."""
    tool = promtool()
    (tmp_path / "rules.yml").write_text(render_rules(NAME, THRESHOLDS))
    rule = alert_rules(NAME, THRESHOLDS)["groups"][0]["rules"][0]
    spec = tmp_path / "tests.yml"
    spec.write_text(json.dumps({"rule_files": ["rules.yml"], "tests": [rule_test(rule, calls(999, 1), True)]}))
    tested = subprocess.run([tool, "test", "rules", str(spec)], check=False, capture_output=True, text=True)
    assert tested.returncode != 0


def test_no_successes_at_all_still_fires(tmp_path: Path) -> None:
    tool = promtool()
    (tmp_path / "rules.yml").write_text(render_rules(NAME, THRESHOLDS))
    rule = alert_rules(NAME, THRESHOLDS)["groups"][0]["rules"][0]
    spec = tmp_path / "tests.yml"
    spec.write_text(json.dumps({"rule_files": ["rules.yml"], "tests": [rule_test(rule, calls(0, 10), True)]}))
    tested = subprocess.run([tool, "test", "rules", str(spec)], check=False, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_thresholds_from_objectives_and_the_deadline() -> None:
    objectives = SimpleNamespace(success_rate=0.995, p99_latency=None, amplification=2.0, recovery_time=60.0)
    t = thresholds_from(objectives, deadline=3.0)
    assert (t.success_rate, t.p99_latency, t.amplification, t.recovery_time) == (0.995, 3.0, 2.0, 60.0)
    assert thresholds_from(None) == AlertThresholds()
    assert thresholds_from(SimpleNamespace(p99_latency=0.8), deadline=3.0).p99_latency == 0.8
    rules = alert_rules(NAME, t)["groups"][0]["rules"]
    assert rules[0]["for"] == "1m"
    assert rules[0]["expr"].endswith("< 0.995")
    assert "IntegrationLatencyP99AboveObjective" not in {r["alert"] for r in alert_rules(NAME)["groups"][0]["rules"]}


@pytest.mark.parametrize(
    "bad",
    [{"success_rate": 0.0}, {"success_rate": 1.5}, {"p99_latency": -1.0}, {"amplification": 0.5}, {"window": "m5"}],
)
def test_thresholds_out_of_range_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AlertThresholds(**bad)


# -- the CLI and the dashboard ------------------------------------------------------------------------------------


def test_the_cli_writes_rules_from_the_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from integration_kit.playbook.cli.app import main
    from integration_kit.playbook.kinds.http.spec import load_integration

    spec = load_integration("payments")
    out = tmp_path / "payments.rules.yml"
    assert main(["alerts", "payments", "--out", str(out)]) == 0
    text = out.read_text()
    objectives = getattr(spec, "objectives", None)
    bound = getattr(objectives, "p99_latency", None) or spec.client.deadline
    assert f"> {float(bound)!r}" in text
    assert 'integration_kit_integration=\\"payments\\"' in text
    checked = subprocess.run([promtool(), "check", "rules", str(out)], check=False, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert main(["dashboard", "payments"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["title"] == "integration_kit: payments"


def test_every_dashboard_query_is_valid_promql_on_the_kits_metrics(tmp_path: Path) -> None:
    from integration_kit.telemetry.conventions import METRICS
    from integration_kit.telemetry.dashboard import dashboard

    board = dashboard(NAME, THRESHOLDS)
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert len(board["panels"]) == 8
    known = {m.prometheus for m in METRICS} | {f"{m.prometheus}_{s}" for m in METRICS for s in ("count", "bucket")}
    import re

    for expr in exprs:
        for name in re.findall(r"\b((?:integration_kit|http_client)_[a-z_]+)\{", expr):
            assert name in known, name
    success = next(p for p in board["panels"] if p["title"] == "Success rate")
    assert success["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == 0.99
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": e.replace("$__rate_interval", "5m")}
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(json.dumps(rules))
    checked = subprocess.run([promtool(), "check", "rules", str(path)], check=False, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
