"""The tables ``integration-kit run`` prints: the figures per integration and scenario, and each verdict."""

from __future__ import annotations

from integration_kit.playbook.verdict.verdict import Verdict

__all__ = ["run_table", "verdict_report"]


def run_table(rows: list[tuple[str, str, dict[str, object]]]) -> str:
    """The summary tables printed after ``run``: one line per integration and scenario, queue integrations in
    their own table (messages, lost, applied twice, dead letters, latency, lag and whether the objectives held)."""
    calls = [r for r in rows if "applied_twice" not in r[2]]
    queues = [r for r in rows if "applied_twice" in r[2]]
    width = max([len("integration"), *(len(name) for name, _, _ in rows)])
    tables = []
    if calls or not queues:
        header = (
            f"{'integration':<{width}} {'scenario':<24} {'calls':>7} {'success':>8} {'rejected':>8} {'ampl.':>6} "
            f"{'p99 s':>7} {'transitions':>11}"
        )
        lines = [header, "-" * len(header)]
        for name, scenario, f in calls:
            success = f.get("success_rate")
            p99 = f.get("latency_p99")
            amplification = f.get("amplification")
            lines.append(
                f"{name:<{width}} {scenario:<24} {f.get('calls', 0):>7,} "
                f"{success if success is None else format(success, '.1%'):>8} {f.get('rejected', 0):>8,} "
                f"{amplification if amplification is None else format(amplification, '.2f'):>6} "
                f"{p99 if p99 is None else format(p99, '.3f'):>7} {len(f.get('transitions', [])):>11}"  # type: ignore[arg-type]
            )
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
    return "\n\n".join(tables)


def verdict_report(verdicts: list[Verdict]) -> int:
    """Print each integration's verdict table, its failing rows and its findings; return the failed checks."""
    missed = 0
    for verdict in verdicts:
        state = "PASS" if verdict.passed else "FAIL"
        print(f"\nverdict: {verdict.integration} [{verdict.kind}] {state} ({verdict.load_model or verdict.mode})")
        print(verdict.to_text())
        for check in verdict.failures:
            print(f"  FAILED: {verdict.integration} {check.describe()}")
        for line in verdict.findings_text():
            print(f"  finding: {line}")
        missed += len(verdict.failures)
    return missed
