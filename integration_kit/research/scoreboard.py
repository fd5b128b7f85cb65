"""The scoreboard's figures: outcomes of one live run, their median and spread, the targets, tables and charts.

``bench/scoreboard.py`` plays each scenario over real sockets through integration_kit and its Python peers and
hands every run to :func:`run_metrics`; ``notebooks/guides/scoreboard.ipynb`` reads the saved JSON back. All times
are scenario seconds (the upstream may be played faster than real time).

Definitions, per run:

- *bad phases*: the scenario's phases whose latency or error mix differ from the first phase's (a ramp back to
  the first phase's settings is recovery, not a bad phase); see :func:`bad_phases`.
- ``success_rate``: calls that returned a 2xx / logical calls offered. ``success_after``: the same over the calls
  that arrived after the last bad phase ended (``None`` when the run ends in a bad phase).
- ``amplification``: requests the partner received (its own count, ``GET /stats``; refused connections are not
  received, as in the simulator) per logical call; ``amplification_bad``: the same over the bad phases' seconds,
  which for an outage is the partner's load relative to the offered load.
- ``p50``/``p99``/``max_latency``: over calls that were attempted (calls rejected fast are counted apart, in
  ``rejected``), from the call's start to its end.
- ``first_success``: seconds from the end of a bad phase to the arrival of the first call after it that
  succeeded; ``recovery_95``: seconds from the end of a bad phase to the start of the first
  :data:`RECOVERY_WINDOW`-second window of arrivals whose success rate is at least 95%, so from then on callers
  see 95% success (``inf``, shown "never": not within the run). The worst bad phase counts.
- ``deadline_overruns``: calls that took longer than the deadline the policy was given (or, for a policy without
  one, the caller's deadline), plus :data:`OVERRUN_SLACK`.
- ``early_retries``: requests sent for a call before the Retry-After of that call's last 429 had passed, as the
  partner counted them.
- ``abandoned`` (measured by the load, not here): calls that could not start within the caller's deadline
  because every worker of the load was busy, as when a policy serialises calls; they count as failed.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from integration_kit.sim.scenarios import Phase, Scenario

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "METRICS",
    "OVERRUN_SLACK",
    "RECOVERY_WINDOW",
    "RESULT",
    "TIE_LOAD",
    "TIE_SUCCESS",
    "CallRecord",
    "bad_phases",
    "check_targets",
    "dominating",
    "load_result",
    "markdown_report",
    "plot_scenario",
    "run_metrics",
    "scenario_table",
    "summarize",
]

#: The committed result of the last full run (``python3 dev.py bench bench/scoreboard.py`` writes it).
RESULT = Path(__file__).resolve().parents[2] / "bench" / "results" / "scoreboard.json"

#: Width (scenario seconds) of the sliding window of arrivals that must reach 95% success for ``recovery_95``.
RECOVERY_WINDOW = 5.0
#: Step (scenario seconds) of that window.
RECOVERY_STEP = 0.5
#: A call counts as a deadline overrun past ``deadline + OVERRUN_SLACK`` (scenario seconds): the final attempt's
#: answer may land a few milliseconds after the deadline fires.
OVERRUN_SLACK = 0.25

#: Each metric: its column title, how to print it, and whether more is better (``None``: neither).
METRICS: dict[str, tuple[str, str, bool | None]] = {
    "success_rate": ("success", "pct", True),
    "success_after": ("success after", "pct", True),
    "amplification": ("partner load /call", "x", False),
    "amplification_bad": ("load in bad phase", "x", False),
    "p50": ("p50 s", "s", False),
    "p99": ("p99 s", "s", False),
    "max_latency": ("max s", "s", False),
    "rejected": ("rejected fast", "n", None),
    "first_success": ("1st ok after s", "s", False),
    "recovery_95": ("95% ok after s", "s", False),
    "deadline_overruns": ("overruns", "n", False),
    "early_retries": ("early retries", "n", False),
    "abandoned": ("abandoned", "n", False),
}


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One logical call as the caller saw it: when it started and ended (scenario seconds), and how it ended."""

    start: float
    end: float
    ok: bool
    rejected: bool = False


def bad_phases(scenario: Scenario) -> list[tuple[str, float, float]]:
    """``(name, start, end)`` of each phase whose latency or errors differ from the first phase's."""
    first = scenario.phases[0]
    spans: list[tuple[str, float, float]] = []
    start = 0.0
    for phase in scenario.phases:
        end = start + phase.duration
        if not _same_conditions(phase, first):
            spans.append((phase.name, start, end))
        start = end
    return spans


def _same_conditions(a: Phase, b: Phase) -> bool:
    return a.latency == b.latency and a.errors == b.errors


def run_metrics(
    calls: Sequence[CallRecord],
    *,
    scenario: Scenario,
    received: int,
    received_per_second: Mapping[int, int],
    early_retries: int,
    deadline: float,
    duration: float | None = None,
) -> dict[str, float | None]:
    """The figures of one run (see the module's docstring); ``duration`` defaults to the scenario's."""
    length = scenario.duration if duration is None else duration
    offered = len(calls)
    bad = [(s, e) for _, s, e in bad_phases(scenario) if s < length]
    attempted = sorted(c.end - c.start for c in calls if not c.rejected)
    in_bad = [c for c in calls if any(s <= c.start < e for s, e in bad)]
    bad_seconds = {sec for s, e in bad for sec in range(math.floor(s), math.ceil(min(e, length)))}
    received_bad = sum(n for sec, n in received_per_second.items() if int(sec) in bad_seconds)
    ended = [e for _, e in bad if e < length]
    after = [c for c in calls if ended and c.start >= ended[-1]]
    firsts = [_first_success(calls, e) for e in ended]
    recoveries = [_recovery(calls, e, length) for e in ended]
    return {
        "calls": float(offered),
        "success_rate": _ratio(sum(c.ok for c in calls), offered),
        "success_after": _ratio(sum(c.ok for c in after), len(after)) if after else None,
        "amplification": _ratio(received, offered),
        "amplification_bad": _ratio(received_bad, len(in_bad)) if in_bad else None,
        "p50": _quantile(attempted, 0.50),
        "p99": _quantile(attempted, 0.99),
        "max_latency": attempted[-1] if attempted else None,
        "rejected": float(sum(c.rejected for c in calls)),
        "first_success": _worst(firsts),
        "recovery_95": _worst(recoveries),
        "deadline_overruns": float(sum(c.end - c.start > deadline + OVERRUN_SLACK for c in calls)),
        "early_retries": float(early_retries),
    }


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _quantile(ordered: Sequence[float], q: float) -> float | None:
    """The nearest-rank quantile of sorted values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _worst(values: Sequence[float | None]) -> float | None:
    """The largest value; ``inf`` when one never happened (rendered as "never")."""
    if not values:
        return None
    return math.inf if any(v is None for v in values) else max(v for v in values if v is not None)


def _first_success(calls: Sequence[CallRecord], since: float) -> float | None:
    starts = [c.start for c in calls if c.ok and c.start >= since]
    return min(starts) - since if starts else None


def _recovery(calls: Sequence[CallRecord], since: float, length: float) -> float | None:
    starts = sorted((c.start, c.ok) for c in calls if c.start >= since)
    t = since
    while t + RECOVERY_WINDOW <= length + 1e-9:
        window = [ok for s, ok in starts if t <= s < t + RECOVERY_WINDOW]
        if window and sum(window) >= 0.95 * len(window):
            return t - since
        t += RECOVERY_STEP
    return None


def summarize(runs: Sequence[Mapping[str, float | None]]) -> dict[str, dict[str, float | None]]:
    """Median, min and max of each metric over repetitions (``None`` values are left out; all ``None``: None)."""
    keys = dict.fromkeys(k for run in runs for k in run)
    summary: dict[str, dict[str, float | None]] = {}
    for key in keys:
        values = [v for run in runs if (v := run.get(key)) is not None]
        summary[key] = {
            "median": statistics.median(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
        }
    return summary


#: Differences smaller than these are ties when one policy is said to dominate another: half a point of success
#: rate, and 0.02 requests per call of partner load (run-to-run noise on a shared machine is about that size).
TIE_SUCCESS = 0.005
TIE_LOAD = 0.02


def dominating(summary: Mapping[str, Mapping[str, Any]], ours: str) -> list[str]:
    """The policies at least as good as ``ours`` on both median success and median partner load, and better on one.

    "At least as good" and "better" allow for noise: differences within :data:`TIE_SUCCESS` and :data:`TIE_LOAD`
    are ties.
    """
    mine = summary[ours]
    s0, a0 = mine["success_rate"]["median"], mine["amplification"]["median"]
    found = []
    for name, figures in summary.items():
        s, a = figures["success_rate"]["median"], figures["amplification"]["median"]
        if name == ours or None in (s, a, s0, a0):
            continue
        as_good = s >= s0 - TIE_SUCCESS and a <= a0 + TIE_LOAD
        if as_good and (s > s0 + TIE_SUCCESS or a < a0 - TIE_LOAD):
            found.append(name)
    return found


def _cell(figure: Mapping[str, float | None], kind: str) -> str:
    median, low, high = figure["median"], figure["min"], figure["max"]
    if median is None:
        return "-"

    def fmt(v: float | None) -> str:
        if v is None:
            return "-"
        if math.isinf(v):
            return "never"
        if kind == "pct":
            return f"{100 * v:.1f}%"
        if kind == "x":
            return f"{v:.2f}x"
        if kind == "s":
            return f"{v:.2f}"
        return f"{v:.0f}"

    if low == high:
        return fmt(median)
    return f"{fmt(median)} ({fmt(low)}-{fmt(high)})"


def scenario_table(summary: Mapping[str, Mapping[str, Mapping[str, float | None]]]) -> str:
    """A Markdown table: one row per policy, one column per metric, each cell "median (min-max)"."""
    titles = [title for title, _, _ in METRICS.values()]
    lines = ["| policy | " + " | ".join(titles) + " |", "|---|" + "---:|" * len(titles)]
    for name, figures in summary.items():
        cells = [
            _cell(figures.get(key, {"median": None, "min": None, "max": None}), kind)
            for key, (_, kind, _) in METRICS.items()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_result(path: str | Path | None = None) -> dict[str, Any]:
    """A scoreboard result from its JSON file (default :data:`RESULT`); "never" figures come back as ``inf``."""
    data: dict[str, Any] = json.loads(Path(path or RESULT).read_text())
    return data


def markdown_report(result: Mapping[str, Any], *, charts: str | None = None) -> str:
    """The whole scoreboard in Markdown: per scenario its table (and chart, when ``charts`` is the folder or URL
    prefix holding ``scoreboard-<scenario>.png``), then the settings, the overhead and the targets."""
    meta = result.get("meta", {})
    parts = [
        f"{meta.get('repetitions', '?')} repetition(s), time scale {meta.get('time_scale', '?')}, "
        f"{meta.get('rate', '?')} logical calls per scenario second, measured {meta.get('date', '?')} on "
        f"{meta.get('cpus', '?')} CPUs (python {meta.get('python', '?')}) by `{meta.get('command', '?')}`. "
        "Each cell: median (min-max) over the repetitions."
    ]
    for name, data in result["scenarios"].items():
        parts.append(f"### {name}\n\n{data.get('description', '')}")
        if charts is not None:
            parts.append(f"![{name}: success vs partner load]({charts.rstrip('/')}/scoreboard-{name}.png)")
        parts.append(scenario_table(data["summary"]))
    lines = []
    for name, policy in result["policies"].items():
        lines.append(f"- **{name}**: " + ", ".join(f"`{k}={v}`" for k, v in policy["settings"].items()))
    parts.append("### Settings (durations in scenario seconds)\n\n" + "\n".join(lines))
    if "overhead" in result:
        parts.append("### Overhead\n\n```\n" + result["overhead"]["text"] + "\n```")
    rows = ["| target | figure | met |", "|---|---|---|"]
    rows += [f"| {r['target']} | {r['figure']} | {'yes' if r['met'] else '**no**'} |" for r in result["targets"]]
    parts.append("### Targets\n\n" + "\n".join(rows))
    return "\n\n".join(parts) + "\n"


def check_targets(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against a scoreboard result: one row (target, figure, met) per target.

    Figures are medians over the repetitions, for integration_kit's defaults unless the row names a policy. A
    target whose scenario or figure is missing from the result is left out.
    """
    board = _Board(result)
    rows = board.outage() + board.brownout() + board.rate_limited() + board.retry_storm()
    rows += board.everywhere() + _overhead_rows(result.get("overhead") or {})
    return rows


class _Board:
    """Reads medians out of a scoreboard result for :func:`check_targets`."""

    def __init__(self, result: Mapping[str, Any]) -> None:
        self.ours: list[str] = list(result["ours"])
        self.default = self.ours[0]
        self.scenarios: Mapping[str, Any] = result["scenarios"]
        settings = result.get("policies", {}).get(self.default, {}).get("settings", {})
        self.wait = float(settings.get("breaker.wait_in_open", 30.0))

    def figure(self, scenario: str, metric: str, policy: str | None = None) -> float | None:
        summary = self.scenarios.get(scenario, {}).get("summary", {})
        value = summary.get(policy or self.default, {}).get(metric, {}).get("median")
        return None if value is None else float(value)

    def outage(self) -> list[dict[str, Any]]:
        name = "outage-and-recovery"
        if name not in self.scenarios:
            return []
        load, after = self.figure(name, "amplification_bad"), self.figure(name, "success_after")
        recovery = self.figure(name, "recovery_95")
        return [
            _row("outage: partner load during the outage <= 0.1x offered", _fmt(load, "x"), _at_most(load, 0.1)),
            _row("outage: success after recovery >= 98%", _fmt(after, "pct"), _at_least(after, 0.98)),
            _row(
                f"outage: 95% success within wait_in_open + 1 s ({self.wait + 1:g} s)",
                _fmt(recovery, "s"),
                _at_most(recovery, self.wait + 1),
            ),
        ]

    def brownout(self) -> list[dict[str, Any]]:
        if "brownout" not in self.scenarios:
            return []
        success, load = self.figure("brownout", "success_rate"), self.figure("brownout", "amplification_bad")
        return [
            _row(
                "brownout 30%: success >= 97% with amplification <= 1.5x",
                f"{_fmt(success, 'pct')} at {_fmt(load, 'x')}",
                _at_least(success, 0.97) and _at_most(load, 1.5),
            )
        ]

    def rate_limited(self) -> list[dict[str, Any]]:
        if "rate-limited" not in self.scenarios:
            return []
        rows = []
        for policy in self.ours:
            early = self.figure("rate-limited", "early_retries", policy)
            rows.append(
                _row(f"rate-limited: zero requests before Retry-After ({policy})", _fmt(early, "n"), early == 0)
            )
        return rows

    def retry_storm(self) -> list[dict[str, Any]]:
        if "retry-storm" not in self.scenarios:
            return []
        summary = self.scenarios["retry-storm"]["summary"]
        never = [
            p
            for p, f in summary.items()
            if p not in self.ours and f.get("recovery_95", {}).get("median") in (None, math.inf)
        ]
        recovery = self.figure("retry-storm", "recovery_95")
        return [
            _row(
                f"retry storm: the kit recovers after the trigger (peers that never do: {', '.join(never) or 'none'})",
                _fmt(recovery, "s"),
                recovery is not None and not math.isinf(recovery),
            )
        ]

    def everywhere(self) -> list[dict[str, Any]]:
        rows = []
        for policy in self.ours:
            total = sum(self.figure(name, "deadline_overruns", policy) or 0.0 for name in self.scenarios)
            rows.append(_row(f"everywhere: no deadline overrun ({policy})", f"{total:.0f}", total == 0))
        for name, data in self.scenarios.items():
            if self.default in data["summary"]:
                better = dominating(data["summary"], self.default)
                target = f"{name}: no peer dominates {self.default} on success and partner load"
                rows.append(_row(target, ", ".join(better) or "none", not better))
        return rows


def _overhead_rows(overhead: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, target, limit, higher, unit in (
        ("sequential_ratio", "overhead: sequential loopback GET <= 1.03x raw httpx", 1.03, False, "x"),
        ("threads_ratio", "overhead: 16 threads >= 0.95x raw throughput", 0.95, True, "x"),
        ("engine_us", "overhead: engine happy path <= 3 us per call", 3.0, False, " us"),
    ):
        if (value := overhead.get(key)) is not None:
            met = value >= limit if higher else value <= limit
            rows.append(_row(target, f"{value:.2f}{unit}", met))
    return rows


def _row(target: str, figure: str, met: bool) -> dict[str, Any]:
    return {"target": target, "figure": figure, "met": bool(met)}


def _at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def _at_least(value: float | None, limit: float) -> bool:
    return value is not None and value >= limit


def _fmt(value: float | None, kind: str) -> str:
    return _cell({"median": value, "min": value, "max": value}, kind)


def plot_scenario(result: Mapping[str, Any], scenario: str, ax: Any = None) -> Figure:
    """Success rate against partner load per logical call, one point per policy (median, min-max bars).

    integration_kit's points are stars and are labelled on the chart; every policy is in the legend, outside the
    axes so that it never covers a point.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        fig.subplots_adjust(left=0.08, right=0.7, bottom=0.12, top=0.9)
    else:
        fig = ax.figure
    summary = result["scenarios"][scenario]["summary"]
    ours = set(result["ours"])
    for name, figures in summary.items():
        s, a = figures["success_rate"], figures["amplification"]
        if s["median"] is None or a["median"] is None:
            continue
        x, y = a["median"], 100 * s["median"]
        mine = name in ours
        ax.errorbar(
            x,
            y,
            xerr=[[x - a["min"]], [a["max"] - x]],
            yerr=[[y - 100 * s["min"]], [100 * s["max"] - y]],
            fmt="*" if mine else "o",
            markersize=14 if mine else 7,
            capsize=3,
            label=name,
        )
        if mine:
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(8, -12), fontsize=8)
    ax.set_xlabel("partner load: requests received per logical call")
    ax.set_ylabel("success rate (%)")
    ax.set_title(f"{scenario}: success vs partner load (up and left is better)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return fig
