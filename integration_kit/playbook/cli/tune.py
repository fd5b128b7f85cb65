"""``integration-kit tune NAME``: run :func:`~integration_kit.playbook.tune.study.tune` and print what it found.

Prints a progress bar on the console (stderr), the Pareto front, the recommendation's verdict per scenario on
unseen seeds, and the recommended settings as a diff against the spec file; ``--write`` then applies the diff.
Exit status: 0 when a recommendation meets every objective, 1 when none does, 2 for a bad spec.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli.args import Command, spec_directory
from integration_kit.playbook.kinds.http.spec import load_integration
from integration_kit.playbook.tune.spec_edit import settings_diff, write_settings
from integration_kit.playbook.tune.study import SAMPLERS, tune

__all__ = ["COMMANDS", "add_tune_parser", "tune_command"]


def add_tune_parser(sub: Any) -> None:
    """Add the ``tune`` subcommand to the CLI's subparsers ``sub``."""
    _arguments(sub.add_parser("tune", help=_HELP))


_HELP = "search the integration's policies in the simulator (optuna: TPE or NSGA-II)"


def _arguments(tune_parser: argparse.ArgumentParser) -> None:
    tune_parser.add_argument("name", help="an HTTP integration of the project, or the path of a spec (.toml)")
    tune_parser.add_argument("--trials", type=int, default=100, help="candidates to evaluate (default 100)")
    tune_parser.add_argument("--seed", type=int, default=0, help="the search's seed (the same seed, the same result)")
    tune_parser.add_argument("--seeds", type=int, default=2, help="simulation seeds per candidate (default 2)")
    tune_parser.add_argument("--jobs", type=int, help="worker processes (default: one per core)")
    tune_parser.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="optuna's sampler (default tpe)")
    tune_parser.add_argument(
        "--storage",
        metavar="URL",
        help="keep the study in optuna's RDB storage (e.g. postgresql+psycopg://user@host/db): processes given the "
        "same URL and study work one search, and a stopped search resumes",
    )
    tune_parser.add_argument("--study", help="the study's name in --storage (default tune-NAME-SEED)")
    tune_parser.add_argument("--write", action="store_true", help="apply the recommended settings to the spec file")
    tune_parser.add_argument(
        "--bound",
        action="append",
        default=[],
        metavar="SETTING=LOW:HIGH",
        help="narrow one setting's range beyond the spec's [tune] table, e.g. retry.max_attempts=2:4 or "
        "retry.jitter=full,equal (repeatable)",
    )


def _parse_bounds(given: list[str]) -> dict[str, tuple[Any, ...]]:
    """``SETTING=LOW:HIGH`` (numbers; integers stay integers) or ``SETTING=A,B`` (choices, e.g. a jitter)."""
    bounds: dict[str, tuple[Any, ...]] = {}
    for item in given:
        key, _, span = item.partition("=")
        if ":" not in span:
            bounds[key.strip()] = tuple(c.strip() for c in span.split(",") if c.strip())
            continue
        low, _, high = span.partition(":")
        try:
            bounds[key.strip()] = (_number(low), _number(high))
        except ValueError:
            raise ConfigurationError(f"--bound: expected SETTING=LOW:HIGH, got {item!r}") from None
    return bounds


def _number(text: str) -> float:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else float(text)


def tune_command(args: argparse.Namespace) -> int:
    """Run the ``tune`` subcommand with parsed ``args`` (see :func:`integration_kit.playbook.cli.app.main`)."""
    import pandas as pd
    from tqdm import tqdm

    spec = load_integration(args.name, directory=spec_directory(args, args.name))
    with tqdm(total=args.trials, desc=f"tune {spec.name}", unit="candidate", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        result = tune(
            spec,
            trials=args.trials,
            seed=args.seed,
            seeds=args.seeds,
            jobs=args.jobs,
            sampler=args.sampler,
            bounds=_parse_bounds(args.bound),
            progress=progress,
            storage=args.storage,
            study_name=args.study,
        )
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(f"\nPareto front ({len(result.front)} of {len(result.candidates)} candidates; seeds {result.seeds}):")
        print(result.front_frame().to_string())
        if result.recommended is None:
            print("\nno candidate met every objective on the unseen seeds; the spec as it is:")
            print(result.verdict_frame().to_string(index=False))
            return 1
        print(f"\nrecommended: candidate {result.recommended.number}; on unseen seeds {result.validation_seeds}:")
        print(result.verdict_frame().to_string(index=False))
    changes = result.changes
    if spec.path is None or not changes:
        print("\nthe spec already has the recommended settings" if not changes else "")
        return 0
    print("\n" + settings_diff(spec.path, changes))
    if args.write:
        write_settings(spec.path, changes)
        print(f"wrote {spec.path}")
    return 0


#: The commands of this module, for the CLI's table.
COMMANDS = (Command("tune", _HELP, _arguments, tune_command),)
