"""``alerts`` and ``dashboard``: Prometheus alerting rules and a Grafana dashboard from an HTTP spec's objectives."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from integration_kit.playbook.cli.args import Command, spec_directory
from integration_kit.playbook.kinds.http.spec import load_integration
from integration_kit.telemetry.alerts import render_rules, thresholds_from
from integration_kit.telemetry.dashboard import dashboard

__all__ = ["COMMANDS"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="an HTTP integration of the project, or the path of a spec (.toml)")
    parser.add_argument("--out", help="write to this file (default: standard output)")


def _command(args: argparse.Namespace) -> int:
    """The spec's objectives when it has them (else the defaults), its deadline as the latency bound when no p99
    objective is set."""
    spec = load_integration(args.name, directory=spec_directory(args, args.name))
    thresholds = thresholds_from(spec.objectives, deadline=spec.client.deadline)
    name = spec.client.name
    if args.command == "alerts":
        text = render_rules(name, thresholds)
    else:
        text = json.dumps(dashboard(name, thresholds), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


#: The commands of this module, for the CLI's table.
COMMANDS = (
    Command("alerts", "write Prometheus alerting rules (YAML) from an integration's objectives", _arguments, _command),
    Command("dashboard", "write a Grafana dashboard (JSON) from an integration's objectives", _arguments, _command),
)
