"""Judging an HTTP integration's run: its figures per scenario and phase against the spec's objectives, and the
findings rules (:mod:`~integration_kit.playbook.kinds.http.findings`).

:func:`evaluate` measures each scenario run (:mod:`~integration_kit.playbook.kinds.http.figures`), checks the figures
against the spec's objectives for that scenario (:func:`judge`, one
:class:`~integration_kit.playbook.verdict.verdict.Check` per objective and scope) and runs the findings rules;
:func:`judge_run` does it for a saved run folder and writes ``verdict.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

import pandas as pd

from integration_kit.playbook.kinds.http.bench import BenchHealth
from integration_kit.playbook.kinds.http.exercise import load_exercise
from integration_kit.playbook.kinds.http.figures import DEADLINE_TOLERANCE, ScenarioFigures, measure
from integration_kit.playbook.kinds.http.findings import RunContext, find
from integration_kit.playbook.kinds.http.objectives import Objectives
from integration_kit.playbook.kinds.http.spec import IntegrationSpec
from integration_kit.playbook.verdict.verdict import Check, Finding, Unit, Verdict

__all__ = ["DEFINITIONS", "UNITS", "evaluate", "judge", "judge_run"]

#: What each objective counts, one sentence each: the report and the console show them beside the verdict, so a
#: figure here never reads as the run table's (which counts every call: ``success all``, ``p99 all s``).
DEFINITIONS: dict[str, str] = {
    "success_rate": "calls that succeeded / calls started outside outage phases (the scope says so), and per "
    "degraded phase; outages are judged by outage_load and recovery_time",
    "p99_latency": "99th percentile of the duration of calls that reached the partner (calls refused by the "
    "breaker or a limit left out), whole run, scenario seconds",
    "amplification": "attempts sent per call started, whole run and per bad phase",
    "outage_load": "attempts the partner received in an outage phase per call offered in it",
    "recovery_time": "scenario seconds from the end of a bad phase until 95% of the calls in a 5 s window succeed",
    "deadline_overruns": "calls that outlived the deadline (always 0)",
    "rate_limited": "attempts the partner refused for their rate (429, or GitHub's 403) / attempts sent, whole run",
    "malformed_accepted": "calls that handed the caller a 2xx whose body breaks the partner's OpenAPI schema "
    "(malformed_caught: those response validation failed as an invalid response instead), whole run",
}

#: How each objective is shown: a share (``ratio``), seconds (``s``), a factor (``x``) or a count.
UNITS: dict[str, Unit] = {
    "success_rate": "ratio",
    "p99_latency": "s",
    "recovery_time": "s",
    "amplification": "x",
    "outage_load": "x",
    "deadline_overruns": "count",
    "rate_limited": "ratio",
    "malformed_accepted": "count",
}


def _check(scenario: str, objective: str, scope: str, target: float, measured: float) -> Check:
    return Check(
        scenario, objective, scope, target, measured, minimum=objective == "success_rate", unit=UNITS[objective]
    )


def judge(figures: ScenarioFigures, objectives: Objectives, *, validates: bool = False) -> list[Check]:
    """The checks of one scenario run: each objective over the whole run and over the phases it applies to.

    ``validates``: the spec validates responses (its ``validate_responses``), so ``malformed_accepted`` is judged
    against 0 when the spec declares no limit."""
    name = figures.scenario
    outage = any(p.window.kind == "outage" for p in figures.phases)
    checks = [
        _check(
            name,
            "success_rate",
            "whole run outside outage phases" if outage else "whole run",
            objectives.success_rate,
            figures.success_rate,
        ),
        _check(name, "p99_latency", "whole run", objectives.p99_latency, figures.p99_latency),
        _check(name, "amplification", "whole run", objectives.amplification, figures.amplification),
    ]
    for phase in figures.phases:
        scope = f"phase {phase.window.label!r} {phase.window.start:.0f}-{phase.window.end:.0f} s"
        if phase.window.kind == "degraded":
            checks.append(_check(name, "success_rate", scope, objectives.success_rate, phase.success_rate))
        if phase.window.bad:
            checks.append(_check(name, "amplification", scope, objectives.amplification, phase.amplification))
        if phase.window.kind == "outage":
            checks.append(_check(name, "outage_load", scope, objectives.outage_load, phase.load))
        if phase.recovery_time is not None:
            checks.append(_check(name, "recovery_time", scope, objectives.recovery_time, phase.recovery_time))
    if objectives.rate_limited < 1.0:  # judged when the spec declares it
        checks.append(_check(name, "rate_limited", "whole run", objectives.rate_limited, figures.rate_limited))
    if (limit := objectives.malformed_limit(validates)) is not None:
        checks.append(_check(name, "malformed_accepted", "whole run", limit, figures.malformed_accepted))
    checks.append(
        _check(name, "deadline_overruns", "whole run", float(Objectives.deadline_overruns), figures.deadline_overruns)
    )
    return checks


def evaluate(
    spec: IntegrationSpec,
    events: pd.DataFrame,
    server: pd.DataFrame | None,
    *,
    mode: str = "simulate",
    load_model: str = "",
    scenarios: Iterable[str] | None = None,
    bench: Mapping[str, BenchHealth] | None = None,
    target: str = "",
    malformed: Mapping[str, tuple[int, int]] | None = None,
) -> Verdict:
    """Judge a run of ``spec``: ``events`` and ``server`` hold every scenario's rows with a ``scenario`` column
    (as :meth:`~integration_kit.playbook.run.runner.ExerciseResult.frame` gives them). ``bench`` holds each live
    scenario's bench health: a scenario whose bench could not keep up (:meth:`BenchHealth.reason`) is invalid, its
    checks kept but not judged, and no finding is drawn from it (the figures are the bench's, not the
    integration's). ``malformed`` holds each scenario's (caught, accepted) malformed answers (default none)."""
    names = list(scenarios) if scenarios is not None else list(dict.fromkeys(events["scenario"].astype(str)))
    void: dict[str, str] = {}
    checks: list[Check] = []
    findings: list[Finding] = []
    for name in names:
        scenario = spec.scenario(name)
        frame = events[events["scenario"] == name]
        view = server[server["scenario"] == name] if server is not None and "scenario" in server else None
        objectives = spec.objectives_for(name)
        counts = (malformed or {}).get(name, (0, 0))
        figures = measure(frame, view, scenario, deadline=spec.client.deadline, malformed=counts)
        judged = judge(figures, objectives, validates=spec.validate_responses)
        if mode == "live":  # real clocks: a call cut at its deadline ends a few ms after it (see DEADLINE_TOLERANCE)
            judged = [replace(c, tolerance=DEADLINE_TOLERANCE) if c.unit == "s" else c for c in judged]
        checks.extend(judged)
        health = (bench or {}).get(name)
        if health is not None and (why := health.reason(missed=any(not c.passed for c in judged))):
            void[name] = why
            continue
        ctx = RunContext(scenario, frame, view, figures, objectives, spec.client)
        findings.extend(f for f in find(ctx) if f not in findings)
    return Verdict(
        spec.name,
        mode,
        load_model,
        tuple(checks),
        tuple(_dedupe(findings)),
        invalid=void,
        target=target,
        definitions=DEFINITIONS,
    )


def judge_run(spec: IntegrationSpec, out_dir: str | Path) -> Verdict:
    """Evaluate a saved exercise (stage 02's run folder) and save ``verdict.json`` next to it."""
    events, server, summary = load_exercise(out_dir)
    bench = {
        name: BenchHealth.from_dict(figures["bench"])
        for name, figures in summary.get("scenarios", {}).items()
        if figures.get("bench")
    }
    verdict = evaluate(
        spec,
        events,
        server,
        mode=str(summary.get("mode", "simulate")),
        load_model=str(summary.get("load_model", "")),
        scenarios=list(summary.get("scenarios", {})),
        bench=bench,
        target=str(summary.get("target", "")),
        malformed={
            name: (int(figures.get("malformed_caught", 0)), int(figures.get("malformed_accepted", 0)))
            for name, figures in summary.get("scenarios", {}).items()
        },
    )
    verdict.save(out_dir)
    return verdict


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Spec-wide findings (no scenario) once, scenario findings as they are."""
    seen: set[str] = set()
    kept = []
    for finding in findings:
        key = finding.text if not finding.scenario else f"{finding.scenario}\0{finding.text}"
        if key not in seen:
            seen.add(key)
            kept.append(finding)
    return kept
