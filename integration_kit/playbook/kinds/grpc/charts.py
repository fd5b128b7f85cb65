"""Charts of a gRPC run: per scenario, each method's success rate, amplification, requests per call (the load
hedges add) and p99 latency against the objectives, drawn from the run folder's ``summary.json``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

__all__ = ["grpc_dashboard", "save_dashboards"]

_PANELS = (
    ("success_rate", "success rate"),
    ("amplification", "attempts per call"),
    ("requests_per_call", "requests per call (with hedges)"),
    ("latency_p99", "p99 latency (s)"),
)


def grpc_dashboard(scenario: str, figures: Mapping[str, Any]) -> Figure:
    """A bar panel per figure for one scenario (one bar per method, the objective as a dashed line)."""
    figure = Figure(figsize=(14.0, 3.6), layout="constrained")
    axes = figure.subplots(1, len(_PANELS))
    methods = figures.get("methods", {})
    limits = {o["figure"]: o["limit"] for o in figures.get("objectives", [])}
    for ax, (key, title) in zip(axes, _PANELS, strict=True):
        ax.bar(list(methods), [m.get(key) or 0.0 for m in methods.values()], color="tab:blue")
        if key in limits:
            ax.axhline(limits[key], color="tab:red", linestyle="--", label="objective")
            ax.legend(loc="lower right", fontsize="small")
        ax.set_title(title, fontsize="small")
    rate = figures.get("success_rate")
    figure.suptitle(f"{scenario}: {figures.get('calls', 0)} calls, success {0.0 if rate is None else rate:.1%}")
    return figure


def save_dashboards(summary: Mapping[str, Any], folder: Path) -> dict[str, dict[str, Path]]:
    """Draw :func:`grpc_dashboard` for every scenario into ``folder``: ``{scenario: {"dashboard": png}}``."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name, figures in summary["scenarios"].items():
        target = folder / f"{name}-dashboard.png"
        grpc_dashboard(name, figures).savefig(target, dpi=90)
        saved[name] = {"dashboard": target}
    return saved
