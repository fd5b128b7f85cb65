"""The playbook: exercise an integration's scenarios, save what happened, and run the stage notebooks.

Three stages, one notebook each (``notebooks/01_design.ipynb``, ``02_exercise.ipynb``, ``03_charts.ipynb``); the
notebooks only call this module, :mod:`integration_kit.playbook.design` and :mod:`integration_kit.playbook.charts`.
:func:`exercise` runs an integration's scenarios in the simulator (virtual time, deterministic for a seed) or
live (the real client over real sockets, against the local flaky upstream or a real service) and returns the
recorded events and summaries; :meth:`ExerciseResult.save` writes them to a run folder, :func:`load_exercise`
reads them back; :func:`run_playbook` executes the three notebooks with papermill into
``out/<integration>/<run id>/`` and renders one HTML report.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from integration_kit.errors import ConfigurationError
from integration_kit.events import Summary
from integration_kit.playbook.progress import ConsoleProgress, progress_bar
from integration_kit.playbook.spec import IntegrationSpec, load_integration, spec_kind
from integration_kit.sim.scenarios import SCENARIO_DIR, Scenario
from integration_kit.sim.simulate import SimulationResult, simulate

if TYPE_CHECKING:
    import pandas as pd

    from integration_kit.playbook.verdict import Verdict

__all__ = [
    "DEFAULT_OUT",
    "NOTEBOOK_DIR",
    "NOTEBOOKS",
    "REPO_ROOT",
    "CHARTS",
    "ExerciseResult",
    "Mode",
    "PlaybookRun",
    "ScenarioRun",
    "chart_run",
    "exercise",
    "load_exercise",
    "new_run_id",
    "progress_bar",
    "resolve_out_dir",
    "run_playbook",
    "simulate_integration",
]

Mode = Literal["simulate", "live"]

#: The repository's root, where ``data/``, ``notebooks/`` and ``out/`` live.
REPO_ROOT = SCENARIO_DIR.parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
#: Where runs go unless told otherwise (git ignores it).
DEFAULT_OUT = REPO_ROOT / "out"
#: The stage notebooks, in the order they run.
NOTEBOOKS: tuple[str, ...] = ("01_design.ipynb", "02_exercise.ipynb", "03_charts.ipynb")

#: The column types of ``events.csv``: read explicitly, so a column that is empty in the first rows and filled
#: later (``status``, ``old``) never makes pandas guess per chunk and warn (``DtypeWarning``).
EVENT_DTYPES: dict[str, str] = {
    "event": "string",
    "time": "float64",
    "integration": "string",
    "call_id": "int64",
    "attempt": "Int64",
    "method": "string",
    "target": "string",
    "outcome": "string",
    "status": "Int64",
    "verdict": "string",
    "duration": "float64",
    "delay": "float64",
    "reason": "string",
    "timeout": "float64",
    "idempotency_key": "string",
    "ok": "boolean",
    "attempts": "Int64",
    "tokens": "float64",
    "breaker": "string",
    "old": "string",
    "new": "string",
    "store": "string",
    "operation": "string",
    "fallback": "string",
    "scenario": "string",
}
EVENTS_FILE = "events.csv"
#: Where a live exercise notebook reports its progress for the console bar (see :mod:`.progress`).
PROGRESS_FILE = "progress.tsv"
SERVER_FILE = "server.csv"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class ScenarioRun:
    """One scenario's run: its summary, what the partner received, and the breaker's transitions."""

    scenario: str
    summary: Summary
    upstream_received: int
    transitions: tuple[str, ...]
    frame: pd.DataFrame = field(repr=False)
    server: pd.DataFrame = field(repr=False)
    wall_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (NaN becomes ``None``)."""
        data = {**self.summary.as_dict(), "upstream_received": self.upstream_received}
        data["transition_log"] = list(self.transitions)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}


@dataclass(frozen=True)
class ExerciseResult:
    """Every scenario run of one exercise of an integration."""

    integration: str
    mode: Mode
    seed: int
    runs: tuple[ScenarioRun, ...]
    #: How load was offered, in words (the report says which load model the run used).
    load_model: str = ""

    def frame(self) -> pd.DataFrame:
        """All events, one row each, with a ``scenario`` column."""
        return self._stacked("frame")

    def server_frame(self) -> pd.DataFrame:
        """Upstream attempts received per second, per scenario."""
        return self._stacked("server")

    def _stacked(self, attribute: str) -> pd.DataFrame:
        import pandas as pd

        frames = [getattr(run, attribute).assign(scenario=run.scenario) for run in self.runs]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def summary_table(self) -> pd.DataFrame:
        """One row per scenario: calls, success rate, amplification, latency percentiles, transitions."""
        import pandas as pd

        rows = []
        for run in self.runs:
            s = run.summary
            rows.append(
                {
                    "scenario": run.scenario,
                    "calls": s.calls,
                    "success_rate": s.success_rate,
                    "rejected": s.rejected,
                    "attempts": s.attempts,
                    "amplification": s.amplification,
                    "budget_refusals": s.budget_refusals,
                    "p50_s": s.latency_p50,
                    "p95_s": s.latency_p95,
                    "p99_s": s.latency_p99,
                    "transitions": len(s.transitions),
                }
            )
        return pd.DataFrame(rows).set_index("scenario") if rows else pd.DataFrame()

    def as_dict(self) -> dict[str, Any]:
        """The summary document saved as ``summary.json``."""
        return {
            "integration": self.integration,
            "mode": self.mode,
            "seed": self.seed,
            "load_model": self.load_model,
            "scenarios": {run.scenario: run.as_dict() for run in self.runs},
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write ``events.csv``, ``server.csv`` and ``summary.json`` into ``out_dir`` (created); return it."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.frame().to_csv(folder / EVENTS_FILE, index=False)
        self.server_frame().to_csv(folder / SERVER_FILE, index=False)
        (folder / SUMMARY_FILE).write_text(json.dumps(self.as_dict(), indent=2, allow_nan=False) + "\n")
        return folder


def load_exercise(out_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read back what :meth:`ExerciseResult.save` wrote: (events, server view, summary document)."""
    import pandas as pd

    folder = Path(out_dir)
    missing = [n for n in (EVENTS_FILE, SERVER_FILE, SUMMARY_FILE) if not (folder / n).is_file()]
    if missing:
        raise ConfigurationError(f"{folder}: no exercise results ({', '.join(missing)} missing): run stage 02 first")
    events = pd.read_csv(folder / EVENTS_FILE, keep_default_na=True, dtype=EVENT_DTYPES)
    server = pd.read_csv(folder / SERVER_FILE, dtype={"scenario": "string"})
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    return events, server, summary


def simulate_integration(
    spec: IntegrationSpec,
    scenario: Scenario,
    *,
    seed: int = 0,
    duration: float | None = None,
    rate: float | None = None,
    workers: int | None = None,
) -> SimulationResult:
    """Run ``scenario`` in the simulator with exactly the policies ``spec`` gives its client, under the spec's
    ``[exercise]`` load unless ``rate``, ``workers`` or ``duration`` say otherwise."""
    ex = spec.exercise
    return simulate(
        scenario,
        config=spec.client,
        rate=ex.rate if rate is None else rate,
        workers=ex.workers if workers is None else workers,
        duration=duration if duration is not None else ex.duration,
        method=ex.method,
        seed=seed,
    )


def _scenarios(spec: IntegrationSpec, scenario: str | Iterable[str] | None) -> list[Scenario]:
    if scenario is None or scenario == "all":
        return list(spec.scenarios)
    names = [scenario] if isinstance(scenario, str) else list(scenario)
    return [spec.scenario(n) for n in names]


def exercise(
    integration: str | IntegrationSpec,
    *,
    mode: Mode = "simulate",
    scenario: str | Iterable[str] | None = "all",
    seed: int = 0,
    duration: float | None = None,
    time_scale: float = 10.0,
    base_url: str | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> ExerciseResult:
    """Run an integration's scenarios (``"all"`` or some names) and return every run's events and summary.

    ``mode="simulate"`` plays them in virtual time; ``mode="live"`` drives the real client over real sockets,
    against the local flaky upstream playing the scenario ``time_scale`` times faster than real time (10: a
    200 s scenario takes 20 s),
    or, with ``base_url``, against a real service with the secret from the spec's environment variable.
    ``progress(scenario, fraction)`` is called as live runs advance.
    """
    spec = integration if isinstance(integration, IntegrationSpec) else load_integration(integration)
    if mode not in ("simulate", "live"):
        raise ConfigurationError(f"mode must be 'simulate' or 'live', got {mode!r}")
    runs = []
    for s in _scenarios(spec, scenario):
        if mode == "simulate":
            result = simulate_integration(spec, s, seed=seed, duration=duration)
            runs.append(
                ScenarioRun(
                    scenario=s.name,
                    summary=result.summary,
                    upstream_received=result.server.received,
                    transitions=tuple(result.transition_lines()),
                    frame=result.to_frame(),
                    server=result.server.to_frame(),
                    wall_seconds=result.wall_seconds,
                )
            )
        else:
            runs.append(
                _live_run(
                    spec, s, seed=seed, duration=duration, time_scale=time_scale, base_url=base_url, progress=progress
                )
            )
    return ExerciseResult(spec.name, mode, seed, tuple(runs), load_model(spec, mode))


def load_model(spec: IntegrationSpec, mode: Mode) -> str:
    """How an exercise of ``spec`` offers load, in words: open-loop arrivals at the spec's rate (simulated: Poisson;
    live: evenly spaced, served by a bounded pool of callers) or closed-loop workers."""
    ex = spec.exercise
    if ex.workers:
        return f"closed-loop: {ex.workers} workers calling back to back"
    if mode == "simulate":
        return f"open-loop: Poisson arrivals at {ex.rate:g} calls/s (simulated, virtual time)"
    from integration_kit.playbook.live import pool_size

    pool = pool_size(spec)
    return f"open-loop: Poisson arrivals at {ex.rate:g} calls/s, served by a pool of up to {pool} callers (live)"


def _live_run(
    spec: IntegrationSpec,
    scenario: Scenario,
    *,
    seed: int,
    duration: float | None,
    time_scale: float,
    base_url: str | None,
    progress: Callable[[str, float], None] | None,
) -> ScenarioRun:
    from integration_kit.playbook.live import live_exercise

    began = time.perf_counter()
    result = live_exercise(
        spec, scenario, seed=seed, duration=duration, time_scale=time_scale, base_url=base_url, progress=progress
    )
    return ScenarioRun(
        scenario=scenario.name,
        summary=result.summary,
        upstream_received=result.upstream_received,
        transitions=tuple(result.transition_lines),
        frame=result.frame,
        server=result.server,
        wall_seconds=time.perf_counter() - began,
    )


def resolve_out_dir(integration: str, out_dir: str | Path | None = None) -> Path:
    """``out_dir`` if given, else ``out/<integration>/latest`` (what interactive notebook sessions use)."""
    return Path(out_dir) if out_dir else DEFAULT_OUT / integration / "latest"


#: The charts saved per scenario by :func:`chart_run`, by file stem.
CHARTS: tuple[str, ...] = (
    "dashboard",
    "latency",
    "attempts",
    "breaker",
    "outcomes",
    "load",
    "amplification",
)


def chart_run(out_dir: str | Path, spec: IntegrationSpec | None = None) -> dict[str, dict[str, Path]]:
    """Draw every chart of a saved exercise, per scenario, into ``<out_dir>/charts/<scenario>-<chart>.png``.

    Returns ``{scenario: {chart: path}}``. The charts work on simulated and live runs alike. With the run's
    ``spec``, each time axis shades and names the scenario's phases.
    """
    from integration_kit.playbook import charts
    from integration_kit.playbook.figures import phase_windows

    events, server, _ = load_exercise(out_dir)
    folder = Path(out_dir) / "charts"
    saved: dict[str, dict[str, Path]] = {}
    for scenario in events["scenario"].drop_duplicates():
        frame = events[events["scenario"] == scenario]
        view = server[server["scenario"] == scenario] if "scenario" in server else None
        phases = None
        if spec is not None and scenario in {s.name for s in spec.scenarios}:
            started = frame["time"].astype(float) - frame["duration"].astype(float).fillna(0.0)
            length = math.ceil(float(started.max())) if len(frame) else None
            phases = phase_windows(spec.scenario(str(scenario)), length)
        saved[str(scenario)] = charts.save_dashboard(
            frame, view, folder, str(scenario), title=str(scenario), phases=phases
        )
    return saved


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

    @property
    def ok(self) -> bool:
        """Whether every notebook ran."""
        return self.error is None


def run_playbook(
    integration: str | Path,
    *,
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

    ``integration`` is a name in ``data/integrations`` or the path of a spec file (``*.toml``). ``time_scale``
    (live mode) plays scenario time that many times faster than real time: default 10 for HTTP and webhook
    specs, 20 for queue specs (:data:`~integration_kit.playbook.queue_spec.LIVE_TIME_SCALE`).

    Each executed notebook, the events, ``summary.json``, the chart PNGs and ``report.html`` end up in that
    folder. A notebook that fails stops the run: the result carries the failing cell and error, and the report
    is still rendered from what ran.
    """
    if spec_kind(integration) in ("webhook-in", "webhook-out"):  # webhook specs have their own playbook notebook
        from integration_kit.playbook.webhook_runner import run_webhook_playbook

        return run_webhook_playbook(
            integration,
            scenario=scenario,
            mode=mode,
            time_scale=10.0 if time_scale is None else time_scale,
            out=out,
            seed=seed,
            run_id=run_id,
        )
    if spec_kind(integration) == "queue":  # queue integrations run in-process (playbook.queue_spec)
        from integration_kit.playbook.queue_spec import load_queue_spec, run_queue

        queue = load_queue_spec(integration)
        return run_queue(
            queue,
            mode=mode,
            out=out or DEFAULT_OUT,
            seed=seed,
            strict=strict,
            run_id=run_id,
            time_scale=time_scale,
            scenario=scenario,
            duration=duration,
        )
    time_scale = 10.0 if time_scale is None else time_scale
    spec = load_integration(integration)  # validates the name and the spec before any kernel starts
    _scenarios(spec, scenario)  # an unknown --scenario fails here, naming the ones there are
    if mode == "live" and base_url is not None and spec.client.auth is not None:
        spec.client.auth.load()  # a missing secret fails here, naming the variable, before any kernel starts
    folder = Path(out) if out is not None else DEFAULT_OUT
    run_dir = folder / spec.name / (run_id or new_run_id())
    run_dir.mkdir(parents=True, exist_ok=True)
    parameters: dict[str, dict[str, Any]] = {
        "01_design.ipynb": {"integration": str(integration), "strict": strict, "out_dir": str(run_dir)},
        "02_exercise.ipynb": {
            "integration": str(integration),
            "mode": mode,
            "scenario": scenario,
            "seed": seed,
            "duration": float(duration or 0.0),
            "time_scale": time_scale,
            "base_url": base_url or "",
            "out_dir": str(run_dir),
            "progress_file": str(run_dir / PROGRESS_FILE),
        },
        "03_charts.ipynb": {"integration": str(integration), "out_dir": str(run_dir)},
    }
    import papermill as pm

    engine_options: dict[str, Any] = {}
    if os.name == "posix":
        engine_options["kernel_manager_class"] = _local_kernel_manager()
    error = None
    executed: list[Path] = []
    for notebook in NOTEBOOKS:
        target = run_dir / notebook
        live = mode == "live" and notebook == "02_exercise.ipynb"
        try:
            with ConsoleProgress(run_dir / PROGRESS_FILE, len(_scenarios(spec, scenario))) if live else _nothing():
                pm.execute_notebook(
                    str(NOTEBOOK_DIR / notebook),
                    str(target),
                    parameters=parameters[notebook],
                    cwd=str(REPO_ROOT),
                    kernel_name=kernel_name,
                    progress_bar=False,
                    log_output=False,
                    **engine_options,
                )
            executed.append(target)
        except pm.PapermillExecutionError as exc:
            executed.append(target)
            error = f"{notebook}: cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
            break
    (run_dir / PROGRESS_FILE).unlink(missing_ok=True)  # the console bar's scratch file, not a result
    report = render_report(executed, run_dir / "report.html", title=f"{spec.name} playbook run")
    summary: dict[str, Any] = {}
    if (run_dir / SUMMARY_FILE).is_file():
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    from integration_kit.playbook.verdict import VERDICT_FILE, Verdict

    verdict = Verdict.load(run_dir) if error is None and (run_dir / VERDICT_FILE).is_file() else None
    return PlaybookRun(spec.name, run_dir, summary, report, error, verdict)


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _local_kernel_manager() -> type:
    """A kernel manager whose kernels talk over Unix sockets, not TCP on loopback.

    Nothing else on the machine can connect to such a kernel, and ipykernel has no reason to warn about
    unencrypted TCP on every start.
    """
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"

    return IPCKernelManager


def render_report(notebooks: Iterable[Path], target: Path, *, title: str) -> Path | None:
    """Merge executed notebooks into one HTML report (code hidden, outputs and prose kept).

    Cells tagged ``verdict`` come first (the verdict table and the findings), then every other cell in notebook
    order: the design document, the exercise, the charts.
    """
    import nbformat
    from nbconvert import HTMLExporter

    paths = [p for p in notebooks if p.is_file()]
    if not paths:
        return None
    merged = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    first: list[Any] = []  # cells tagged "verdict" open the report, whichever notebook holds them
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]
        for cell in nb.cells:
            tags = cell.get("metadata", {}).get("tags", [])
            if "parameters" not in tags:
                (first if "verdict" in tags else merged.cells).append(cell)
        merged.metadata = merged.metadata or nb.metadata
    merged.cells[:0] = first
    merged.metadata["title"] = title
    exporter = HTMLExporter(  # type: ignore[no-untyped-call]
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(merged)
    target.write_text(body, encoding="utf-8")
    return target
