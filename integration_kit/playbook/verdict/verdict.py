"""The verdict of a playbook run, whatever the kind: every objective checked per scenario, the findings, and whether
the run passes.

Each kind judges its own runs (the HTTP kind from its figures per phase, the queue kind from message counts, the
webhook kind from deliveries) into the same :class:`Verdict`: one :class:`Check` per objective, scenario and scope,
and :class:`Finding` s in plain words. A verdict renders as the report's opening table (objective x scenario,
colour-coded), as plain text for the console, as JUnit XML for CI (:mod:`~integration_kit.playbook.verdict.junit`),
and saves as ``verdict.json`` in the run folder, which the ``integration-kit run`` gate reads.

Three states per check: met, missed (``FAIL``), or ``no data`` (nothing to measure: a phase in which no call
started). *No data* is never shown as met and never fails the gate: the CLI lists it apart. A scenario whose run
could not be trusted (a live run whose load generator fell behind) is *invalid*: its checks are shown but count
neither as met nor as missed, the verdict says why with the figure, and the gate exits with its own status.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["NO_DATA", "VERDICT_FILE", "Check", "CheckState", "Finding", "Unit", "Verdict", "format_value"]

VERDICT_FILE = "verdict.json"

#: How a figure is shown: a share (``ratio``: 0.95 is 95.0%), seconds (``s``), a factor (``x``) or a ``count``.
Unit = Literal["ratio", "s", "x", "count"]
#: A check's state: the objective is met, missed, or there was nothing to measure.
CheckState = Literal["ok", "FAIL", "no data"]
#: What a check with nothing to measure shows.
NO_DATA = "no data"
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
    floor (a success rate), else a ceiling. A NaN measurement (nothing to measure: no calls in the phase) is in
    state ``"no data"``: not met, not missed. ``tolerance`` (in the check's unit, default 0) is how far past the
    target a measurement still meets it: a live run's clock granularity, as a call cut at its deadline ends a few
    milliseconds after it on real sockets and at it exactly in the simulator.
    """

    scenario: str
    objective: str
    scope: str
    target: float
    measured: float
    minimum: bool = False
    unit: Unit = "x"
    tolerance: float = 0.0

    @property
    def margin(self) -> float:
        """How far inside the target the measurement is (negative: by how much it misses)."""
        if math.isnan(self.measured):
            return math.inf
        return self.measured - self.target if self.minimum else self.target - self.measured

    @property
    def state(self) -> CheckState:
        """``"ok"`` (met), ``"FAIL"`` (missed) or ``"no data"`` (a NaN measurement)."""
        if math.isnan(self.measured):
            return "no data"
        return "ok" if self.margin >= -self.tolerance - 1e-12 else "FAIL"

    @property
    def passed(self) -> bool:
        """Whether the objective is not missed on this scope (met, or nothing to measure: see :attr:`state`)."""
        return self.state != "FAIL"

    def describe(self) -> str:
        """One line for the console: ``brownout  success_rate (phase 'brownout'): 78.0% < 95.0%  FAIL``."""
        if self.state == "no data":
            return f"{self.scenario}  {self.objective} ({self.scope}): no data  (target {self._target()})"
        sign = (">=" if self.minimum else "<=") if self.passed else ("<" if self.minimum else ">")
        mark = "pass" if self.passed else "FAIL"
        return (
            f"{self.scenario}  {self.objective} ({self.scope}): {format_value(self.measured, self.unit)} {sign} "
            f"{self._target()}  {mark}"
        )

    def cell(self) -> str:
        """``ok 99.0%/95.0%``: the mark, the measurement and the target (``no data/95.0%`` with nothing measured)."""
        if self.state == "no data":
            return f"{NO_DATA}/{self._target()}"
        return f"{self.state} {format_value(self.measured, self.unit)}/{self._target()}"

    def _target(self) -> str:
        shown = format_value(self.target, self.unit)
        return f"{shown} (+{format_value(self.tolerance, self.unit)} live)" if self.tolerance else shown


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
    #: Scenarios whose run cannot be judged, with why (``"invalid run: the load generator fell behind by 4.2 s
    #: ..."``): the test bench, not the integration, failed there. Their checks count neither way.
    invalid: Mapping[str, str] = field(default_factory=dict)
    #: What was exercised: the URL (or broker, or receiver) and how (``"live: http://127.0.0.1:51234 ..."``).
    target: str = ""
    #: One sentence per objective (or figure) saying what it counts, shown next to the table.
    definitions: Mapping[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether no objective is missed in any scenario that could be judged (invalid scenarios aside)."""
        return not self.failures

    @property
    def valid(self) -> bool:
        """Whether every scenario's run could be judged (no :attr:`invalid` scenario)."""
        return not self.invalid

    @property
    def failures(self) -> list[Check]:
        """The checks that failed in scenarios that could be judged, in table order."""
        return [c for c in self.checks if not c.passed and c.scenario not in self.invalid]

    @property
    def no_data(self) -> list[Check]:
        """The checks with nothing to measure, in scenarios that could be judged."""
        return [c for c in self.checks if c.state == "no data" and c.scenario not in self.invalid]

    def status(self) -> str:
        """``PASS``, ``FAIL`` or ``INVALID RUN`` (no objective missed, but some scenario's run could not be
        judged)."""
        if self.failures:
            return "FAIL"
        return "INVALID RUN" if self.invalid else "PASS"

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
                tds.append(self._html_cell(check))
            rows.append(f"<tr><th style='text-align:left'>{html.escape(objective)}</th>{''.join(tds)}</tr>")
        if self.invalid:
            tds = [
                f'<td style="background:#fff3cd"><b>{html.escape(self.invalid[s])}</b></td>'
                if s in self.invalid
                else '<td style="background:#d4edda">valid</td>'
                for s in scenarios
            ]
            rows.insert(0, f"<tr><th style='text-align:left'>run validity</th>{''.join(tds)}</tr>")
        status = {
            "PASS": "PASS: every objective is met",
            "FAIL": f"FAIL: {len(self.failures)} check(s) missed",
            "INVALID RUN": f"INVALID RUN: the test bench could not keep up in {len(self.invalid)} scenario(s)",
        }[self.status()]
        model = f"; {html.escape(self.load_model)}" if self.load_model else ""
        target = f"<p>Exercised: <code>{html.escape(self.target)}</code></p>" if self.target else ""
        notes = "".join(
            f"<li><b>{html.escape(name)}</b>: {html.escape(text)}</li>" for name, text in self.definitions.items()
        )
        return (
            f"<p><b>{html.escape(self.integration)}: {status}</b> ({html.escape(self.mode)}{model})</p>{target}"
            f"<table><tr><th>objective</th>{head}</tr>{''.join(rows)}</table>" + (f"<ul>{notes}</ul>" if notes else "")
        )

    def _html_cell(self, check: Check) -> str:
        where = "" if check.scope == "whole run" else f"<br><small>{html.escape(check.scope)}</small>"
        bound = f"({'min' if check.minimum else 'max'} {format_value(check.target, check.unit)}){where}"
        if check.scenario in self.invalid:
            return f'<td style="color:#888">not judged: {format_value(check.measured, check.unit)} {bound}</td>'
        if check.state == "no data":
            return f'<td style="background:#eee">{NO_DATA} {bound}</td>'
        colour = "#d4edda" if check.passed else "#f8d7da"
        mark = "pass" if check.passed else "<b>FAIL</b>"
        return f'<td style="background:{colour}">{mark}: {format_value(check.measured, check.unit)} {bound}</td>'

    def to_text(self) -> str:
        """The verdict table as aligned plain text for the console."""
        scenarios = self.scenarios()
        cells = self.cells()
        text = {
            (o, s): (("void " if s in self.invalid else "") + row[s].cell() if s in row else "n/a")
            for o, row in cells.items()
            for s in scenarios
        }
        names = list(cells)
        if self.invalid:
            names.insert(0, "run validity")
            text.update({("run validity", s): "INVALID" if s in self.invalid else "valid" for s in scenarios})
        width = max([len("objective"), *(len(o) for o in names)])
        widths = [max(len(s), *(len(text[(o, s)]) for o in names)) for s in scenarios]
        lines = [f"{'objective':<{width}}  " + "  ".join(f"{s:<{w}}" for s, w in zip(scenarios, widths, strict=True))]
        lines.append("-" * len(lines[0]))
        for o in names:
            row = "  ".join(f"{text[(o, s)]:<{w}}" for s, w in zip(scenarios, widths, strict=True))
            lines.append(f"{o:<{width}}  {row}")
        return "\n".join(lines)

    def findings_markdown(self) -> str:
        """The findings as a Markdown list, each with its scenario and figure (a line saying none when none: a
        verdict that missed objectives never says nothing calls for a change)."""
        if not self.findings:
            if self.failures:
                return "No advice from this kind's findings for the missed objectives above."
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
            "status": self.status(),
            "target": self.target,
            "invalid": dict(self.invalid),
            "definitions": dict(self.definitions),
            "checks": [
                {
                    **asdict(c),
                    "target": _json_number(c.target),
                    "measured": _json_number(c.measured),
                    "passed": c.passed,
                    "state": c.state,
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
                tolerance=float(c.get("tolerance", 0.0)),
            )
            for c in data["checks"]
        )
        findings = tuple(Finding(**f) for f in data.get("findings", ()))
        return cls(
            data["integration"],
            data["mode"],
            data.get("load_model", ""),
            checks,
            findings,
            data.get("kind", "http"),
            invalid=dict(data.get("invalid", {})),
            target=str(data.get("target", "")),
            definitions=dict(data.get("definitions", {})),
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
