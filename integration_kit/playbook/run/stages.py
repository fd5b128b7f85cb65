"""What the stage notebooks call: one spec of any kind, its kind, and its run folder.

The three stage notebooks (``01_design``, ``02_exercise``, ``03_charts``, shipped in the package) are the same for
every kind. Each opens a :class:`Stage` with :func:`open_stage` and calls it; the stage hands every call to the
spec's :class:`~integration_kit.playbook.kinds.protocol.Kind`, so a notebook never knows which kind it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.protocol import CheckItem, Exercise, ExerciseOptions, Kind, Mode
from integration_kit.playbook.kinds.table import kind_of, load_spec
from integration_kit.playbook.project import Project
from integration_kit.playbook.run.progress import progress_bar, progress_to_file
from integration_kit.playbook.verdict.verdict import Verdict

__all__ = ["Stage", "open_stage"]


@dataclass(frozen=True)
class Stage:
    """A spec, the kind that runs it, and the run folder the stages share."""

    spec: Any
    kind: Kind[Any]
    out_dir: Path

    def design_document(self) -> str:
        """The design document, in Markdown."""
        return self.kind.design_document(self.spec)

    def checklist(self) -> list[CheckItem]:
        """The checklist, each item checked against the spec."""
        return self.kind.checklist(self.spec)

    def enforce_checklist(self) -> None:
        """Raise :class:`~integration_kit.errors.ConfigurationError` listing the failed items, if any."""
        failed = [item for item in self.checklist() if not item.passed]
        if failed:
            listed = "; ".join(f"{item.title}: {item.detail}" for item in failed)
            raise ConfigurationError(f"integration {self.spec.name!r} fails {len(failed)} checklist item(s): {listed}")

    def write_design(self) -> Path:
        """Write the design document to ``<out_dir>/design.md`` and return its path."""
        path = self.out_dir / "design.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.design_document(), encoding="utf-8")
        return path

    def exercise(
        self,
        *,
        mode: Mode = "simulate",
        scenario: str = "all",
        seed: int = 0,
        duration: float | None = None,
        time_scale: float | None = None,
        base_url: str | None = None,
        progress_file: str = "",
    ) -> Exercise:
        """Play the spec's scenarios (see :class:`~integration_kit.playbook.kinds.protocol.ExerciseOptions`).

        A live run reports its progress to ``progress_file`` for the console bar of ``integration-kit run``, or to
        a bar in the notebook when there is none.
        """
        progress = None
        if mode == "live":
            count = len(self.spec.scenarios) if scenario == "all" else 1
            progress = progress_to_file(progress_file) if progress_file else progress_bar(count)
        options = ExerciseOptions(mode, scenario, seed, duration, time_scale, base_url, progress)
        self.kind.preflight(self.spec, options)
        return self.kind.exercise(self.spec, options, self.out_dir)

    def judge(self) -> Verdict:
        """The verdict of the run in the run folder (also saved there as ``verdict.json``)."""
        return self.kind.judge(self.spec, self.out_dir)

    def charts(self) -> dict[str, dict[str, Path]]:
        """Draw every chart of the run into ``<out_dir>/charts``: ``{scenario: {chart: png}}``."""
        return self.kind.charts(self.spec, self.out_dir)


def open_stage(integration: str, out_dir: str = "", project: str = "") -> Stage:
    """The stage of ``integration`` (a spec name in the project, or the path of a spec file).

    ``project`` is the project's root (default: discovered from the current directory); ``out_dir`` the run folder
    (default ``<project out>/<name>/latest``, what interactive notebook sessions use). Raises
    :class:`~integration_kit.errors.ConfigurationError` for an unknown or invalid spec, or no project.
    """
    where = Project.at(project) if project else None
    spec = load_spec(integration, directory=where.integrations if where else None)
    folder = Path(out_dir) if out_dir else (where or Project.discover()).out / spec.name / "latest"
    return Stage(spec, kind_of(spec), folder)
