"""Objectives, figures, findings and the verdict: each rule on a small hand-built event table."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from integration_kit.errors import ConfigurationError
from integration_kit.events import FRAME_COLUMNS
from integration_kit.http.config import ClientConfig
from integration_kit.playbook.kinds.http import findings as rules
from integration_kit.playbook.kinds.http.exercise import exercise
from integration_kit.playbook.kinds.http.figures import classify_phase, measure, phase_windows, recovery_time
from integration_kit.playbook.kinds.http.findings import RunContext, find
from integration_kit.playbook.kinds.http.judge import evaluate, judge
from integration_kit.playbook.kinds.http.objectives import Objectives
from integration_kit.playbook.kinds.http.spec import IntegrationSpec, load_integration
from integration_kit.playbook.project import Project
from integration_kit.playbook.verdict.verdict import Check, Verdict
from integration_kit.policies.config import BudgetPolicy
from integration_kit.sim.scenarios import ErrorMix, Latency, Phase, Scenario, load_scenario, read_toml

# -- building small event tables ---------------------------------------------------------------------------------


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{"integration": "x", "call_id": 0, **r} for r in rows], columns=list(FRAME_COLUMNS))


def call(
    call_id: int, start: float, duration: float, *, ok: bool, attempts: int = 1, status: int | None = 200
) -> list[dict[str, Any]]:
    """One logical call: its attempts (each 1/attempts of the duration) and its end."""
    rows: list[dict[str, Any]] = []
    for n in range(attempts):
        t = start + n * duration / attempts
        rows.append({"event": "attempt_started", "time": t, "call_id": call_id, "attempt": n + 1})
        last = n == attempts - 1
        rows.append(
            {
                "event": "attempt_finished",
                "time": t + duration / attempts,
                "call_id": call_id,
                "attempt": n + 1,
                "verdict": "success" if ok and last else "transient",
                "status": status,
            }
        )
    rows.append(
        {
            "event": "call_finished",
            "time": start + duration,
            "call_id": call_id,
            "ok": ok,
            "attempts": attempts,
            "duration": duration,
            "status": status,
            "outcome": "success" if ok else "ServerError",
        }
    )
    return rows


def rejected(call_id: int, at: float) -> list[dict[str, Any]]:
    return [
        {"event": "call_rejected", "time": at, "call_id": call_id, "reason": "circuit_open"},
        {"event": "call_finished", "time": at, "call_id": call_id, "ok": False, "attempts": 0, "duration": 0.0},
    ]


def transition(at: float, old: str, new: str) -> dict[str, Any]:
    return {"event": "breaker_transition", "time": at, "breaker": "x", "old": old, "new": new, "reason": "r"}


HEALTHY = Phase(10, Latency.constant(0.05), ErrorMix(), name="up")
DOWN = Phase(10, Latency.constant(0.01), ErrorMix(http_503=1.0), name="down")
BROWN = Phase(10, Latency.constant(0.1), ErrorMix(http_500=0.3), name="brown")
SCENARIO = Scenario("t", (HEALTHY, DOWN, HEALTHY))
BROWNOUT = Scenario("b", (HEALTHY, BROWN, HEALTHY))


def config(**changes: Any) -> ClientConfig:
    return replace(load_integration("payments").client, **changes)


def context(
    events: pd.DataFrame, scenario: Scenario = SCENARIO, cfg: ClientConfig | None = None, **objectives: float
) -> RunContext:
    cfg = cfg or config()
    figures = measure(events, None, scenario, deadline=cfg.deadline)
    return RunContext(scenario, events, None, figures, Objectives(**objectives), cfg)


def steady_calls(start: float, end: float, *, ok: bool = True, first_id: int = 1, step: float = 0.5) -> list[Any]:
    rows = []
    for i, t in enumerate(x * step + start for x in range(int((end - start) / step))):
        rows += call(first_id + i, t, 0.05, ok=ok)
    return rows


# -- objectives --------------------------------------------------------------------------------------------------


def test_objectives_validate_and_name_unknown_fields() -> None:
    assert Objectives().success_rate == 0.95
    assert Objectives.deadline_overruns == 0
    with pytest.raises(ValueError, match="success_rate must be in"):
        Objectives(success_rate=1.5)
    with pytest.raises(ValueError, match="amplification must be >= 1"):
        Objectives(amplification=0.5)
    with pytest.raises(ValueError, match=r"objectives.p99: unknown field \(expected one of amplification"):
        Objectives().with_overrides({"p99": 1})


def spec_with(extra: str, tmp_path: Path) -> IntegrationSpec:
    path = tmp_path / "demo.toml"
    path.write_text(
        'name = "demo"\ndescription = "x"\nbase_url = "https://x.example"\nscenarios = ["steady", "brownout"]\n' + extra
    )
    return load_integration(str(path))


def test_spec_objectives_with_per_scenario_overrides(tmp_path: Path) -> None:
    spec = spec_with("[objectives]\np99_latency = 2.0\n[scenario_objectives.brownout]\nsuccess_rate = 0.8\n", tmp_path)
    assert spec.objectives == Objectives(p99_latency=2.0)
    assert spec.objectives_for("steady") == Objectives(p99_latency=2.0)
    assert spec.objectives_for("brownout") == Objectives(p99_latency=2.0, success_rate=0.8)
    with pytest.raises(ConfigurationError, match="no scenario 'nope'"):
        spec.objectives_for("nope")
    assert load_integration("payments").objectives_for("card-network-timeouts").p99_latency == 8.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[objectives]\nsucces_rate = 0.9\n", r"demo.toml: objectives.succes_rate: unknown field \(expected one of"),
        ("[objectives]\ndeadline_overruns = 3\n", "objectives.deadline_overruns: is always 0"),
        ("[objectives]\nsuccess_rate = 2\n", r"objectives\.success_rate: must be in"),
        ("[scenario_objectives.nope]\nsuccess_rate = 0.9\n", "scenario_objectives.nope: no such scenario"),
        ("[scenario_objectives.steady]\nfoo = 1\n", r"scenario_objectives.steady.foo: unknown field"),
    ],
)
def test_bad_objectives_are_configuration_errors(extra: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=message):
        spec_with(extra, tmp_path)


def test_spec_name_must_equal_its_file_name(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text('name = "demo"\ndescription = "x"\nbase_url = "https://x.example"\nscenarios = ["steady"]\n')
    with pytest.raises(ConfigurationError, match="name 'demo' must equal its file name 'other'"):
        load_integration(str(path))


def test_unknown_auth_key_names_the_field_and_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"auth.token: unknown field \(expected one of env, type\)"):
        spec_with('[auth]\ntype = "bearer"\nenv = "X"\ntoken = "oops"\n', tmp_path)


# -- figures -----------------------------------------------------------------------------------------------------


def test_phases_are_classed_from_the_scenario() -> None:
    assert [classify_phase(p) for p in load_scenario("outage-and-recovery").phases] == [
        "healthy",
        "outage",
        "healthy",
    ]
    assert classify_phase(load_scenario("rate-limited").phases[1]) == "degraded"  # throttling is not an outage
    assert classify_phase(load_scenario("slow-partner").phases[1]) == "degraded"  # slow, few errors
    windows = phase_windows(SCENARIO, 25)
    assert [(w.name, w.start, w.end, w.followed) for w in windows] == [
        ("up", 0, 10, True),
        ("down", 10, 20, True),
        ("up", 20, 25, False),
    ]


def test_recovery_time_is_when_a_window_first_reaches_95_percent() -> None:
    rows = steady_calls(10, 14, ok=False) + steady_calls(14, 30, first_id=100)
    calls = measure(frame(rows), None, SCENARIO, deadline=8.0)
    assert calls.phases[1].recovery_time is None or calls.phases[1].recovery_time >= 0
    table = pd.DataFrame({"start": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0]})
    table["ok"] = [False, False, False, True, True, True, True, True, True, True, True]
    assert recovery_time(table, 10.0) == pytest.approx(3.0)
    assert recovery_time(table.assign(ok=False), 10.0) == math.inf


def test_measure_counts_success_latency_amplification_and_overruns() -> None:
    rows = steady_calls(0, 10) + steady_calls(10, 20, ok=False, first_id=100) + steady_calls(20, 30, first_id=200)
    rows += call(500, 25.0, 9.0, ok=True)  # longer than the 8 s deadline
    rows += rejected(600, 12.0)
    figures = measure(frame(rows), None, SCENARIO, deadline=8.0)
    assert figures.deadline_overruns == 1
    assert figures.success_rate == 1.0  # the outage phase is left out
    down = figures.phases[1]
    assert (down.calls, down.succeeded, down.attempts) == (21, 0, 20)
    assert down.load == pytest.approx(20 / 21)  # no server frame: attempts sent stand in
    assert figures.p99_latency > 0.05  # completed calls only: the rejected call's 0 s is not in it


def test_judge_makes_one_check_per_objective_and_scope() -> None:
    rows = steady_calls(0, 10) + steady_calls(10, 20, ok=False, first_id=100) + steady_calls(20, 30, first_id=200)
    checks = judge(measure(frame(rows), None, SCENARIO, deadline=8.0), Objectives())
    by = {(c.objective, c.scope): c for c in checks}
    assert by[("outage_load", "phase 'down' 10-20 s")].passed is False  # the partner got every call during the outage
    assert by[("success_rate", "whole run outside outage phases")].passed  # the scope says what it counts
    assert by[("recovery_time", "phase 'down' 10-20 s")].measured == pytest.approx(0.0)
    assert not by[("deadline_overruns", "whole run")].measured
    assert (
        Check("s", "success_rate", "whole run", 0.9, 0.8, minimum=True, unit="ratio")
        .describe()
        .endswith("80.0% < 90.0%  FAIL")
    )


# -- findings: one test per rule ---------------------------------------------------------------------------------


def test_budget_refused_retries_names_the_ratio_that_would_allow_them() -> None:
    rows = steady_calls(0, 10) + steady_calls(20, 30, first_id=300)
    for i in range(20):
        t = 10 + i * 0.5
        rows += call(100 + i, t, 0.1, ok=i % 3 != 0, attempts=1, status=200 if i % 3 else 500)
        if i % 3 == 0:
            rows.append({"event": "budget_exhausted", "time": t + 0.1, "call_id": 100 + i, "attempt": 1})
    stingy = config(budget=BudgetPolicy(max_tokens=10, token_ratio=0.1))  # the issue's brownout budget
    finding = rules.budget_refused_retries(context(frame(rows), BROWNOUT, stingy))
    assert finding is not None
    assert "(max_tokens=10, token_ratio=0.1) refused 7 retries during 'brown'" in finding.text
    assert "token_ratio of 0.55" in finding.text  # 7 of 20 attempts failed: 0.35 / 0.65 = 0.54 -> 0.55
    assert rules.budget_refused_retries(context(frame(steady_calls(0, 30)), BROWNOUT, stingy)) is None
    assert rules.budget_refused_retries(context(frame(rows), BROWNOUT)) is None  # ratio 1.0 was not what held it


def test_breaker_open_after_recovery_gives_the_waits() -> None:
    rows = steady_calls(0, 10) + steady_calls(10, 20, ok=False, first_id=100)
    rows += [
        transition(11, "closed", "open"),
        transition(13, "open", "half_open"),
        transition(13.1, "half_open", "open"),
    ]
    rows += [transition(17, "open", "half_open"), transition(17.1, "half_open", "open")]
    rows += [transition(33, "open", "half_open"), transition(33.1, "half_open", "closed")]
    rows += [r for i in range(60) for r in rejected(400 + i, 20 + i * 0.2)] + steady_calls(33, 40, first_id=600)
    finding = rules.breaker_open_after_recovery(context(frame(rows)))
    assert finding is not None
    assert "stayed open 13 s after the partner recovered from 'down' (waits 2, 4, 16 s" in finding.text
    assert rules.breaker_open_after_recovery(context(frame(steady_calls(0, 30)))) is None


def test_p99_at_the_read_timeout_is_a_finding() -> None:
    read = config().timeouts.read
    assert read is not None
    rows = steady_calls(0, 20) + [r for i in range(5) for r in call(900 + i, 20 + i, read, ok=False)]
    assert rules.p99_at_timeout(context(frame(rows))) is None  # no attempt timed out: a coincidence
    for row in rows:
        if row["event"] == "attempt_finished" and row["call_id"] >= 900:
            row["outcome"] = "read_timeout"
    finding = rules.p99_at_timeout(context(frame(rows)))
    assert finding is not None
    assert f"the read timeout ({read:g} s)" in finding.text
    assert rules.p99_at_timeout(context(frame(steady_calls(0, 20)))) is None


def test_retry_after_capped_or_ending_calls() -> None:
    cap = config().retry.max_retry_after
    rows = steady_calls(0, 5) + call(50, 6, 1.0, ok=False, status=429)
    rows.append({"event": "retry_scheduled", "time": 6.5, "call_id": 50, "delay": cap, "reason": "retry_after"})
    finding = rules.retry_after_capped(context(frame(rows)))
    assert finding is not None
    assert f"1 Retry-After hints were cut to max_retry_after ({cap:g} s)" in finding.text
    assert "1 calls ended on a 429" in finding.text
    assert rules.retry_after_capped(context(frame(steady_calls(0, 5)))) is None


def test_breaker_that_never_opened_during_an_outage() -> None:
    rows = steady_calls(0, 10) + steady_calls(10, 20, ok=False, first_id=100) + steady_calls(20, 30, first_id=200)
    finding = rules.breaker_never_opened_in_outage(context(frame(rows)))
    assert finding is not None
    assert "never opened during the outage 'down' (10 s)" in finding.text
    assert rules.breaker_never_opened_in_outage(context(frame([*rows, transition(10.5, "closed", "open")]))) is None


def test_amplification_above_the_objective() -> None:
    rows = steady_calls(0, 10) + [r for i in range(20) for r in call(100 + i, 10 + i * 0.5, 0.3, ok=True, attempts=3)]
    finding = rules.amplification_above_objective(context(frame(rows), BROWNOUT))
    assert finding is not None
    assert "multiplied the load by 3.00 during 'brown'" in finding.text
    assert rules.amplification_above_objective(context(frame(rows), BROWNOUT, amplification=3.0)) is None


def test_deadline_shorter_than_the_retry_schedule() -> None:
    events = frame(steady_calls(0, 5))
    ctx = context(events)
    long = replace(ctx, config=config(retry=replace(ctx.config.retry, max_retry_after=60.0)))
    finding = rules.deadline_shorter_than_schedule(long)
    assert finding is not None
    assert "shorter than max_retry_after (60 s)" in finding.text
    assert rules.deadline_shorter_than_schedule(ctx) is None  # the bundled payments spec caps it at 4 s
    assert find(ctx) == []


# -- the verdict -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["catalog", "payments", "shipping"])
def test_bundled_specs_meet_their_own_objectives_in_the_simulator(name: str) -> None:
    spec = load_integration(name)
    result = exercise(spec)
    verdict = evaluate(spec, result.frame(), result.server_frame())
    assert verdict.passed, "\n".join(c.describe() for c in verdict.failures)
    assert set(verdict.scenarios()) == {s.name for s in spec.scenarios}


def test_verdict_round_trips_and_renders(tmp_path: Path) -> None:
    checks = (
        Check("a", "success_rate", "whole run", 0.9, 0.8, minimum=True, unit="ratio"),
        Check("a", "recovery_time", "phase 'x'", 10, math.inf, unit="s"),
    )
    verdict = Verdict("demo", "simulate", "open-loop", checks, ())
    assert not verdict.passed
    assert len(verdict.failures) == 2
    verdict.save(tmp_path)
    again = Verdict.load(tmp_path)
    assert again.failures[1].measured == math.inf
    assert "FAIL 80.0%/90.0%" in again.to_text()
    assert "never" in again.to_text()
    assert "#f8d7da" in again.to_html()


# -- the design document says why ----------------------------------------------------------------------------------


def test_setting_notes_read_comments_and_their_continuations(tmp_path: Path) -> None:
    from integration_kit.playbook.kinds.http.notes import setting_notes

    path = tmp_path / "n.toml"
    path.write_text(
        'deadline = 8.0   # the page gives up at 10 s\nname = "a # not a comment"\n[budget]\n'
        "token_ratio = 1.0  # first line\n                   # second line\nmax_tokens = 20\n"
        '[[scenario]]\nname = "x"  # not a setting\n'
    )
    assert setting_notes(path) == {
        "deadline": "the page gives up at 10 s",
        "budget.token_ratio": "first line second line",
    }


def test_design_document_gives_reasons_objectives_and_the_schedule_check(tmp_path: Path) -> None:
    from integration_kit.playbook.kinds.http.design import checklist, design_document

    doc = design_document(load_integration("payments"))
    assert "| Setting | Value | Source | Why |" in doc
    assert "| budget.token_ratio | 1.0 | spec | a 30% brownout fails ~30% of attempts" in doc
    assert "## 7. Objectives" in doc
    assert "| success_rate | 0.95 | spec | outage-and-recovery: 0.9, card-network-timeouts: 0.9 |" in doc
    spec = spec_with("deadline = 5.0\n[retry]\nmax_delay = 6.0\n", tmp_path)
    item = next(i for i in checklist(spec) if i.key == "retry_schedule")
    assert not item.passed
    assert "longer than the deadline: max_delay, max_retry_after" in item.detail


def test_the_issues_payments_run_is_judged_in_plain_words() -> None:
    """The payments spec as it was before it was tuned: each problem the issue saw in its charts is said."""
    data = read_toml(Project.discover().integrations / "payments.toml", "spec")
    data["timeouts"]["read"] = 5.0
    data["retry"]["max_retry_after"] = 60.0
    data["budget"] = {"max_tokens": 10, "token_ratio": 0.1}
    data["breaker"].update(window_size=30, wait_in_open=15, wait_in_open_multiplier=2.0, max_wait_in_open=120)
    del data["objectives"], data["scenario_objectives"]
    spec = IntegrationSpec.from_mapping(data)
    result = exercise(spec)
    verdict = evaluate(spec, result.frame(), result.server_frame())
    assert not verdict.passed
    said = "\n".join(verdict.findings_text())
    # the counts depend on the simulator's draws (the issue saw 1,569 refusals, 78% success and about 50 s)
    assert re.search(r"refused [\d,]{3,} retries during 'brownout' while success fell to \d", said)
    assert re.search(r"stayed open \d\d s after the partner recovered from 'outage' \(waits 15, 30, 60 s", said)
    assert "p99 latency is 5.00 s, the read timeout (5 s)" in said
    assert "shorter than max_retry_after (60 s)" in said
