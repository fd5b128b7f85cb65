"""The playbook run: the three stage notebooks executed with papermill into a run folder, and one HTML report.

Every kind goes through the same notebooks (``01_design``, ``02_exercise``, ``03_charts``), shipped in the package
(``integration_kit/playbook/notebooks``) and read with :mod:`importlib.resources`; the spec's kind decides what each
stage computes (:mod:`integration_kit.playbook.kinds.protocol`). :func:`run_playbook` executes them into
``<project out>/<integration>/<run id>/`` and renders ``report.html`` (:mod:`~integration_kit.playbook.run.report`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import papermill as pm
from jupyter_client.manager import AsyncKernelManager

from integration_kit.playbook.kinds.files import SUMMARY_FILE
from integration_kit.playbook.kinds.protocol import ExerciseOptions, Mode
from integration_kit.playbook.kinds.table import kind_of, load_spec
from integration_kit.playbook.project import Project, find_root
from integration_kit.playbook.run.progress import ConsoleProgress
from integration_kit.playbook.run.report import render_report
from integration_kit.playbook.verdict.verdict import VERDICT_FILE, Verdict

__all__ = ["NOTEBOOKS", "PROGRESS_FILE", "SUMMARY_FILE", "PlaybookRun", "new_run_id", "notebook_path", "run_playbook"]

#: The stage notebooks, in the order they run.
NOTEBOOKS: tuple[str, ...] = ("01_design.ipynb", "02_exercise.ipynb", "03_charts.ipynb")
#: Where a live exercise notebook reports its progress for the console bar (see :mod:`.progress`).
PROGRESS_FILE = "progress.tsv"


@contextlib.contextmanager
def notebook_path(name: str, project: Project | None = None) -> Iterator[Path]:
    """A real file path of the stage notebook ``name`` for as long as the context lasts: the project's own copy
    (``<project>/notebooks/<name>``, made by ``integration-kit notebooks --copy``) if it has one, else the one
    shipped in the package."""
    own = project.root / "notebooks" / name if project is not None else None
    if own is not None and own.is_file():
        yield own
        return
    with as_file(files("integration_kit.playbook").joinpath("notebooks", name)) as path:
        yield path


def new_run_id() -> str:
    """A sortable, unique-enough run id: the UTC time to the millisecond."""
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"


@dataclass(frozen=True)
class PlaybookRun:
    """A finished playbook run: where it went, its summary document, its report, and a failure if any."""

    integration: str
    out_dir: Path
    summary: Mapping[str, Any]
    report: Path | None
    error: str | None = None
    #: The run's verdict (``verdict.json``, written by stage 03); ``None`` when the run stopped before it.
    verdict: Verdict | None = None
    kind: str = "http"

    @property
    def ok(self) -> bool:
        """Whether every notebook ran."""
        return self.error is None


def run_playbook(
    integration: str | Path,
    *,
    project: Project | None = None,
    mode: Mode = "simulate",
    scenario: str = "all",
    out: str | Path | None = None,
    seed: int = 0,
    duration: float | None = None,
    time_scale: float | None = None,
    base_url: str | None = None,
    strict: bool = False,
    run_id: str | None = None,
    kernel_name: str | None = None,
) -> PlaybookRun:
    """Execute the three stage notebooks for ``integration`` with papermill into ``<out>/<name>/<run id>/``.

    ``integration`` is a spec name in ``project`` (default: the project holding the current directory) or the path
    of a spec file; ``out`` defaults to the project's ``out`` folder. ``time_scale`` (live mode) plays scenario time
    that many times faster than real time (default: the kind's, 10 for HTTP and webhooks, 20 for queues; the HTTP
    kind reduces its default to what this machine can play, and says so in the load model).

    Each executed notebook, the run's records, ``verdict.json``, the chart PNGs and ``report.html`` end up in that
    folder. A notebook that fails stops the run: the result carries the failing cell and error, and the report
    opens with a failure banner above what ran. Raises :class:`~integration_kit.errors.ConfigurationError` before
    any kernel starts for an invalid spec, an unknown scenario or option, or a missing secret.
    """
    where = project or _project_of(integration)
    spec = load_spec(integration, directory=where.integrations)
    kind = kind_of(spec)
    kind.preflight(spec, ExerciseOptions(mode, scenario, seed, duration, time_scale, base_url))
    run_dir = Path(out if out is not None else where.out) / spec.name / (run_id or new_run_id())
    run_dir.mkdir(parents=True, exist_ok=True)
    common = {"integration": str(Path(spec.path).resolve()), "project": str(where.root), "out_dir": str(run_dir)}
    parameters: dict[str, dict[str, Any]] = {
        "01_design.ipynb": {**common, "strict": strict},
        "02_exercise.ipynb": {
            **common,
            "mode": mode,
            "scenario": scenario,
            "seed": seed,
            "duration": float(duration or 0.0),
            "time_scale": float(time_scale or 0.0),
            "base_url": base_url or "",
            "progress_file": str(run_dir / PROGRESS_FILE),
        },
        "03_charts.ipynb": common,
    }
    count = len(spec.scenarios) if scenario == "all" else 1
    error = None
    executed: list[Path] = []
    for notebook in NOTEBOOKS:
        target = run_dir / notebook
        live = mode == "live" and notebook == "02_exercise.ipynb"
        try:
            with (
                notebook_path(notebook, where) as source,
                ConsoleProgress(run_dir / PROGRESS_FILE, count, enabled=live),
            ):
                pm.execute_notebook(
                    str(source),
                    str(target),
                    parameters=parameters[notebook],
                    cwd=str(where.root),
                    kernel_name=kernel_name,
                    progress_bar=False,
                    log_output=False,
                    **_engine_options(),
                )
            executed.append(target)
        except pm.PapermillExecutionError as exc:
            executed.append(target)
            error = f"{notebook}: cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
            break
    (run_dir / PROGRESS_FILE).unlink(missing_ok=True)  # the console bar's scratch file, not a result
    report = render_report(executed, run_dir / "report.html", title=f"{spec.name} playbook run", error=error)
    summary: dict[str, Any] = {}
    if (run_dir / SUMMARY_FILE).is_file():
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    verdict = Verdict.load(run_dir) if error is None and (run_dir / VERDICT_FILE).is_file() else None
    return PlaybookRun(spec.name, run_dir, summary, report, error, verdict, spec.kind)


def _project_of(integration: str | Path) -> Project:
    """The project of a spec: the one holding its file (given by path), else the current directory's."""
    if str(integration).endswith(".toml"):
        root = find_root(Path(integration).resolve().parent)
        if root is not None:
            return Project.at(root)
    return Project.discover()


def _engine_options() -> dict[str, Any]:
    """Papermill's engine options: kernels over Unix sockets where there are some (see :class:`_IPCKernelManager`)."""
    return {"kernel_manager_class": _IPCKernelManager} if os.name == "posix" else {}


class _IPCKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels talk over Unix sockets, not TCP on loopback, and shut down without a SIGINT.

    Nothing else on the machine can connect to such a kernel, and ipykernel has no reason to warn about
    unencrypted TCP on every start. jupyter_client's shutdown interrupts the kernel before asking it to stop
    (``shutdown_kernel`` calls ``_async_interrupt_kernel`` first): papermill only shuts a kernel down once its
    notebook is over, so that SIGINT lands on an idle kernel, which logs ``[IPKernelApp] ERROR | KeyboardInterrupt
    caught in kernel`` on the console of every successful run. The polite shutdown request follows anyway, and a
    kernel that ignores it is killed after jupyter_client's timeout.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transport = "ipc"

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:
            return  # the notebook is over: nothing to interrupt (see the class docstring)
        await super()._async_interrupt_kernel()
