"""The verdict of a playbook run: every objective checked per scenario, the findings, and whether the run passes.

:func:`evaluate` measures each scenario run (:mod:`~integration_kit.playbook.figures`), checks the figures
against the spec's objectives for that scenario (:func:`judge`, one :class:`Check` per objective and scope) and
runs the findings rules (:mod:`~integration_kit.playbook.findings`). A :class:`Verdict` renders as the report's
opening table (objective x scenario, colour-coded), as plain text for the console, and saves as
``verdict.json`` in the run folder, which the ``integration-kit run`` gate reads.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from integration_kit.playbook.figures import ScenarioFigures, measure
from integration_kit.playbook.findings import Finding, RunContext, find
from integration_kit.playbook.objectives import Objectives
from integration_kit.playbook.spec import IntegrationSpec

__all__ = ["OBJECTIVE_ORDER", "VERDICT_FILE", "Check", "Verdict", "evaluate", "judge", "judge_run"]

VERDICT_FILE = "verdict.json"
#: The rows of the verdict table, in order.
OBJECTIVE_ORDER: tuple[str, ...] = (*Objectives.names(), "deadline_overruns")
_MIN_OBJECTIVES = frozenset({"success_rate"})


@dataclass(frozen=True, slots=True)
class Check:
    """One objective checked on one scope of one scenario run: ``measured`` against ``target``.

    ``scope`` is ``"whole run"`` or ``"phase 'name' 30-150 s"``. ``success_rate`` is a minimum, every other objective a
    maximum. A NaN measurement (nothing to measure: no calls in the phase) passes.
    """

    scenario: str
    objective: str
    scope: str
    target: float
    measured: float

    @property
    def minimum(self) -> bool:
        """Whether the target is a floor (else a ceiling)."""
        return self.objective in _MIN_OBJECTIVES

    @property
    def margin(self) -> float:
        """How far inside the target the measurement is (negative: by how much it misses)."""
        if math.isnan(self.measured):
            return math.inf
        return self.measured - self.target if self.minimum else self.target - self.measured

    @property
    def passed(self) -> bool:
        """Whether the objective is met on this scope."""
        return self.margin >= -1e-12

    def describe(self) -> str:
        """One line for the console: ``brownout  success_rate (phase 'brownout'): 78.0% < 95.0%  FAIL``."""
        sign = (">=" if self.minimum else "<=") if self.passed else ("<" if self.minimum else ">")
        mark = "pass" if self.passed else "FAIL"
        return (
            f"{self.scenario}  {self.objective} ({self.scope}): {_format(self.objective, self.measured)} {sign} "
            f"{_format(self.objective, self.target)}  {mark}"
        )


@dataclass(frozen=True)
class Verdict:
    """Every check and finding of one integration's run, and the load model it ran under."""

    integration: str
    mode: str
    load_model: str
    checks: tuple[Check, ...]
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        """Whether every objective is met in every scenario."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The checks that failed, in table order."""
        return [c for c in self.checks if not c.passed]

    def table(self) -> pd.DataFrame:
        """Objective x scenario: the tightest check of each pair (the failing one, else the nearest the target)."""
        scenarios = list(dict.fromkeys(c.scenario for c in self.checks))
        cells: dict[str, dict[str, Check]] = {}
        for check in self.checks:
            row = cells.setdefault(check.objective, {})
            if check.scenario not in row or check.margin < row[check.scenario].margin:
                row[check.scenario] = check
        index = [o for o in OBJECTIVE_ORDER if o in cells]
        return pd.DataFrame(
            [[cells[o].get(s) for s in scenarios] for o in index], index=pd.Index(index), columns=scenarios
        )

    def to_html(self) -> str:
        """The verdict table as HTML: a green or red cell per objective and scenario, with target and measurement."""
        table = self.table()
        head = "".join(f"<th>{html.escape(str(s))}</th>" for s in table.columns)
        rows = []
        for objective, cells in table.iterrows():
            tds = []
            for check in cells:
                if not isinstance(check, Check):
                    tds.append('<td style="color:#888">n/a</td>')
                    continue
                colour = "#d4edda" if check.passed else "#f8d7da"
                where = "" if check.scope == "whole run" else f"<br><small>{html.escape(check.scope)}</small>"
                tds.append(
                    f'<td style="background:{colour}">{"pass" if check.passed else "<b>FAIL</b>"}: '
                    f"{_format(check.objective, check.measured)} "
                    f"({'min' if check.minimum else 'max'} {_format(check.objective, check.target)}){where}</td>"
                )
            rows.append(f"<tr><th style='text-align:left'>{objective}</th>{''.join(tds)}</tr>")
        status = "PASS: every objective is met" if self.passed else f"FAIL: {len(self.failures)} check(s) missed"
        return (
            f"<p><b>{html.escape(self.integration)}: {status}</b> ({html.escape(self.mode)}; "
            f"{html.escape(self.load_model)})</p>"
            f"<table><tr><th>objective</th>{head}</tr>{''.join(rows)}</table>"
        )

    def to_text(self) -> str:
        """The verdict table as aligned plain text for the console."""
        table = self.table()
        width = max([len("objective"), *(len(str(o)) for o in table.index)])
        columns = [str(s) for s in table.columns]
        cells = {(str(o), str(s)): _cell_text(c) for o, row in table.iterrows() for s, c in row.items()}
        widths = [max(len(s), *(len(cells[(str(o), s)]) for o in table.index)) for s in columns]
        lines = [f"{'objective':<{width}}  " + "  ".join(f"{s:<{w}}" for s, w in zip(columns, widths, strict=True))]
        lines.append("-" * len(lines[0]))
        for o in table.index:
            row = "  ".join(f"{cells[(str(o), s)]:<{w}}" for s, w in zip(columns, widths, strict=True))
            lines.append(f"{o!s:<{width}}  {row}")
        return "\n".join(lines)

    def findings_markdown(self) -> str:
        """The findings as a Markdown list, each with its scenario and figure (a line saying none when none)."""
        if not self.findings:
            return "No findings: nothing in the events calls for a change."
        return "\n".join(f"- **{f.scenario or 'spec'}**: {f.text} (`{f.figure}`)" for f in self.findings)

    def findings_text(self) -> list[str]:
        """Each finding as one line, prefixed with its scenario."""
        return [f"[{f.scenario or 'spec'}] {f.text} ({f.figure})" for f in self.findings]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (infinities and NaN become strings)."""
        return {
            "integration": self.integration,
            "mode": self.mode,
            "load_model": self.load_model,
            "passed": self.passed,
            "checks": [{**asdict(c), "measured": _json_number(c.measured), "passed": c.passed} for c in self.checks],
            "findings": [asdict(f) for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """The inverse of :meth:`as_dict`."""
        checks = tuple(
            Check(c["scenario"], c["objective"], c["scope"], float(c["target"]), float(c["measured"]))
            for c in data["checks"]
        )
        findings = tuple(Finding(**f) for f in data["findings"])
        return cls(data["integration"], data["mode"], data.get("load_model", ""), checks, findings)

    def save(self, folder: str | Path) -> Path:
        """Write ``verdict.json`` into ``folder`` and return its path."""
        path = Path(folder) / VERDICT_FILE
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Verdict:
        """Read ``verdict.json`` from a run folder."""
        return cls.from_dict(json.loads((Path(folder) / VERDICT_FILE).read_text(encoding="utf-8")))


def judge(figures: ScenarioFigures, objectives: Objectives) -> list[Check]:
    """The checks of one scenario run: each objective over the whole run and over the phases it applies to."""
    name = figures.scenario
    checks = [
        Check(name, "success_rate", "whole run", objectives.success_rate, figures.success_rate),
        Check(name, "p99_latency", "whole run", objectives.p99_latency, figures.p99_latency),
        Check(name, "amplification", "whole run", objectives.amplification, figures.amplification),
    ]
    for phase in figures.phases:
        scope = f"phase {phase.window.label!r} {phase.window.start:.0f}-{phase.window.end:.0f} s"
        if phase.window.kind == "degraded":
            checks.append(Check(name, "success_rate", scope, objectives.success_rate, phase.success_rate))
        if phase.window.bad:
            checks.append(Check(name, "amplification", scope, objectives.amplification, phase.amplification))
        if phase.window.kind == "outage":
            checks.append(Check(name, "outage_load", scope, objectives.outage_load, phase.load))
        if phase.recovery_time is not None:
            checks.append(Check(name, "recovery_time", scope, objectives.recovery_time, phase.recovery_time))
    checks.append(
        Check(name, "deadline_overruns", "whole run", float(Objectives.deadline_overruns), figures.deadline_overruns)
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
) -> Verdict:
    """Judge a run of ``spec``: ``events`` and ``server`` hold every scenario's rows with a ``scenario`` column
    (as :meth:`~integration_kit.playbook.runner.ExerciseResult.frame` gives them)."""
    names = list(scenarios) if scenarios is not None else list(dict.fromkeys(events["scenario"].astype(str)))
    checks: list[Check] = []
    findings: list[Finding] = []
    for name in names:
        scenario = spec.scenario(name)
        frame = events[events["scenario"] == name]
        view = server[server["scenario"] == name] if server is not None and "scenario" in server else None
        objectives = spec.objectives_for(name)
        figures = measure(frame, view, scenario, deadline=spec.client.deadline)
        checks.extend(judge(figures, objectives))
        ctx = RunContext(scenario, frame, view, figures, objectives, spec.client)
        findings.extend(f for f in find(ctx) if f not in findings)
    return Verdict(spec.name, mode, load_model, tuple(checks), tuple(_dedupe(findings)))


def judge_run(spec: IntegrationSpec, out_dir: str | Path) -> Verdict:
    """Evaluate a saved exercise (stage 02's run folder) and save ``verdict.json`` next to it."""
    from integration_kit.playbook.runner import load_exercise

    events, server, summary = load_exercise(out_dir)
    verdict = evaluate(
        spec,
        events,
        server,
        mode=str(summary.get("mode", "simulate")),
        load_model=str(summary.get("load_model", "")),
        scenarios=list(summary.get("scenarios", {})),
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


def _format(objective: str, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "never"
    if objective == "success_rate":
        return f"{value:.1%}"
    if objective in ("p99_latency", "recovery_time"):
        return f"{value:.2f} s"
    if objective == "deadline_overruns":
        return f"{value:.0f}"
    return f"{value:.2f}x"


def _cell_text(check: object) -> str:
    """``ok 99.0%/95.0%``: the mark, the measurement and the target; ``n/a`` when not judged."""
    if not isinstance(check, Check):
        return "n/a"
    mark = "ok" if check.passed else "FAIL"
    return f"{mark} {_format(check.objective, check.measured)}/{_format(check.objective, check.target)}"


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)
