"""The HTTP kind (``kind = "http"``, the default): a partner's API called through the resilient HTTP client."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

from integration_kit.playbook.kinds.http.bench import probe_target
from integration_kit.playbook.kinds.http.design import checklist, design_document
from integration_kit.playbook.kinds.http.exercise import (
    LIVE_TIME_SCALE,
    ExerciseResult,
    chart_run,
    exercise,
    scenarios_of,
)
from integration_kit.playbook.kinds.http.judge import judge_run
from integration_kit.playbook.kinds.http.spec import IntegrationSpec
from integration_kit.playbook.kinds.protocol import CheckItem, ExerciseOptions
from integration_kit.playbook.verdict.verdict import Verdict

__all__ = ["HTTP", "HttpKind"]


class HttpKind:
    """:class:`~integration_kit.playbook.kinds.protocol.Kind` for HTTP specs (:class:`IntegrationSpec`)."""

    names: tuple[str, ...] = ("http",)
    live_time_scale = LIVE_TIME_SCALE
    #: Empty: this kind's rows go in the shared call table.
    run_notes: Mapping[str, str] = MappingProxyType({})

    @property
    def templates(self) -> Mapping[str, str]:
        """The commented example spec ``new --kind http`` and ``init`` write."""
        return {"http": files(__package__).joinpath("template.toml").read_text(encoding="utf-8")}

    def build(self, data: Mapping[str, Any], *, source: str, path: Path | None) -> IntegrationSpec:
        """See :meth:`IntegrationSpec.from_mapping`."""
        return IntegrationSpec.from_mapping(data, source=source, path=path)

    def checklist(self, spec: IntegrationSpec) -> list[CheckItem]:
        """See :func:`~integration_kit.playbook.kinds.http.design.checklist`."""
        return checklist(spec)

    def design_document(self, spec: IntegrationSpec) -> str:
        """See :func:`~integration_kit.playbook.kinds.http.design.design_document`."""
        return design_document(spec)

    def preflight(self, spec: IntegrationSpec, options: ExerciseOptions) -> None:
        """Refuse an unknown scenario, and (live against a real service) a secret that is not set or a target that
        answers nothing (:func:`~integration_kit.playbook.kinds.http.bench.probe_target`)."""
        scenarios_of(spec, options.scenario)
        if options.mode == "live" and options.base_url:
            if spec.client.auth is not None:
                spec.client.auth.load()
            probe_target(options.base_url)

    def exercise(self, spec: IntegrationSpec, options: ExerciseOptions, out_dir: Path) -> ExerciseResult:
        """See :func:`~integration_kit.playbook.kinds.http.exercise.exercise`."""
        return exercise(
            spec,
            mode=options.mode,
            scenario=options.scenario,
            seed=options.seed,
            duration=options.duration,
            time_scale=options.time_scale,  # None: the kind's, fitted to this machine
            base_url=options.base_url,
            progress=options.progress,
        )

    def judge(self, spec: IntegrationSpec, out_dir: Path) -> Verdict:
        """See :func:`~integration_kit.playbook.kinds.http.judge.judge_run`."""
        return judge_run(spec, out_dir)

    def charts(self, spec: IntegrationSpec, out_dir: Path) -> dict[str, dict[str, Path]]:
        """See :func:`~integration_kit.playbook.kinds.http.exercise.chart_run`."""
        return chart_run(out_dir, spec)

    def run_columns(self, figures: Mapping[str, Any]) -> Mapping[str, str] | None:
        """``None``: the shared run table shows this kind's figures (see :attr:`run_notes`)."""
        del figures
        return None


#: The HTTP kind, as the table of kinds holds it.
HTTP = HttpKind()
