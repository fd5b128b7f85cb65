"""What every command of the ``integration-kit`` CLI shares: the command record, the parser, bounded option types,
and the project a command works on."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from integration_kit.playbook.kinds.http.spec import MAX_DURATION, MAX_RATE, MAX_WORKERS
from integration_kit.playbook.project import Project

__all__ = [
    "DURATION",
    "KEEP",
    "PORT",
    "RATE",
    "SEED",
    "TIME_SCALE",
    "WORKERS",
    "Command",
    "Parser",
    "bounded",
    "project_of",
    "spec_directory",
]


@dataclass(frozen=True, slots=True)
class Command:
    """One sub-command: its ``name``, one line of ``help``, what adds its arguments, and its ``handler``
    (returns the exit status)."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse, with a misuse reported in one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def bounded(kind: type[float] | type[int], low: float, high: float, *, low_open: bool = False) -> Any:
    """An argparse type: a finite ``kind`` within [low, high] (or (low, high]), else a one-line error."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            kind_name = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind_name}, got {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"must be in {bracket}{low:g}, {high:g}], got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    parse.__doc__ = (
        f"Parse {'an integer' if kind is int else 'a number'} in {'(' if low_open else '['}{low:g}, {high:g}]."
    )
    return parse


RATE = bounded(float, 0.0, MAX_RATE, low_open=True)
WORKERS = bounded(int, 0, MAX_WORKERS)
DURATION = bounded(float, 0.0, MAX_DURATION, low_open=True)
SEED = bounded(int, 0, 2**32 - 1)
PORT = bounded(int, 1, 65535)
TIME_SCALE = bounded(float, 0.0, 1000.0, low_open=True)
KEEP = bounded(int, 0, 100_000)


def spec_directory(args: argparse.Namespace, name: str) -> Path | None:
    """Where a command looks up the spec ``name``: nowhere for the path of a ``.toml`` file (it is read as given),
    else the integrations folder of :func:`project_of`."""
    return None if str(name).endswith(".toml") else project_of(args).integrations


def project_of(args: argparse.Namespace) -> Project:
    """The project a command works on: ``--project DIR``, else the one holding the current directory.

    Raises :class:`~integration_kit.playbook.project.ProjectNotFound` when there is none.
    """
    given = getattr(args, "project", None)
    return Project.at(Path(given)) if given else Project.discover()
