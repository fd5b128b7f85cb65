"""A verdict's three states per check (met, missed, no data) and its invalid scenarios, in every rendering."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from integration_kit.playbook.cli.tables import CALL_COLUMNS, run_table
from integration_kit.playbook.verdict.junit import junit_xml
from integration_kit.playbook.verdict.verdict import Check, Verdict

WHY = "invalid run: the load generator fell behind by 4.20 s (p99 ...)"


def _checks() -> tuple[Check, ...]:
    return (
        Check("steady", "success_rate", "whole run", 0.95, 0.99, minimum=True, unit="ratio"),
        Check("steady", "p99_latency", "whole run", 5.0, math.nan, unit="s"),
        Check("burst", "success_rate", "whole run", 0.95, 0.20, minimum=True, unit="ratio"),
    )


def test_nan_is_no_data_never_ok_and_does_not_fail_the_gate() -> None:
    check = _checks()[1]
    assert check.state == "no data"
    assert check.passed  # not missed: the gate does not fail on it
    assert check.cell() == "no data/5.00 s"
    assert "ok" not in check.cell()
    assert "no data" in check.describe()
    verdict = Verdict("x", "live", "", _checks()[:2])
    assert verdict.passed
    assert verdict.no_data == [check]
    assert "no data/5.00 s" in verdict.to_text()
    assert "no data" in verdict.to_html()


def test_an_invalid_scenario_counts_neither_way_and_says_why(tmp_path: Path) -> None:
    verdict = Verdict("x", "live", "", _checks(), invalid={"burst": WHY}, target="live: http://127.0.0.1:1")
    assert verdict.failures == []  # burst's 20% is the bench's, not the integration's
    assert verdict.status() == "INVALID RUN"
    assert not verdict.valid
    text = verdict.to_text()
    assert "run validity" in text
    assert "INVALID" in text
    assert "void FAIL 20.0%/95.0%" in text
    html = verdict.to_html()
    assert WHY in html
    assert "INVALID RUN" in html
    assert "Exercised: <code>live: http://127.0.0.1:1</code>" in html
    verdict.save(tmp_path)
    again = Verdict.load(tmp_path)
    assert again.invalid == {"burst": WHY}
    assert again.target == verdict.target
    assert [c.state for c in again.checks] == ["ok", "no data", "FAIL"]


def test_a_real_failure_still_fails_beside_an_invalid_scenario() -> None:
    verdict = Verdict("x", "live", "", _checks(), invalid={"steady": WHY})
    assert verdict.status() == "FAIL"
    assert [c.scenario for c in verdict.failures] == ["burst"]


def test_junit_calls_an_invalid_run_an_error_and_no_data_skipped() -> None:
    root = ET.fromstring(junit_xml([Verdict("x", "live", "", _checks(), invalid={"burst": WHY})]))
    assert root.get("failures") == "0"
    assert root.get("errors") == "1"
    (error,) = root.iter("error")
    assert error.get("type") == "invalid run"
    assert error.get("message") == WHY
    skipped = [s.get("message") or "" for s in root.iter("skipped")]
    assert any(m.startswith("no data") for m in skipped)
    assert any(m.startswith("not judged: invalid run") for m in skipped)


def test_the_run_table_labels_what_its_figures_count() -> None:
    table = run_table([("x", "steady", {"calls": 10, "success_rate": None, "latency_p99": 0.5, "amplification": 1})])
    assert "success all" in table
    assert "p99 all s" in table
    assert "no data" in table  # a missing figure is not a blank or "None"
    for name, text in CALL_COLUMNS.items():
        assert f"{name}: {text}." in table


def test_the_verdict_defines_its_objectives_next_to_them() -> None:
    verdict = Verdict("x", "simulate", "", _checks(), definitions={"success_rate": "calls outside outages"})
    assert "<b>success_rate</b>: calls outside outages" in verdict.to_html()


def test_a_live_tolerance_meets_a_deadline_hit_on_real_clocks_and_is_saved(tmp_path: Path) -> None:
    # payments card-network-timeouts live: >1% of calls end at the 8 s deadline, a few ms past it on real sockets
    hit = Check("stalls", "p99_latency", "whole run", 8.0, 8.013, unit="s", tolerance=0.05)
    assert hit.state == "ok"
    assert hit.cell() == "ok 8.01 s/8.00 s (+0.05 s live)"
    assert Check("stalls", "p99_latency", "whole run", 8.0, 8.013, unit="s").state == "FAIL"  # the simulator's
    assert Check("stalls", "p99_latency", "whole run", 8.0, 8.06, unit="s", tolerance=0.05).state == "FAIL"
    Verdict("x", "live", "", (hit,)).save(tmp_path)
    assert Verdict.load(tmp_path).checks == (hit,)
