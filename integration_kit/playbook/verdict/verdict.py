"""The verdict of a playbook run, whatever the kind: every objective checked per scenario, the findings, and whether
the run passes.

Each kind judges its own runs (the HTTP kind from its figures per phase, the queue kind from message counts, the
webhook kind from deliveries) into the same :class:`Verdict`: one :class:`Check` per objective, scenario and scope,
and :class:`Finding` s in plain words. A verdict renders as the report's opening table (objective x scenario,
colour-coded), as plain text for the console, as JUnit XML for CI (:mod:`~integration_kit.playbook.verdict.junit`),
and saves as ``verdict.json`` in the run folder, which the ``integration-kit run`` gate reads.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["VERDICT_FILE", "Check", "Finding", "Unit", "Verdict", "format_value"]

VERDICT_FILE = "verdict.json"

#: How a figure is shown: a share (``ratio``: 0.95 is 95.0%), seconds (``s``), a factor (``x``) or a ``count``.
Unit = Literal["ratio", "s", "x", "count"]
#: Units of verdicts saved before checks carried their own (``verdict.json`` of 0.2 runs).
_LEGACY_UNITS: Mapping[str, Unit] = {
    "success_rate": "ratio",
    "p99_latency": "s",
    "recovery_time": "s",
    "deadline_overruns": "count",
}


@dataclass(frozen=True, slots=True)
class Check:
    """One objective checked on one scope of one scenario run: ``measured`` against ``target``.

    ``scope`` is ``"whole run"`` or a part of it (``"phase 'name' 30-150 s"``). ``minimum`` says the target is a
    floor (a success rate), else a ceiling. A NaN measurement (nothing to measure: no calls in the phase) passes.
    """

    scenario: str
    objective: str
    scope: str
    target: float
    measured: float
    minimum: bool = False
    unit: Unit = "x"

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
            f"{self.scenario}  {self.objective} ({self.scope}): {format_value(self.measured, self.unit)} {sign} "
            f"{format_value(self.target, self.unit)}  {mark}"
        )

    def cell(self) -> str:
        """``ok 99.0%/95.0%``: the mark, the measurement and the target."""
        mark = "ok" if self.passed else "FAIL"
        return f"{mark} {format_value(self.measured, self.unit)}/{format_value(self.target, self.unit)}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding: the ``rule`` that made it, the ``scenario`` (``""`` for the spec as a whole), the sentence,
    and the ``figure`` that triggered it (``"name = value"``)."""

    rule: str
    scenario: str
    text: str
    figure: str


@dataclass(frozen=True)
class Verdict:
    """Every check and finding of one integration's run, and the load model it ran under."""

    integration: str
    mode: str
    load_model: str
    checks: tuple[Check, ...]
    findings: tuple[Finding, ...] = ()
    kind: str = "http"

    @property
    def passed(self) -> bool:
        """Whether every objective is met in every scenario."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The checks that failed, in table order."""
        return [c for c in self.checks if not c.passed]

    def scenarios(self) -> list[str]:
        """The scenarios judged, in the order of their first check."""
        return list(dict.fromkeys(c.scenario for c in self.checks))

    def cells(self) -> dict[str, dict[str, Check]]:
        """Objective -> scenario -> the tightest check of the pair (the failing one, else the nearest the target),
        objectives in the order of their first check."""
        cells: dict[str, dict[str, Check]] = {}
        for check in self.checks:
            row = cells.setdefault(check.objective, {})
            if check.scenario not in row or check.margin < row[check.scenario].margin:
                row[check.scenario] = check
        return cells

    def to_html(self) -> str:
        """The verdict table as HTML: a green or red cell per objective and scenario, with target and measurement."""
        scenarios = self.scenarios()
        head = "".join(f"<th>{html.escape(s)}</th>" for s in scenarios)
        rows = []
        for objective, row in self.cells().items():
            tds = []
            for scenario in scenarios:
                check = row.get(scenario)
                if check is None:
                    tds.append('<td style="color:#888">n/a</td>')
                    continue
                colour = "#d4edda" if check.passed else "#f8d7da"
                where = "" if check.scope == "whole run" else f"<br><small>{html.escape(check.scope)}</small>"
                tds.append(
                    f'<td style="background:{colour}">{"pass" if check.passed else "<b>FAIL</b>"}: '
                    f"{format_value(check.measured, check.unit)} "
                    f"({'min' if check.minimum else 'max'} {format_value(check.target, check.unit)}){where}</td>"
                )
            rows.append(f"<tr><th style='text-align:left'>{html.escape(objective)}</th>{''.join(tds)}</tr>")
        status = "PASS: every objective is met" if self.passed else f"FAIL: {len(self.failures)} check(s) missed"
        model = f"; {html.escape(self.load_model)}" if self.load_model else ""
        return (
            f"<p><b>{html.escape(self.integration)}: {status}</b> ({html.escape(self.mode)}{model})</p>"
            f"<table><tr><th>objective</th>{head}</tr>{''.join(rows)}</table>"
        )

    def to_text(self) -> str:
        """The verdict table as aligned plain text for the console."""
        scenarios = self.scenarios()
        cells = self.cells()
        text = {(o, s): (row[s].cell() if s in row else "n/a") for o, row in cells.items() for s in scenarios}
        width = max([len("objective"), *(len(o) for o in cells)])
        widths = [max(len(s), *(len(text[(o, s)]) for o in cells)) for s in scenarios]
        lines = [f"{'objective':<{width}}  " + "  ".join(f"{s:<{w}}" for s, w in zip(scenarios, widths, strict=True))]
        lines.append("-" * len(lines[0]))
        for o in cells:
            row = "  ".join(f"{text[(o, s)]:<{w}}" for s, w in zip(scenarios, widths, strict=True))
            lines.append(f"{o:<{width}}  {row}")
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
            "kind": self.kind,
            "mode": self.mode,
            "load_model": self.load_model,
            "passed": self.passed,
            "checks": [
                {
                    **asdict(c),
                    "target": _json_number(c.target),
                    "measured": _json_number(c.measured),
                    "passed": c.passed,
                }
                for c in self.checks
            ],
            "findings": [asdict(f) for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """The inverse of :meth:`as_dict` (also reads 0.2's files, whose checks carry no ``minimum`` or ``unit``)."""
        checks = tuple(
            Check(
                c["scenario"],
                c["objective"],
                c["scope"],
                float(c["target"]),
                float(c["measured"]),
                minimum=bool(c.get("minimum", c["objective"] == "success_rate")),
                unit=c.get("unit", _LEGACY_UNITS.get(c["objective"], "x")),
            )
            for c in data["checks"]
        )
        findings = tuple(Finding(**f) for f in data.get("findings", ()))
        return cls(
            data["integration"], data["mode"], data.get("load_model", ""), checks, findings, data.get("kind", "http")
        )

    def save(self, folder: str | Path) -> Path:
        """Write ``verdict.json`` into ``folder`` and return its path."""
        path = Path(folder) / VERDICT_FILE
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Verdict:
        """Read ``verdict.json`` from a run folder."""
        return cls.from_dict(json.loads((Path(folder) / VERDICT_FILE).read_text(encoding="utf-8")))


def format_value(value: float, unit: Unit) -> str:
    """``value`` as the report shows it: ``95.0%``, ``0.32 s``, ``1.20x``, ``3``; ``n/a`` for NaN, ``never`` for
    infinity."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "never"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:.2f}x"


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)
