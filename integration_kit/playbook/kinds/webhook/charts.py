"""Charts of webhook runs (:class:`~integration_kit.playbook.kinds.webhook.sim.WebhookRun`), as Figures, never pyplot.

- receiving: what happened to the deliveries (accepted, duplicates suppressed, forged and replayed ones refused,
  dead letters and their replay), and the processing lag of each event over the run;
- sending: deliveries by the attempt number that succeeded, and how long each event took to be delivered, with
  the endpoint's outages shaded.

:func:`outcome_table` is the plotted numbers as a DataFrame, so they can be tabulated and tested.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from integration_kit.playbook.kinds.webhook.sim import WebhookRun
from integration_kit.playbook.kinds.webhook.spec import WebhookScenario

__all__ = ["outcome_table", "png", "webhook_dashboard"]

_IN_BARS = (
    ("accepted", "accepted", "tab:green"),
    ("duplicates_suppressed", "duplicates suppressed", "tab:blue"),
    ("rejected_forged", "forged refused", "tab:red"),
    ("rejected_replay", "stale replays refused", "tab:orange"),
    ("dead_letters", "dead letters", "tab:gray"),
    ("replayed", "replayed", "tab:purple"),
)
_OUT_BARS = (
    ("delivered", "delivered", "tab:green"),
    ("failed", "schedule exhausted", "tab:red"),
    ("disabled", "parked (endpoint disabled)", "tab:gray"),
    ("lost", "lost", "black"),
)


def outcome_table(runs: list[WebhookRun]) -> pd.DataFrame:
    """One row per scenario: the counters the charts plot, and the verdict."""
    rows = []
    for run in runs:
        bars = _IN_BARS if run.kind == "webhook-in" else _OUT_BARS
        row: dict[str, object] = {"scenario": run.scenario}
        row.update({label: int(run.counts.get(key, 0)) for key, label, _ in bars})
        row["lost"] = int(run.counts.get("lost", 0))
        row["objectives met"] = run.ok
        rows.append(row)
    return pd.DataFrame(rows).set_index("scenario") if rows else pd.DataFrame()


def webhook_dashboard(run: WebhookRun, scenario: WebhookScenario, target: str | Path | None = None) -> Figure:
    """Two panels for one scenario (see the module docstring); saved as a PNG when ``target`` is given."""
    figure = Figure(figsize=(11.0, 3.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    frame = run.frame()
    verdict = "objectives met" if run.ok else "OBJECTIVES MISSED"
    figure.suptitle(f"{run.integration} / {run.scenario}: {verdict}")
    if run.kind == "webhook-in":
        labels = [label for _, label, _ in _IN_BARS]
        left.barh(labels, [run.counts.get(k, 0) for k, _, _ in _IN_BARS], color=[c for _, _, c in _IN_BARS])
        left.invert_yaxis()
        left.set_xlabel("deliveries / events")
        if not frame.empty:
            right.scatter(frame["received"], frame["lag"], s=4, color="tab:blue")
        if scenario.handler_outage is not None:
            right.axvspan(*scenario.handler_outage, color="tab:red", alpha=0.12, label="handler outage")
            right.legend(loc="upper right")
        right.set_xlabel("received at (s)")
        right.set_ylabel("processing lag (s)")
    else:
        delivered = frame[frame["attempt"] > 0] if not frame.empty else frame
        counts = delivered["attempt"].value_counts().sort_index() if not delivered.empty else pd.Series(dtype=int)
        left.bar([str(a) for a in counts.index], counts.to_numpy(), color="tab:green")
        left.set_xlabel("delivered at attempt")
        left.set_ylabel("events")
        if not delivered.empty:
            right.scatter(delivered["created"] / 3600, (delivered["delivered"] - delivered["created"]) / 3600, s=4)
        for start, end in scenario.down:
            right.axvspan(start / 3600, end / 3600, color="tab:red", alpha=0.12, label="endpoint down")
        if scenario.down:
            right.legend(loc="upper right")
        right.set_xlabel("sent at (h)")
        right.set_ylabel("time to deliver (h)")
    if target is not None:
        figure.savefig(target, dpi=90)
    return figure


def png(figure: Figure) -> bytes:
    """``figure`` as PNG bytes, for ``IPython.display.Image`` (Figures built without pyplot do not display)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
