"""The tables ``integration-kit run`` prints: the figures per integration and scenario, and each verdict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integration_kit.playbook.kinds.protocol import Kind
from integration_kit.playbook.verdict.verdict import Verdict

__all__ = ["CALL_COLUMNS", "run_table", "verdict_report"]

#: What the call table's figures count, one sentence each (printed under it; the verdict's objectives count
#: differently and say so in their own definitions).
CALL_COLUMNS: dict[str, str] = {
    "success all": "calls that succeeded / every call offered, outage phases and refused calls included",
    "p99 all s": "99th percentile of every call's duration, refused calls included (scenario seconds)",
}

#: What the malformed-answer counts say, printed under the call table when a run met any (issue 27).
MALFORMED_COLUMNS: dict[str, str] = {
    "malformed caught": "calls whose 2xx answer broke the partner's OpenAPI schema and failed response validation",
    "malformed accepted": "calls that handed such an answer to the caller unchecked",
}


def run_table(rows: list[tuple[str, str, dict[str, object]]], kinds: Mapping[str, Kind[Any]] | None = None) -> str:
    """The summary tables printed after ``run``: one line per integration and scenario, queue integrations in
    their own table (messages, lost, applied twice, dead letters, latency, lag and whether the objectives held),
    and each kind with its own columns (``kinds``: integration name to its kind, see
    :meth:`~integration_kit.playbook.kinds.protocol.Kind.run_columns`) in a table of its own, with what each
    column counts under it. An integration missing from ``kinds`` is in the shared call table."""
    owned, own = _own_tables(rows, kinds or {})
    rows = [r for r in rows if r[0] not in owned]
    if own and not rows:
        return "\n\n".join(own)
    calls = [r for r in rows if "applied_twice" not in r[2]]
    queues = [r for r in rows if "applied_twice" in r[2]]
    width = max([len("integration"), *(len(name) for name, _, _ in rows)])
    tables = []
    if calls or not queues:
        header = (
            f"{'integration':<{width}} {'scenario':<24} {'calls':>7} {'success all':>11} {'rejected':>8} "
            f"{'ampl.':>6} {'p99 all s':>9} {'transitions':>11}"
        )
        lines = [header, "-" * len(header)]
        for name, scenario, f in calls:
            success = f.get("success_rate")
            p99 = f.get("latency_p99")
            amplification = f.get("amplification")
            lines.append(
                f"{name:<{width}} {scenario:<24} {f.get('calls', 0):>7,} "
                f"{_figure(success, '.1%'):>11} {f.get('rejected', 0):>8,} "
                f"{_figure(amplification, '.2f'):>6} "
                f"{_figure(p99, '.3f'):>9} {len(f.get('transitions', [])):>11}"  # type: ignore[arg-type]
            )
        lines.extend(f"  {name}: {text}." for name, text in CALL_COLUMNS.items())
        for name, scenario, f in calls:
            if "malformed_caught" in f:
                lines.append(
                    f"  {name} {scenario}: malformed caught {f['malformed_caught']:,}, "
                    f"accepted {f.get('malformed_accepted', 0):,}"
                )
        if any("malformed_caught" in f for _, _, f in calls):
            lines.extend(f"  {name}: {text}." for name, text in MALFORMED_COLUMNS.items())
        tables.append("\n".join(lines))
    if queues:
        header = (
            f"{'integration':<{width}} {'scenario':<24} {'messages':>8} {'lost':>5} {'twice':>5} {'dead':>5} "
            f"{'p99 s':>7} {'max lag s':>9} {'objectives':>10}"
        )
        lines = [header, "-" * len(header)]
        for name, scenario, f in queues:
            objectives = f.get("objectives", [])
            verdict = "met" if all(o["met"] for o in objectives) else "NOT met"  # type: ignore[attr-defined]
            lines.append(
                f"{name:<{width}} {scenario:<24} {f['messages']:>8,} {f['lost']:>5,} {f['applied_twice']:>5,} "
                f"{f['dead_letters']:>5,} {f['latency_p99']:>7.1f} {f['max_lag']:>9.1f} {verdict:>10}"
            )
        tables.append("\n".join(lines))
    return "\n\n".join([*tables, *own])


def _own_tables(
    rows: list[tuple[str, str, dict[str, object]]], kinds: Mapping[str, Kind[Any]]
) -> tuple[set[str], list[str]]:
    """The integrations whose kind has its own columns, and one table per such kind (in the order the kinds
    first appear): a header of the kind's columns, one line per integration and scenario, what each counts."""
    by_kind: dict[int, tuple[Kind[Any], list[tuple[str, str, Mapping[str, str]]]]] = {}
    for name, scenario, figures in rows:
        kind = kinds.get(name)
        cells = kind.run_columns(figures) if kind is not None else None
        if kind is not None and cells is not None:
            by_kind.setdefault(id(kind), (kind, []))[1].append((name, scenario, cells))
    tables = []
    for kind, lines in by_kind.values():
        headers = list(kind.run_notes)
        width = max([len("integration"), *(len(name) for name, _, _ in lines)])
        widths = [max(len(h), *(len(c.get(h, "")) for _, _, c in lines)) for h in headers]
        header = f"{'integration':<{width}} {'scenario':<24} " + " ".join(
            f"{h:>{w}}" for h, w in zip(headers, widths, strict=True)
        )
        text = [header, "-" * len(header)]
        for name, scenario, cells in lines:
            row = " ".join(f"{cells.get(h, ''):>{w}}" for h, w in zip(headers, widths, strict=True))
            text.append(f"{name:<{width}} {scenario:<24} {row}")
        text.extend(f"  {h}: {note}." for h, note in kind.run_notes.items())
        tables.append("\n".join(text))
    return {name for _, lines in by_kind.values() for name, _, _ in lines}, tables


def verdict_report(verdicts: list[Verdict]) -> tuple[int, int]:
    """Print each integration's verdict table, what was exercised, what each objective counts, its invalid
    scenarios, failing rows, objectives with no data, and findings; return (failed checks, invalid scenarios)."""
    missed = invalid = 0
    for verdict in verdicts:
        print(
            f"\nverdict: {verdict.integration} [{verdict.kind}] {verdict.status()} "
            f"({verdict.load_model or verdict.mode})"
        )
        if verdict.target:
            print(f"  exercised: {verdict.target}")
        print(verdict.to_text())
        for name, text in verdict.definitions.items():
            print(f"  {name}: {text}.")
        for scenario, why in verdict.invalid.items():
            print(f"  INVALID: {verdict.integration} {scenario}: {why}")
        for check in verdict.failures:
            print(f"  FAILED: {verdict.integration} {check.describe()}")
        for check in verdict.no_data:
            print(f"  no data: {verdict.integration} {check.describe()}")
        for line in verdict.findings_text():
            print(f"  finding: {line}")
        missed += len(verdict.failures)
        invalid += len(verdict.invalid)
    return missed, invalid


def _figure(value: object, spec: str) -> str:
    """``value`` formatted, ``no data`` when it is missing (``None`` in ``summary.json``)."""
    return "no data" if value is None else format(value, spec)
