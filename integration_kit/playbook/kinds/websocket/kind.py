"""The WebSocket kind (``kind = "websocket"``): a partner's live feed through the kit's resilient client."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

from integration_kit.errors import ConfigurationError
from integration_kit.playbook.kinds.protocol import CheckItem, ExerciseOptions
from integration_kit.playbook.kinds.websocket.charts import save_dashboards
from integration_kit.playbook.kinds.websocket.exercise import LIVE_TIME_SCALE, WsExercise, chosen, load_run, play
from integration_kit.playbook.kinds.websocket.exercise import time_scale as live_scale
from integration_kit.playbook.kinds.websocket.spec import FIGURES, WebSocketSpec, ws_checklist, ws_design_document
from integration_kit.playbook.verdict.bench import voided
from integration_kit.playbook.verdict.verdict import Check, Finding, Verdict

__all__ = ["WEBSOCKET", "WebSocketKind"]


class WebSocketKind:
    """:class:`~integration_kit.playbook.kinds.protocol.Kind` for WebSocket specs (:class:`WebSocketSpec`)."""

    names: tuple[str, ...] = ("websocket",)
    live_time_scale = LIVE_TIME_SCALE
    run_notes: Mapping[str, str] = MappingProxyType(
        {
            "lost": "messages the readers never got (gaps not resumed or resynced)",
            "dupes": "messages delivered twice after a resume",
            "away p99 s": "99th percentile of a client's time disconnected after the restart (scenario seconds)",
            "stall s": "how long a silent feed goes unnoticed before a reconnect (scenario seconds)",
            "peak hs/s": "the most handshakes the server saw in one second after the restart",
            "back": "clients connected again by the horizon / clients",
        }
    )

    @property
    def templates(self) -> Mapping[str, str]:
        """The commented example spec."""
        return {"websocket": files(__package__).joinpath("template.toml").read_text(encoding="utf-8")}

    def build(self, data: Mapping[str, Any], *, source: str, path: Path | None) -> WebSocketSpec:
        """See :meth:`WebSocketSpec.from_mapping`."""
        return WebSocketSpec.from_mapping(data, source=source, path=path)

    def checklist(self, spec: WebSocketSpec) -> list[CheckItem]:
        """See :func:`~integration_kit.playbook.kinds.websocket.spec.ws_checklist`."""
        return ws_checklist(spec)

    def design_document(self, spec: WebSocketSpec) -> str:
        """See :func:`~integration_kit.playbook.kinds.websocket.spec.ws_design_document`."""
        return ws_design_document(spec)

    def preflight(self, spec: WebSocketSpec, options: ExerciseOptions) -> None:
        """Refuse an unknown scenario, a bad duration or time scale, and a ``base_url`` (live runs play the flaky
        feed on 127.0.0.1)."""
        chosen(spec, options.scenario, options.duration)
        if options.mode == "live":
            live_scale(spec, options)
        if options.base_url:
            raise ConfigurationError(f"{spec.name}: --base-url: a WebSocket live run plays the flaky feed on loopback")

    def exercise(self, spec: WebSocketSpec, options: ExerciseOptions, out_dir: Path) -> WsExercise:
        """See :func:`~integration_kit.playbook.kinds.websocket.exercise.play`."""
        return play(spec, options, out_dir)

    def judge(self, spec: WebSocketSpec, out_dir: Path) -> Verdict:
        """Each scenario's figures in ``out_dir`` against the spec's objectives (ceilings); saves ``verdict.json``."""
        summary, _ = load_run(out_dir)
        checks = tuple(
            Check(
                name,
                o["figure"],
                "whole run",
                float(o["limit"]),
                float("nan") if o["value"] is None else float(o["value"]),
                unit="s" if FIGURES.get(o["figure"]) == "s" else "count",
            )
            for name, figures in summary["scenarios"].items()
            for o in figures["objectives"]
        )
        live = summary.get("live")
        if live:
            model = (
                f"live against the flaky feed on 127.0.0.1, {live['time_scale']:g} times faster than real time, at "
                f"most {live['max_clients']} clients (peak handshakes scaled to the scenario's clients)"
            )
            model += _information(summary, live.get("informational", ()))
            target = "live: FlakyFeed on 127.0.0.1"
        else:
            model = "simulated in virtual time: every client runs the kit's reconnect policy and call engine"
            target = "simulate: in virtual time (no socket)"
        mode = str(summary.get("mode", "simulate"))
        invalid = voided(summary["scenarios"])
        findings = _findings(spec, checks)
        verdict = Verdict(spec.name, mode, model, checks, findings, kind="websocket", target=target, invalid=invalid)
        verdict.save(out_dir)
        return verdict

    def charts(self, spec: WebSocketSpec, out_dir: Path) -> dict[str, dict[str, Path]]:
        """One dashboard per scenario (see :mod:`~integration_kit.playbook.kinds.websocket.charts`)."""
        summary, series = load_run(out_dir)
        return save_dashboards(summary, series, Path(out_dir) / "charts")

    def run_columns(self, figures: Mapping[str, Any]) -> Mapping[str, str] | None:
        """Messages lost, duplicates, time disconnected, stall detection, peak handshakes and clients back (see
        :attr:`run_notes`), from one scenario's saved figures."""
        return {
            "lost": _cell(figures.get("messages_lost"), ",.0f"),
            "dupes": _cell(figures.get("duplicates_delivered"), ",.0f"),
            "away p99 s": _cell(figures.get("disconnected_p99"), ".1f"),
            "stall s": _cell(figures.get("stall_detect"), ".1f"),
            "peak hs/s": _cell(figures.get("peak_handshakes"), ",.0f"),
            "back": _cell(figures.get("success_rate"), ".1%"),
        }


def _cell(value: Any, spec: str) -> str:
    """``value`` formatted, ``no data`` when it is missing (``None`` in ``summary.json``)."""
    return "no data" if value is None else format(value, spec)


def _findings(spec: WebSocketSpec, checks: tuple[Check, ...]) -> tuple[Finding, ...]:
    """One finding per scenario whose ``peak_handshakes`` missed its ceiling: spread the first reconnect (clients
    over ``first_delay`` seconds is the handshakes per second the server sees at the restart)."""
    first = spec.reconnect.first_delay
    return tuple(
        Finding(
            "spread-first-reconnect",
            c.scenario,
            f"{c.measured:g} handshakes a second at the restart over the bound of {c.target:g}: spread the first "
            f"reconnect, raise reconnect.first_delay from {first:g} s (the peak falls about as 1/first_delay: "
            f"{first * c.measured / c.target:.3g} s at the least; re-run to confirm)",
            f"peak_handshakes = {c.measured:g}",
        )
        for c in checks
        if c.objective == "peak_handshakes" and not c.passed
    )


def _information(summary: Mapping[str, Any], names: Any) -> str:
    """What a live run reports without judging (``; not judged live: peak_handshakes 350 (bound 300, judged in
    simulate mode)``), or ``""``."""
    if not names:
        return ""
    shown = [
        f"{o['figure']} {o['value']:g} in {scenario} (bound {o['limit']:g})"
        for scenario, figures in summary["scenarios"].items()
        for o in figures.get("information", ())
        if o["value"] is not None
    ]
    return f"; reported, not judged live ({', '.join(names)}: judged in simulate mode): " + ", ".join(shown)


#: The WebSocket kind, as the table of kinds holds it.
WEBSOCKET = WebSocketKind()
