"""Every command's ``--help`` is plain text, and every option says what it does."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from integration_kit.playbook.cli.app import build_parser

#: Docstring markup that must never reach a terminal: Sphinx roles and reST literals.
MARKUP = re.compile(r":(mod|class|func|meth|data|attr|exc|ref):|``")


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _parsers(child)


PARSERS = list(_parsers(build_parser()))


def test_the_walk_reaches_nested_commands() -> None:
    progs = {p.prog for p in PARSERS}
    assert {"integration-kit run", "integration-kit tune", "integration-kit webhooks replay"} <= progs
    assert any(prog.startswith("integration-kit queues ") for prog in progs)


@pytest.mark.parametrize("parser", PARSERS, ids=[p.prog for p in PARSERS])
def test_help_is_plain_text(parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    assert not MARKUP.search(text), f"{parser.prog} --help shows docstring markup: {MARKUP.search(text)}"
    assert parser.description, f"{parser.prog} has no description"


@pytest.mark.parametrize("parser", PARSERS, ids=[p.prog for p in PARSERS])
def test_every_option_has_help(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{parser.prog} {choice.dest}: no help"
            continue
        assert action.help, f"{parser.prog} {action.dest}: no help"
        assert action.help != argparse.SUPPRESS, f"{parser.prog} {action.dest}: hidden"


def test_check_help_says_what_drift_does_to_the_exit_code() -> None:
    (check,) = (p for p in PARSERS if p.prog == "integration-kit check")
    assert "exit 1 when an operation is gone or changed incompatibly" in " ".join(check.format_help().split())
