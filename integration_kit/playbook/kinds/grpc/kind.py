"""The gRPC kind (``kind = "grpc"``): its spec, checklist, design, exercise, verdict and charts."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

from integration_kit.playbook.kinds.grpc.charts import save_dashboards
from integration_kit.playbook.kinds.grpc.exercise import LIVE_TIME_SCALE, GrpcExercise, chosen, load_run, play
from integration_kit.playbook.kinds.grpc.spec import OBJECTIVES, GrpcSpec, grpc_checklist, grpc_design_document
from integration_kit.playbook.kinds.protocol import CheckItem, ExerciseOptions
from integration_kit.playbook.verdict.bench import voided
from integration_kit.playbook.verdict.verdict import Check, Verdict

__all__ = ["GRPC", "GrpcKind"]

_DEFINITIONS = {
    "success_rate": "calls that returned their answer / calls offered (all methods; per method in its scope)",
    "amplification": "attempts sent / calls offered",
    "latency_p99": "99th percentile of a call's duration, retries and waits included (scenario seconds)",
}


class GrpcKind:
    """:class:`~integration_kit.playbook.kinds.protocol.Kind` for gRPC specs (:class:`GrpcSpec`)."""

    names: tuple[str, ...] = ("grpc",)
    live_time_scale = LIVE_TIME_SCALE
    #: Every column counts all methods together, as the verdict's whole-run scope does (a method's own figures
    #: are in the verdict's per-method scopes and the report).
    run_notes: Mapping[str, str] = MappingProxyType(
        {
            "calls (all methods)": "calls offered, every method",
            "success (all methods)": _DEFINITIONS["success_rate"],
            "ampl. (all methods)": _DEFINITIONS["amplification"],
            "p99 s (all methods)": _DEFINITIONS["latency_p99"],
        }
    )

    @property
    def templates(self) -> Mapping[str, str]:
        """The commented example spec."""
        return {"grpc": files(__package__).joinpath("template.toml").read_text(encoding="utf-8")}

    def build(self, data: Mapping[str, Any], *, source: str, path: Path | None) -> GrpcSpec:
        """See :meth:`GrpcSpec.from_mapping`."""
        return GrpcSpec.from_mapping(data, source=source, path=path)

    def checklist(self, spec: GrpcSpec) -> list[CheckItem]:
        """See :func:`~integration_kit.playbook.kinds.grpc.spec.grpc_checklist`."""
        return grpc_checklist(spec)

    def design_document(self, spec: GrpcSpec) -> str:
        """See :func:`~integration_kit.playbook.kinds.grpc.spec.grpc_design_document`."""
        return grpc_design_document(spec)

    def preflight(self, spec: GrpcSpec, options: ExerciseOptions) -> None:
        """Refuse an unknown scenario, a bad duration or time scale, and a ``base_url``."""
        chosen(spec, options)

    def exercise(self, spec: GrpcSpec, options: ExerciseOptions, out_dir: Path) -> GrpcExercise:
        """See :func:`~integration_kit.playbook.kinds.grpc.exercise.play`."""
        return play(spec, options)

    def judge(self, spec: GrpcSpec, out_dir: Path) -> Verdict:
        """Each scenario's figures (all methods, and each method) against its objectives; saves ``verdict.json``."""
        summary = load_run(out_dir)
        checks = []
        for name, figures in summary["scenarios"].items():
            objectives = spec.objectives_for(name)
            scopes = [("whole run", figures), *((f"method {m}", f) for m, f in figures["methods"].items())]
            for scope, values in scopes:
                for figure, limit in objectives.items():
                    value = values.get(figure)
                    floor, unit = OBJECTIVES[figure][1], OBJECTIVES[figure][2]
                    measured = float("nan") if value is None else float(value)
                    checks.append(Check(name, figure, scope, limit, measured, minimum=floor, unit=unit))  # type: ignore[arg-type]
        live = summary.get("live")
        model = "simulated in virtual time (the HTTP error mix as gRPC statuses)"
        target = "simulate: in virtual time (no server)"
        if live:
            model = f"live, {live['time_scale']:g} times faster than real time"
            model += f", at most {live['max_calls']} calls per method"
            target = "live: the flaky gRPC upstream on 127.0.0.1"
        invalid = voided(summary["scenarios"])
        verdict = Verdict(
            spec.name, str(summary.get("mode", "simulate")), model, tuple(checks),
            kind="grpc", target=target, definitions=_DEFINITIONS, invalid=invalid,
        )  # fmt: skip
        verdict.save(out_dir)
        return verdict

    def charts(self, spec: GrpcSpec, out_dir: Path) -> dict[str, dict[str, Path]]:
        """One dashboard per scenario (see :mod:`~integration_kit.playbook.kinds.grpc.charts`)."""
        return save_dashboards(load_run(out_dir), Path(out_dir) / "charts")

    def run_columns(self, figures: Mapping[str, Any]) -> Mapping[str, str] | None:
        """Calls, success rate, amplification and p99 latency over all methods (see :attr:`run_notes`)."""
        cells = (("calls", ",.0f"), ("success_rate", ".1%"), ("amplification", ".2f"), ("latency_p99", ".3f"))
        return {
            header: "no data" if figures.get(key) is None else format(figures[key], spec)
            for header, (key, spec) in zip(self.run_notes, cells, strict=True)
        }


#: The gRPC kind, as the table of kinds holds it.
GRPC = GrpcKind()
