"""The playbook run of a webhook integration: one notebook (``notebooks/webhooks_playbook.ipynb``) that renders
the design document and checklist, plays every scenario in virtual time, charts it and judges the objectives.

:func:`run_webhook_playbook` executes it with papermill into ``out/<integration>/<run id>/`` and renders the HTML
report, like the HTTP playbook; :func:`run_scenarios` and :func:`save_summary` are what the notebook calls.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.runner import (
    DEFAULT_OUT,
    NOTEBOOK_DIR,
    REPO_ROOT,
    SUMMARY_FILE,
    PlaybookRun,
    _local_kernel_manager,
    new_run_id,
    render_report,
)
from integration_kit.playbook.webhook_sim import WebhookRun, simulate_webhooks
from integration_kit.playbook.webhook_spec import WebhookSpec, load_webhook_spec

__all__ = ["WEBHOOK_NOTEBOOK", "run_scenarios", "run_webhook_playbook", "save_summary"]

#: The webhook playbook notebook.
WEBHOOK_NOTEBOOK = "webhooks_playbook.ipynb"


def run_scenarios(
    spec: WebhookSpec, *, seed: int = 0, scenario: str = "all", mode: str = "simulate", time_scale: float = 10.0
) -> list[WebhookRun]:
    """Play the spec's scenarios (``"all"`` or one name) in virtual time, or ``mode="live"`` over real sockets on
    127.0.0.1 with scenario time ``time_scale`` times faster (:mod:`integration_kit.playbook.webhook_live`)."""
    chosen = spec.scenarios if scenario == "all" else (spec.scenario(scenario),)
    if mode == "live":
        from integration_kit.playbook.webhook_live import live_webhooks

        return [live_webhooks(spec, s, seed=seed, time_scale=time_scale) for s in chosen]
    if mode != "simulate":
        raise ConfigurationError(f"mode must be simulate or live, got {mode!r}")
    return [simulate_webhooks(spec, s, seed=seed) for s in chosen]


def save_summary(
    spec: WebhookSpec, runs: Iterable[WebhookRun], out_dir: str | Path, *, seed: int = 0, mode: str = "simulate"
) -> Path:
    """Write ``summary.json`` (counters, objectives and the verdict per scenario) into ``out_dir``."""
    runs = list(runs)
    summary = {
        "integration": spec.name,
        "kind": spec.kind,
        "mode": mode,
        "seed": seed,
        "ok": all(r.ok for r in runs),
        "scenarios": {r.scenario: r.as_dict() for r in runs},
    }
    target = Path(out_dir) / SUMMARY_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary, indent=2, default=float))
    return target


def run_webhook_playbook(
    integration: str | Path,
    *,
    scenario: str = "all",
    mode: str = "simulate",
    time_scale: float = 10.0,
    out: str | Path | None = None,
    seed: int = 0,
    run_id: str | None = None,
    kernel_name: str | None = None,
) -> PlaybookRun:
    """Execute the webhook playbook notebook for ``integration`` and render its report.

    The run fails (``error`` is set) when the notebook fails, including when an objective is not met: the
    notebook's last cell asserts the verdict.
    """
    spec = load_webhook_spec(integration)
    run_dir = Path(out if out is not None else DEFAULT_OUT) / spec.name / (run_id or new_run_id())
    run_dir.mkdir(parents=True, exist_ok=True)
    import papermill as pm

    options: dict[str, Any] = {}
    if os.name == "posix":
        options["kernel_manager_class"] = _local_kernel_manager()
    target = run_dir / WEBHOOK_NOTEBOOK
    error = None
    try:
        pm.execute_notebook(
            str(NOTEBOOK_DIR / WEBHOOK_NOTEBOOK),
            str(target),
            parameters={
                "integration": str(integration),
                "scenario": scenario,
                "mode": mode,
                "time_scale": time_scale,
                "seed": seed,
                "out_dir": str(run_dir),
            },
            cwd=str(REPO_ROOT),
            kernel_name=kernel_name,
            progress_bar=False,
            log_output=False,
            **options,
        )
    except pm.PapermillExecutionError as exc:
        error = f"{WEBHOOK_NOTEBOOK}: cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    report = render_report([target], run_dir / "report.html", title=f"{spec.name} playbook run")
    summary = json.loads((run_dir / SUMMARY_FILE).read_text()) if (run_dir / SUMMARY_FILE).is_file() else {}
    return PlaybookRun(spec.name, run_dir, summary, report, error)
