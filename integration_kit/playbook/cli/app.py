"""The integration-kit command line: design, exercise and judge integrations in your own project.

Every command works on the project holding the current directory (a [tool.integration-kit] table in
pyproject.toml, or an integration-kit.toml; `integration-kit init` makes one), or on --project DIR.
Exit status: 0 success; 1 a checklist item, an objective or a spec failed; 2 misuse (a bad argument, a spec or
scenario that does not load, a file that cannot be written), reported in one line without a traceback; 3 an
invalid run: nothing failed, but the test bench could not keep up in some live scenario (its load generator fell
behind), so that scenario is not judged.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.cli import project, queues, run, simulate, telemetry, tune, webhooks
from integration_kit.playbook.cli.args import Command, Parser

__all__ = ["HANDLERS", "TABLE", "build_parser", "main"]

#: Every sub-command, in the order ``--help`` lists them.
TABLE: tuple[Command, ...] = (
    *project.COMMANDS,
    *run.COMMANDS,
    *tune.COMMANDS,
    *simulate.COMMANDS,
    *telemetry.COMMANDS,
    *webhooks.COMMANDS,
    *queues.COMMANDS,
)


#: Each command's handler, by name (tests stub the long-running ones here).
HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {command.name: command.handler for command in TABLE}


def build_parser() -> argparse.ArgumentParser:
    """The ``integration-kit`` argument parser: every command of :data:`TABLE` and its typed options."""
    parser = Parser(prog="integration-kit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--project", metavar="DIR", help="the project's root (default: found from the current directory upward)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in TABLE:
        command.arguments(sub.add_parser(command.name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``integration-kit`` console script; returns the exit status (see the module docstring)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "lab":  # only lab passes options on (to JupyterLab)
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if unknown:
        args.jupyter_args = [*unknown, *args.jupyter_args]
    try:
        return HANDLERS[args.command](args)
    except ConfigurationError as exc:
        print(f"integration-kit: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be read or written: the user's to fix, not a crash
        print(f"integration-kit: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
