"""The webhook kinds: receiving (``kind = "webhook-in"``) and sending (``kind = "webhook-out"``) webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.protocol import CheckItem, ExerciseOptions
from integration_kit.playbook.kinds.webhook.charts import webhook_dashboard
from integration_kit.playbook.kinds.webhook.exercise import WebhookExercise, load_runs, run_scenarios
from integration_kit.playbook.kinds.webhook.judge import checks_of
from integration_kit.playbook.kinds.webhook.spec import WebhookSpec, webhook_checklist, webhook_design_document
from integration_kit.playbook.verdict.bench import void
from integration_kit.playbook.verdict.verdict import Verdict

__all__ = ["WEBHOOK", "WebhookKind"]


class WebhookKind:
    """:class:`~integration_kit.playbook.kinds.protocol.Kind` for webhook specs (:class:`WebhookSpec`)."""

    names: tuple[str, ...] = ("webhook-in", "webhook-out")
    live_time_scale = 10.0
    #: Empty: this kind's rows go in the shared call table.
    run_notes: Mapping[str, str] = MappingProxyType({})

    @property
    def templates(self) -> Mapping[str, str]:
        """The commented example specs, receiving and sending."""
        folder = files(__package__)
        return {kind: folder.joinpath(f"template-{kind[8:]}.toml").read_text(encoding="utf-8") for kind in self.names}

    def build(self, data: Mapping[str, Any], *, source: str, path: Path | None) -> WebhookSpec:
        """See :meth:`WebhookSpec.from_mapping`."""
        return WebhookSpec.from_mapping(data, source=source, path=path)

    def checklist(self, spec: WebhookSpec) -> list[CheckItem]:
        """See :func:`~integration_kit.playbook.kinds.webhook.spec.webhook_checklist`."""
        return webhook_checklist(spec)

    def design_document(self, spec: WebhookSpec) -> str:
        """See :func:`~integration_kit.playbook.kinds.webhook.spec.webhook_design_document`."""
        return webhook_design_document(spec)

    def preflight(self, spec: WebhookSpec, options: ExerciseOptions) -> None:
        """Refuse an unknown scenario, and a real ``base_url`` (webhook runs play both sides on 127.0.0.1)."""
        if options.scenario != "all":
            spec.scenario(options.scenario)
        if options.base_url:
            raise ConfigurationError(
                f"{spec.name}: --base-url: a webhook run plays both sides on 127.0.0.1 and takes none"
            )

    def exercise(self, spec: WebhookSpec, options: ExerciseOptions, out_dir: Path) -> WebhookExercise:
        """Play the chosen scenarios (see :func:`~integration_kit.playbook.kinds.webhook.exercise.run_scenarios`)."""
        runs = run_scenarios(
            spec,
            seed=options.seed,
            scenario=options.scenario,
            mode=options.mode,
            time_scale=options.time_scale or self.live_time_scale,
        )
        return WebhookExercise(spec, tuple(runs), options.mode, options.seed)

    def judge(self, spec: WebhookSpec, out_dir: Path) -> Verdict:
        """Every scenario's counts in ``out_dir`` against the objectives; saves ``verdict.json``."""
        summary, runs = load_runs(spec, out_dir)
        judged = {run.scenario: checks_of(spec, run.scenario, run.counts) for run in runs}
        checks = tuple(c for run_checks in judged.values() for c in run_checks)
        invalid = {
            run.scenario: why
            for run in runs
            if (why := void(run.bench, missed=any(not c.passed for c in judged[run.scenario])))
        }
        side = "receiving" if spec.kind == "webhook-in" else "sending"
        mode = str(summary.get("mode", "simulate"))
        where = "our receiver on 127.0.0.1" if spec.kind == "webhook-in" else "our sender, to a subscriber on 127.0.0.1"
        target = f"live: {where} (real sockets)" if mode == "live" else "simulate: in virtual time (no sockets)"
        verdict = Verdict(spec.name, mode, side, checks, kind=spec.kind, invalid=invalid, target=target)
        verdict.save(out_dir)
        return verdict

    def charts(self, spec: WebhookSpec, out_dir: Path) -> dict[str, dict[str, Path]]:
        """One dashboard per scenario: outcomes, and lag (receiving) or time to deliver (sending)."""
        _, runs = load_runs(spec, out_dir)
        folder = Path(out_dir) / "charts"
        folder.mkdir(parents=True, exist_ok=True)
        saved = {}
        for run in runs:
            target = folder / f"{run.scenario}-dashboard.png"
            webhook_dashboard(run, spec.scenario(run.scenario), target)
            saved[run.scenario] = {"dashboard": target}
        return saved

    def run_columns(self, figures: Mapping[str, Any]) -> Mapping[str, str] | None:
        """``None``: the shared run table shows this kind's figures (see :attr:`run_notes`)."""
        del figures
        return None


#: The webhook kinds, as the table of kinds holds them.
WEBHOOK = WebhookKind()
