"""The scoreboard's figures on hand-built runs, and ``bench/scoreboard.py --quick`` as a smoke test (no timings)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from integration_kit.research.scoreboard import (
    CallRecord,
    bad_phases,
    check_targets,
    dominating,
    plot_scenario,
    run_metrics,
    scenario_table,
    summarize,
)
from integration_kit.sim.scenarios import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[2]

#: 10 s healthy, 10 s down, 10 s healthy again.
OUTAGE = Scenario.from_mapping(
    {
        "name": "mini-outage",
        "phases": [
            {"name": "up", "duration": 10, "latency": 0.1},
            {"name": "down", "duration": 10, "latency": 0.1, "errors": {"503": 1.0}},
            {"name": "up again", "duration": 10, "latency": 0.1},
        ],
    }
)


def calls_each_second(ok: callable, rejected: callable = lambda t: False, latency: float = 0.1) -> list[CallRecord]:  # type: ignore[valid-type]
    """One call per second, arriving at t + 0.5."""
    return [CallRecord(t + 0.5, t + 0.5 + latency, ok(t), rejected(t)) for t in range(30)]


def test_bad_phases_are_those_that_differ_from_the_first() -> None:
    assert bad_phases(OUTAGE) == [("down", 10.0, 20.0)]
    assert [name for name, _, _ in bad_phases(load_scenario("outage-and-recovery"))] == ["outage"]
    flapping = bad_phases(load_scenario("flapping"))
    assert [(s, e) for _, s, e in flapping] == [(25, 40), (65, 80), (105, 120), (145, 160)]
    assert bad_phases(load_scenario("steady")) == []


def test_run_metrics_on_an_outage_that_a_breaker_sits_out() -> None:
    # failures during the outage, then the breaker rejects calls for 3 s after it, then all is well
    calls = calls_each_second(ok=lambda t: not 10 <= t < 23, rejected=lambda t: 15 <= t < 23)
    per_second = {t: 1 for t in range(30) if not 15 <= t < 23}  # rejected calls never reach the partner
    metrics = run_metrics(
        calls, scenario=OUTAGE, received=22, received_per_second=per_second, early_retries=2, deadline=1.0
    )
    assert metrics["calls"] == 30
    assert metrics["success_rate"] == pytest.approx(17 / 30)
    assert metrics["success_after"] == pytest.approx(7 / 10)
    assert metrics["amplification"] == pytest.approx(22 / 30)
    assert metrics["amplification_bad"] == pytest.approx(5 / 10)  # 5 requests in the 10 outage seconds
    assert metrics["rejected"] == 8
    assert metrics["first_success"] == pytest.approx(3.5)  # the call arriving at 23.5
    assert metrics["recovery_95"] == pytest.approx(3.0)  # the window [23, 28) holds only calls that succeeded
    assert metrics["p50"] == pytest.approx(0.1)
    assert metrics["deadline_overruns"] == 0
    assert metrics["early_retries"] == 2


def test_a_run_that_never_recovers_says_never_and_overruns_count_past_the_slack() -> None:
    calls = calls_each_second(ok=lambda t: t < 10, latency=2.0)
    metrics = run_metrics(calls, scenario=OUTAGE, received=30, received_per_second={}, early_retries=0, deadline=1.0)
    assert metrics["first_success"] == math.inf
    assert metrics["recovery_95"] == math.inf
    assert metrics["deadline_overruns"] == 30
    assert metrics["max_latency"] == pytest.approx(2.0)


def test_summary_dominance_targets_table_and_chart() -> None:
    runs = [
        {"success_rate": s, "amplification": a, "recovery_95": r}
        for s, a, r in ((0.9, 1.2, 3.0), (0.8, 1.1, None), (0.95, 1.3, 5.0))
    ]
    summary = summarize(runs)
    assert summary["success_rate"] == {"median": 0.9, "min": 0.8, "max": 0.95}
    assert summary["recovery_95"] == {"median": 4.0, "min": 3.0, "max": 5.0}
    ours = {"success_rate": {"median": 0.9}, "amplification": {"median": 1.2}}
    better = {"success_rate": {"median": 0.95}, "amplification": {"median": 1.0}}
    louder = {"success_rate": {"median": 0.99}, "amplification": {"median": 3.0}}
    assert dominating({"ours": ours, "better": better, "louder": louder}, "ours") == ["better"]

    figures = {
        "success_rate": 0.5,
        "amplification": 0.5,
        "amplification_bad": 0.05,
        "success_after": 0.99,
        "recovery_95": 10.0,
        "deadline_overruns": 0.0,
        "early_retries": 0.0,
        "first_success": math.inf,
    }
    peer = dict(figures, success_rate=0.4, amplification=2.5, amplification_bad=2.8, early_retries=7.0)
    result = {
        "ours": ["kit"],
        "policies": {"kit": {"settings": {"breaker.wait_in_open": 30.0}}},
        "scenarios": {
            name: {"summary": {"kit": summarize([figures]), "peer": summarize([peer])}}
            for name in ("outage-and-recovery", "rate-limited")
        },
        "overhead": {"sequential_ratio": 1.05, "threads_ratio": 0.97, "engine_us": 2.5},
    }
    rows = {row["target"]: row for row in check_targets(result)}
    assert rows["outage: partner load during the outage <= 0.1x offered"]["met"]
    assert rows["outage: 95% success within wait_in_open + 1 s (31 s)"]["met"]
    assert rows["rate-limited: zero requests before Retry-After (kit)"]["figure"] == "0"
    assert not rows["overhead: sequential loopback GET <= 1.03x raw httpx"]["met"]
    assert rows["overhead: 16 threads >= 0.95x raw throughput"]["met"]
    assert rows["rate-limited: no peer dominates kit on success and partner load"]["figure"] == "none"

    table = scenario_table(result["scenarios"]["rate-limited"]["summary"]).splitlines()
    assert table[0].startswith("| policy | success |")
    assert "| peer | 40.0% |" in table[3]
    assert "| 7 |" in table[3]
    assert "never" in table[2]
    fig = plot_scenario(result, "rate-limited")
    assert [t.get_text() for t in fig.axes[0].texts] == ["kit"]  # ours labelled, every policy in the legend
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["kit", "peer"]


@pytest.mark.slow
def test_quick_scoreboard_runs_every_policy_and_writes_its_result(tmp_path: Path) -> None:
    out = tmp_path / "scoreboard.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scoreboard.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    result = json.loads(out.read_text())
    policies = list(result["policies"])
    assert policies[:7] == [
        "no resilience",
        "tenacity",
        "stamina",
        "httpx-retries",
        "pybreaker",
        "circuitbreaker",
        "tenacity + pybreaker",
    ]
    assert result["ours"] == policies[7:] == ["integration_kit defaults", "integration_kit payments"]
    summary = result["scenarios"]["rate-limited"]["summary"]
    assert set(summary) == set(policies)
    for figures in summary.values():
        assert 0 < figures["success_rate"]["median"] <= 1
        assert figures["amplification"]["median"] > 0
    # a policy that retries 429s without waiting for Retry-After sends early; the partner counted them
    assert summary["tenacity"]["early_retries"]["median"] > 0
    assert {"engine_us", "sequential_ratio", "threads_ratio"} <= set(result["overhead"])
    assert (tmp_path / "scoreboard-rate-limited.png").stat().st_size > 0
    assert "### rate-limited" in completed.stdout
    assert "### Targets" in completed.stdout
