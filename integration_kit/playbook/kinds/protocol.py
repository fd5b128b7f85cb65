"""What every kind of integration implements, so that one pipeline runs them all.

A *kind* (HTTP, webhooks in and out, queues; gRPC and WebSocket next) is one subpackage of
:mod:`integration_kit.playbook.kinds` with one object implementing :class:`Kind`, registered on one line of
:data:`integration_kit.playbook.kinds.table.KINDS`. The stage notebooks and the runner only ever call these
methods, so nothing else in the playbook knows which kinds exist:

- **design** (``01_design``): :meth:`Kind.design_document` and :meth:`Kind.checklist`;
- **exercise** (``02_exercise``): :meth:`Kind.exercise` plays the spec's scenarios (simulated or live) and returns
  an :class:`Exercise`, which shows its summary table and saves itself into the run folder;
- **verdict and charts** (``03_charts``): :meth:`Kind.judge` reads the run folder back into a
  :class:`~integration_kit.playbook.verdict.verdict.Verdict`, :meth:`Kind.charts` draws one dashboard per scenario.

:meth:`Kind.preflight` runs before any notebook kernel starts, so a bad option or a missing secret fails in one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    import pandas as pd

    from integration_kit.playbook.verdict.verdict import Verdict

__all__ = ["CheckItem", "Exercise", "ExerciseOptions", "Kind", "Mode", "Spec", "env_presence"]

#: How an exercise plays its scenarios: in virtual time, or over real sockets.
Mode = Literal["simulate", "live"]


@dataclass(frozen=True, slots=True)
class CheckItem:
    """One checklist item: what is checked, whether the spec passes, and the evidence."""

    key: str
    title: str
    passed: bool
    detail: str

    @property
    def mark(self) -> str:
        """``[x]`` when passed, ``[ ]`` otherwise (Markdown task-list form)."""
        return "[x]" if self.passed else "[ ]"


def env_presence(names: Iterable[str], environ: Mapping[str, str] | None = None) -> str:
    """What a checklist says of the environment variables a spec names for its secrets: ``variable X is named
    (set in this environment)`` or ``(not set in this environment)``, one clause per name. Never the value.
    ``environ`` defaults to ``os.environ``."""
    env = os.environ if environ is None else environ
    return "; ".join(
        f"variable {name} is named ({'set' if env.get(name) else 'not set'} in this environment)" for name in names
    )


class Spec(Protocol):
    """What the pipeline reads of any kind's spec."""

    @property
    def name(self) -> str:
        """The integration's name (its file's name)."""

    @property
    def kind(self) -> str:
        """The ``kind`` the spec file declares."""

    @property
    def description(self) -> str:
        """What the integration is for."""

    @property
    def path(self) -> Path | None:
        """The spec file, when it was loaded from one."""


@dataclass(frozen=True, slots=True)
class ExerciseOptions:
    """How to exercise a spec: ``mode``, which ``scenario`` (``"all"`` or one name), the ``seed``, each scenario's
    ``duration`` in seconds (``None``: its own), the live ``time_scale`` (``None``: the kind's default, which the HTTP
    kind reduces to what the machine can play and says so in its load model), a real
    service's ``base_url`` (live, HTTP only) and a ``progress(scenario, fraction)`` callback for live runs."""

    mode: Mode = "simulate"
    scenario: str = "all"
    seed: int = 0
    duration: float | None = None
    time_scale: float | None = None
    base_url: str | None = None
    progress: Callable[[str, float], None] | None = None


S = TypeVar("S", bound=Spec)


class Exercise(Protocol):
    """What a kind's exercise stage produced."""

    def summary_table(self) -> pd.DataFrame:
        """One row per scenario, the figures stage 02 shows."""

    def save(self, out_dir: str | Path) -> Path:
        """Write the run's records (at least ``summary.json``) into ``out_dir``; return it."""


class Kind(Protocol[S]):
    """One kind of integration: how its specs load, what its design and checklist say, how it is exercised,
    judged and charted (see the module docstring)."""

    #: The ``kind`` values its spec files declare (``("webhook-in", "webhook-out")``).
    names: tuple[str, ...]
    #: How many times faster than real time a live run plays scenarios unless told.
    live_time_scale: float
    #: What each of :meth:`run_columns`'s columns counts, one sentence by header (printed under the kind's table;
    #: empty for a kind printed in the shared call table).
    run_notes: Mapping[str, str]

    @property
    def templates(self) -> Mapping[str, str]:
        """What ``integration-kit new --kind`` and ``init`` write, by ``kind`` value: a commented spec that passes
        ``check``, with ``{name}`` where the integration's name goes."""

    def build(self, data: Mapping[str, Any], *, source: str, path: Path | None) -> S:
        """Validate a parsed spec file into the kind's spec (``ConfigurationError`` naming source and field)."""

    def checklist(self, spec: S) -> list[CheckItem]:
        """One item per rule of the kind's checklist, each checked against the spec."""

    def design_document(self, spec: S) -> str:
        """The design document, in Markdown."""

    def preflight(self, spec: S, options: ExerciseOptions) -> None:
        """Refuse, before any kernel starts, what would fail the exercise (``ConfigurationError``)."""

    def exercise(self, spec: S, options: ExerciseOptions, out_dir: Path) -> Exercise:
        """Play the chosen scenarios; ``out_dir`` is the run folder (for files a live run keeps)."""

    def judge(self, spec: S, out_dir: Path) -> Verdict:
        """The verdict of the run saved in ``out_dir`` (by :meth:`Exercise.save`)."""

    def charts(self, spec: S, out_dir: Path) -> dict[str, dict[str, Path]]:
        """Draw the charts of the run in ``out_dir`` into ``out_dir/charts``: ``{scenario: {chart: png}}``, each
        scenario with a ``"dashboard"``."""

    def run_columns(self, figures: Mapping[str, Any]) -> Mapping[str, str] | None:
        """One scenario's row in ``integration-kit run``'s table, in the kind's own terms: ``{header: cell}``
        from the scenario's saved figures (``summary.json``), the columns in :attr:`run_notes`'s order; ``None``
        puts the row in the shared call table (calls, success all, rejected, ampl., p99 all s, transitions)."""
