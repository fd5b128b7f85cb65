"""The queue kind (``kind = "queue"``): publishing and consuming through RabbitMQ or NATS JetStream."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.protocol import CheckItem, ExerciseOptions
from integration_kit.playbook.kinds.queue.charts import save_dashboards
from integration_kit.playbook.kinds.queue.exercise import (
    LIVE_TIME_SCALE,
    QueueExercise,
    chosen,
    live_player,
    load_run,
    play,
)
from integration_kit.playbook.kinds.queue.exercise import time_scale as live_scale
from integration_kit.playbook.kinds.queue.spec import QueueSpec, queue_checklist, queue_design_document
from integration_kit.playbook.verdict.bench import voided
from integration_kit.playbook.verdict.verdict import Check, Verdict

__all__ = ["QUEUE", "QueueKind"]

#: Objectives shown in seconds; the others are counts of messages.
_SECONDS = frozenset({"latency_p50", "latency_p99", "max_lag"})


class QueueKind:
    """:class:`~integration_kit.playbook.kinds.protocol.Kind` for queue specs (:class:`QueueSpec`)."""

    names: tuple[str, ...] = ("queue",)
    live_time_scale = LIVE_TIME_SCALE
    #: Empty: this kind's rows go in the shared run table's queue part (messages, lost, twice, dead letters, lag).
    run_notes: Mapping[str, str] = MappingProxyType({})

    @property
    def templates(self) -> Mapping[str, str]:
        """The commented example spec."""
        return {"queue": files(__package__).joinpath("template.toml").read_text(encoding="utf-8")}

    def build(self, data: Mapping[str, Any], *, source: str, path: Path | None) -> QueueSpec:
        """See :meth:`QueueSpec.from_mapping`."""
        return QueueSpec.from_mapping(data, source=source, path=path)

    def checklist(self, spec: QueueSpec) -> list[CheckItem]:
        """See :func:`~integration_kit.playbook.kinds.queue.spec.queue_checklist`."""
        return queue_checklist(spec)

    def design_document(self, spec: QueueSpec) -> str:
        """See :func:`~integration_kit.playbook.kinds.queue.spec.queue_design_document`."""
        return queue_design_document(spec)

    def preflight(self, spec: QueueSpec, options: ExerciseOptions) -> None:
        """Refuse an unknown scenario, a bad duration or time scale, and a ``base_url`` (queues take none)."""
        chosen(spec, options.scenario, options.duration)
        if options.mode == "live":
            live_scale(spec, options)
            live_player(spec, check_broker=True)
        if options.base_url:
            raise ConfigurationError(
                f"{spec.name}: --base-url: a queue integration runs on its broker and takes no URL"
            )

    def exercise(self, spec: QueueSpec, options: ExerciseOptions, out_dir: Path) -> QueueExercise:
        """See :func:`~integration_kit.playbook.kinds.queue.exercise.play`."""
        return play(spec, options, out_dir)

    def judge(self, spec: QueueSpec, out_dir: Path) -> Verdict:
        """Each scenario's figures in ``out_dir`` against the spec's objectives (ceilings); saves ``verdict.json``."""
        summary, _ = load_run(out_dir)
        checks = tuple(
            Check(
                name,
                o["figure"],
                "whole run",
                float(o["limit"]),
                float("nan") if o["value"] is None else float(o["value"]),
                unit="s" if o["figure"] in _SECONDS else "count",
            )
            for name, figures in summary["scenarios"].items()
            for o in figures["objectives"]
        )
        live = summary.get("live")
        model = "simulated in virtual time"
        if live:
            model = (
                f"on {live['broker']}, {live['time_scale']:g} times faster than real time, at most "
                f"{live['max_messages']:,} messages per scenario"
            )
        thinned = [
            f"{n}: {f['thinning']:.1%} of its messages" for n, f in summary["scenarios"].items() if f["thinning"] < 1
        ]
        if thinned:
            model += (
                "; thinned (arrivals and backlog cut, processing stretched, so utilisation, lag and latency are the "
                "scenario's, while counts and depths are that share of it): " + "; ".join(thinned)
            )
        target = f"live: the {live['broker']} broker" if live else "simulate: in virtual time (no broker)"
        invalid = voided(summary["scenarios"])
        mode = str(summary.get("mode", "simulate"))
        verdict = Verdict(spec.name, mode, model, checks, kind="queue", invalid=invalid, target=target)
        verdict.save(out_dir)
        return verdict

    def charts(self, spec: QueueSpec, out_dir: Path) -> dict[str, dict[str, Path]]:
        """One dashboard per scenario (see :mod:`~integration_kit.playbook.kinds.queue.charts`)."""
        summary, series = load_run(out_dir)
        return save_dashboards(summary, series, Path(out_dir) / "charts")

    def run_columns(self, figures: Mapping[str, Any]) -> Mapping[str, str] | None:
        """``None``: the shared run table shows this kind's figures (see :attr:`run_notes`)."""
        del figures
        return None


#: The queue kind, as the table of kinds holds it.
QUEUE = QueueKind()
