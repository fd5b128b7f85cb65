"""``list``, ``check``, ``run`` and ``clean``: the playbook over a project's integrations, of every kind.

``run`` is a gate: it exits 1 when any objective is missed, a stage fails or a spec does not load (after writing
every report it could), and prints the failing rows; it exits 3 when nothing failed but some scenario's run was
invalid (a live run whose load generator fell behind: the bench, not the integration, failed). ``--no-gate``
reports without failing on objectives, and ``--junit FILE`` writes the verdicts as JUnit XML for CI. A spec that
does not load never blocks the others: ``list`` shows it with its error, and ``run --all`` runs the rest and names
it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.args import DURATION, KEEP, SEED, TIME_SCALE, Command, project_of, spec_directory
from integration_kit.playbook.cli.openapi import drift_report
from integration_kit.playbook.cli.tables import run_table, verdict_report
from integration_kit.playbook.kinds.protocol import Kind
from integration_kit.playbook.kinds.table import kind_named, kind_of, load_spec
from integration_kit.playbook.project import Project
from integration_kit.playbook.run.runner import new_run_id, run_playbook
from integration_kit.playbook.run.runs import DEFAULT_KEEP, clean_runs
from integration_kit.playbook.verdict.junit import write_junit
from integration_kit.playbook.verdict.verdict import Verdict

__all__ = ["COMMANDS", "INVALID_RUN"]

#: The exit status of a run that failed nothing but could not judge some scenario (see the module docstring).
INVALID_RUN = 3


def _specs(project: Project, names: list[str]) -> tuple[dict[str, object], dict[str, str]]:
    """Load each named spec of ``project``: ``(loaded by name, error by name)``."""
    loaded: dict[str, object] = {}
    broken: dict[str, str] = {}
    for name in names:
        try:
            loaded[name] = load_spec(name, directory=project.integrations)
        except ConfigurationError as exc:
            broken[name] = str(exc)
    return loaded, broken


def _list_command(args: argparse.Namespace) -> int:
    """Every spec of the project with its kind and scenarios; one that does not load with its error (exit 1)."""
    project = project_of(args)
    loaded, broken = _specs(project, project.spec_names())
    if not loaded and not broken:
        print(f"no integrations in {project.integrations} (integration-kit new NAME --kind http writes one)")
        return 0
    width = max(len(name) for name in [*loaded, *broken])
    for name, spec in loaded.items():
        scenarios = ", ".join(s.name for s in spec.scenarios)  # type: ignore[attr-defined]
        print(f"{name:<{width}}  [{spec.kind}] {spec.description}")  # type: ignore[attr-defined]
        print(f"{'':<{width}}  scenarios: {scenarios}")
    for name, error in broken.items():
        print(f"{name:<{width}}  INVALID: {error}")
    return 1 if broken else 0


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="+", metavar="NAME", help="integrations of the project, or paths of spec files (.toml)"
    )
    parser.add_argument(
        "--openapi",
        metavar="FILE",
        help=(
            "also report the drift of each HTTP spec from this document "
            "(exit 1 when an operation is gone or changed incompatibly)"
        ),
    )


def _check_command(args: argparse.Namespace) -> int:
    """Print the checklist of each spec, of any kind; 1 when an item fails (pre-commit passes the changed files)."""
    failures = 0
    for name in args.names:
        spec = load_spec(name, directory=spec_directory(args, name))
        items = kind_of(spec).checklist(spec)
        for item in items:
            print(f"{item.mark} {item.title}: {item.detail}")
        failed = [item for item in items if not item.passed]
        print(f"\n{spec.name} ({spec.kind}): {len(items) - len(failed)}/{len(items)} checklist items pass")
        failures += len(failed)
        if args.openapi:
            lines, breaking = drift_report(spec, args.openapi)
            print("\n".join(lines))
            failures += breaking
    return 1 if failures else 0


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("name", nargs="?", help="an integration of the project, or the path of a spec file (.toml)")
    target.add_argument("--all", action="store_true", help="every integration of the project")
    parser.add_argument(
        "--mode", choices=("simulate", "live"), default="simulate", help="virtual time, or real sockets"
    )
    parser.add_argument("--scenario", default="all", help="one of the integration's scenarios (default: all)")
    parser.add_argument("--out", help="where runs go (default: the project's out folder)")
    parser.add_argument("--seed", type=SEED, default=0, help="seeds every random choice (default 0)")
    parser.add_argument("--duration", type=DURATION, help="scenario seconds per scenario (default: each scenario's)")
    parser.add_argument(
        "--time-scale",
        type=TIME_SCALE,
        help="live mode: play scenario time this many times faster (default 10 for HTTP, reduced to what this "
        "machine's cores can serve; 20 for queue specs)",
    )
    parser.add_argument("--base-url", help="live mode: exercise this real service (secret from the spec's env var)")
    parser.add_argument("--strict", action="store_true", help="fail the run when a checklist item fails")
    parser.add_argument(
        "--no-gate", action="store_true", help="report the verdict without failing on missed objectives"
    )
    parser.add_argument("--keep", type=KEEP, help="afterwards, delete all but the newest KEEP runs of each integration")
    parser.add_argument("--junit", metavar="FILE", help="write the verdicts as JUnit XML to FILE (for CI)")


def _run_command(args: argparse.Namespace) -> int:
    project = project_of(args)
    if args.mode == "simulate" and args.base_url:
        raise ConfigurationError("--base-url needs --mode live")
    names, broken = _selected(args, project)
    rows, verdicts, kinds = _play(args, project, names, broken)
    if rows:
        print()
        print(run_table(rows, kinds))
    if args.keep is not None:
        clean_runs(args.out or project.out, keep=args.keep, integrations=sorted({r[0] for r in rows}))
    missed, invalid = verdict_report(verdicts)
    if args.junit:
        print(f"\nJUnit XML: {write_junit(args.junit, verdicts, broken)}")
    for name, error in broken.items():
        if not error.startswith(_STAGE_FAILED):  # a failed stage was told when it failed
            print(f"integration-kit: {name}: not judged: {error}", file=sys.stderr)
    if missed and not args.no_gate:
        print(
            f"\nintegration-kit: {missed} objective check(s) failed (--no-gate reports without failing)",
            file=sys.stderr,
        )
    if invalid:
        print(
            f"\nintegration-kit: invalid run: the test bench could not keep up in {invalid} scenario(s); nothing is"
            " judged there (a lower --time-scale or a quieter machine gives it room)",
            file=sys.stderr,
        )
    if broken or (missed and not args.no_gate):
        return 1
    return INVALID_RUN if invalid else 0


#: How a failed stage is told (once, when it fails), and kept among the runs not judged (for the JUnit file).
_STAGE_FAILED = "a stage failed: "


def _play(
    args: argparse.Namespace, project: Project, names: list[str], broken: dict[str, str]
) -> tuple[list[tuple[str, str, dict[str, object]]], list[Verdict], dict[str, Kind[Any]]]:
    """Run the playbook for each of ``names``: the run table's rows, the verdicts and each integration's kind; a
    failed stage joins ``broken``."""
    run_id = new_run_id()
    rows: list[tuple[str, str, dict[str, object]]] = []
    verdicts: list[Verdict] = []
    kinds: dict[str, Kind[Any]] = {}
    for name in names:
        print(f"running the playbook for {name} ({args.mode}) ...", flush=True)
        run = run_playbook(
            name,
            project=project,
            mode=args.mode,
            scenario=args.scenario,
            out=args.out,
            seed=args.seed,
            duration=args.duration,
            time_scale=args.time_scale,
            base_url=args.base_url,
            strict=args.strict,
            run_id=run_id,
        )
        if not run.ok:
            broken[run.integration] = f"{_STAGE_FAILED}{run.error}"
            print(f"integration-kit: {name}: {_STAGE_FAILED}{run.error}", file=sys.stderr)
        kinds[run.integration] = kind_named(run.kind)
        for scenario, figures in run.summary.get("scenarios", {}).items():
            rows.append((run.integration, scenario, figures))
        if run.verdict is not None:
            verdicts.append(run.verdict)
        print(f"  report: {run.report}")
    return rows, verdicts, kinds


def _selected(args: argparse.Namespace, project: Project) -> tuple[list[str], dict[str, str]]:
    """The integrations ``run`` will play, and those it cannot (a spec that does not load, with its error).

    One named integration that does not load is an error (exit 2). With ``--all``, the broken ones are set aside
    and the rest run; with one ``--scenario``, only the integrations that have it are kept.
    """
    if not args.all:
        if str(args.name).endswith(".toml"):
            return [args.name], {}
        load_spec(args.name, directory=project.integrations)  # raises, naming the file and field
        return [args.name], {}
    loaded, broken = _specs(project, project.spec_names())
    if not loaded and not broken:
        raise ConfigurationError(f"no integrations in {project.integrations}")
    if args.scenario == "all":
        return list(loaded), broken
    kept = [n for n, spec in loaded.items() if args.scenario in {s.name for s in spec.scenarios}]  # type: ignore[attr-defined]
    if not kept:
        raise ConfigurationError(f"no integration has a scenario named {args.scenario!r}")
    return kept, broken


def _clean_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="*", help="integrations to clean (default: every one under --out)")
    parser.add_argument(
        "--keep", type=KEEP, default=DEFAULT_KEEP, help=f"runs to keep per integration (default {DEFAULT_KEEP})"
    )
    parser.add_argument("--out", help="where runs go (default: the project's out folder)")


def _clean_command(args: argparse.Namespace) -> int:
    out = args.out or project_of(args).out
    deleted = clean_runs(out, keep=args.keep, integrations=args.name or None)
    for folder in deleted:
        print(f"deleted {folder}")
    print(f"{len(deleted)} run folder(s) deleted, the newest {args.keep} of each integration kept")
    return 0


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


#: The commands of this module, for the CLI's table.
COMMANDS = (
    Command("list", "list the project's integrations, of every kind", _no_arguments, _list_command),
    Command("check", "validate a spec and run its checklist (exit 1 on failures)", _check_arguments, _check_command),
    Command("run", "run the playbook (design, exercise, charts) and render a report", _run_arguments, _run_command),
    Command(
        "clean", "delete old run folders, keeping the newest of each integration", _clean_arguments, _clean_command
    ),
)
