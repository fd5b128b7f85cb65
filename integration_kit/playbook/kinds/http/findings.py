"""Findings: rules over a scenario run that say in one sentence what happened and what to change.

Each rule is a function from a :class:`RunContext` (the run's events, the partner's view, the scenario, the
figures, the objectives and the client's policies) to a :class:`Finding` or ``None``; :data:`RULES` lists them in
the order the report shows them and :func:`find` runs them all. Every finding carries the figure that triggered
it, so the reader can check it against the charts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from integration_kit.http.config import ClientConfig
from integration_kit.playbook.kinds.http.figures import PhaseFigures, ScenarioFigures, calls_table
from integration_kit.playbook.kinds.http.objectives import Objectives
from integration_kit.playbook.verdict.verdict import Finding
from integration_kit.sim.scenarios import Scenario

__all__ = [
    "RULES",
    "Finding",
    "RunContext",
    "amplification_above_objective",
    "breaker_never_opened_in_outage",
    "breaker_open_after_recovery",
    "budget_refused_retries",
    "deadline_shorter_than_schedule",
    "find",
    "p99_at_timeout",
    "retry_after_capped",
]

#: A breaker still open this many seconds after the partner recovered is worth a finding.
SLOW_CLOSE = 10.0
#: A p99 within this fraction of a timeout "equals" it.
TIMEOUT_MATCH = 0.03


@dataclass(frozen=True)
class RunContext:
    """What a rule may look at: one scenario run and the spec's settings for it."""

    scenario: Scenario
    events: pd.DataFrame
    server: pd.DataFrame | None
    figures: ScenarioFigures
    objectives: Objectives
    config: ClientConfig


Rule = Callable[[RunContext], "Finding | None"]


def budget_refused_retries(ctx: RunContext) -> Finding | None:
    """The retry budget refused retries while success fell below the objective; say which budget would have let
    them through.

    gRPC A6 throttling spends a token per failed attempt and earns ``token_ratio`` per success, so it keeps
    retrying at an attempt failure rate ``f`` only when ``token_ratio >= f / (1 - f)``.
    """
    worst = _worst_success_phase(ctx)
    if worst is None or worst.budget_refusals < max(1, 0.01 * worst.calls):
        return None
    budget = ctx.config.budget
    failure = _attempt_failure_rate(ctx.events, worst)
    needed = math.ceil(failure / (1 - failure) / 0.05) * 0.05 if failure < 1 else math.inf
    if budget is not None and needed <= budget.token_ratio:
        return None  # the budget was not what held success down
    advice = (
        f"a token_ratio of {needed:.2f} (attempts failed at {failure:.0%} there) would have allowed them"
        if math.isfinite(needed)
        else "no budget can fund retries when every attempt fails"
    )
    current = f"max_tokens={budget.max_tokens:g}, token_ratio={budget.token_ratio:g}" if budget else "no budget"
    return Finding(
        "budget_refused_retries",
        ctx.scenario.name,
        f"The retry budget ({current}) refused {worst.budget_refusals:,} retries during {worst.window.label!r} "
        f"while success fell to {worst.success_rate:.1%} (objective {ctx.objectives.success_rate:.0%}); {advice}.",
        f"budget_refusals = {worst.budget_refusals}",
    )


def breaker_open_after_recovery(ctx: RunContext) -> Finding | None:
    """The breaker stayed open (or half-open) long after the partner recovered (the end of a bad phase and of the
    next phase's ramp back); name the waits and their growth."""
    transitions = _transitions(ctx.events)
    breaker = ctx.config.breaker
    if transitions.empty or breaker is None:
        return None
    worst: tuple[float, PhaseFigures] | None = None
    for phase in ctx.figures.phases:
        window = phase.window
        if not (window.bad and window.followed):
            continue
        following = ctx.scenario.phases[window.index + 1] if window.index + 1 < len(ctx.scenario.phases) else None
        recovered = window.end + (following.ramp if following is not None else 0.0)  # after the ramp back
        before = transitions[transitions["time"] <= recovered]
        if before.empty or before["new"].iloc[-1] == "closed":
            continue
        closed = transitions[(transitions["time"] > recovered) & (transitions["new"] == "closed")]
        run_end = float(ctx.events["time"].max())
        stayed = (float(closed["time"].iloc[0]) if not closed.empty else run_end) - recovered
        if stayed >= SLOW_CLOSE and (worst is None or stayed > worst[0]):
            worst = (stayed, phase)
    if worst is None:
        return None
    stayed, phase = worst
    opened = transitions[(transitions["time"] >= phase.window.start) & (transitions["new"] == "open")]
    waits = []
    for t in opened["time"]:
        after = transitions[(transitions["time"] > t) & (transitions["old"] == "open")]
        if not after.empty:
            waits.append(float(after["time"].iloc[0]) - float(t))
    shown = ", ".join(f"{w:.0f}" for w in waits[:6]) + (" ..." if len(waits) > 6 else "")
    growth = (
        f"wait_in_open {breaker.wait_in_open:g} s growing x{breaker.wait_in_open_multiplier:g} "
        f"up to {breaker.max_wait_in_open:g} s"
        if breaker.wait_in_open_multiplier > 1
        else f"wait_in_open {breaker.wait_in_open:g} s"
    )
    return Finding(
        "breaker_open_after_recovery",
        ctx.scenario.name,
        f"The breaker stayed open {stayed:.0f} s after the partner recovered from {phase.window.label!r} "
        f"(waits {shown} s: {growth}); "
        f"a shorter wait_in_open or a smaller multiplier lets probes find the recovered partner sooner.",
        f"open_after_recovery = {stayed:.1f} s",
    )


def p99_at_timeout(ctx: RunContext) -> Finding | None:
    """The p99 latency sits at a timeout (the read timeout times a number of attempts, or the deadline): calls
    hang until it."""
    p99 = ctx.figures.p99_latency
    read = ctx.config.timeouts.read
    if math.isnan(p99) or read is None:
        return None
    enough = 0.005 * max(ctx.figures.calls, 1)  # a p99 near a timeout by coincidence (Retry-After waits) is no hang
    candidates = []
    if _attempt_timeouts(ctx.events) >= enough:
        candidates.append((f"the read timeout ({read:g} s)", read))
        candidates += [
            (f"{k} read timeouts ({k} x {read:g} s)", k * read) for k in range(2, ctx.config.retry.max_attempts + 1)
        ]
    deadline = ctx.config.deadline
    if deadline is not None and _calls_longer_than(ctx.events, deadline * (1 - TIMEOUT_MATCH)) >= enough:
        candidates.append((f"the deadline ({deadline:g} s)", deadline))
    for label, value in candidates:
        if abs(p99 - value) <= TIMEOUT_MATCH * value:
            return Finding(
                "p99_at_timeout",
                ctx.scenario.name,
                f"p99 latency is {p99:.2f} s, {label}: the slowest calls hang until the timeout ends them; a read "
                f"timeout nearer the partner's real p99 (or a fallback after the first timeout) ends them sooner.",
                f"p99_latency = {p99:.3f} s",
            )
    return None


def retry_after_capped(ctx: RunContext) -> Finding | None:
    """Retry-After hints were cut to ``max_retry_after``, or calls ended on a 429 because the hint did not fit."""
    retry = ctx.config.retry
    hinted = ctx.events[(ctx.events["event"] == "retry_scheduled") & (ctx.events["reason"] == "retry_after")]
    capped = int((hinted["delay"].astype(float) >= retry.max_retry_after - 1e-9).sum())
    calls = calls_table(ctx.events)
    ended = int((~calls["ok"] & (pd.to_numeric(calls["status"], errors="coerce") == 429)).sum())
    if not capped and not ended:
        return None
    parts = []
    if capped:
        parts.append(f"{capped:,} Retry-After hints were cut to max_retry_after ({retry.max_retry_after:g} s)")
    if ended:
        parts.append(f"{ended:,} calls ended on a 429 the deadline ({ctx.config.deadline} s) could not wait out")
    return Finding(
        "retry_after_capped",
        ctx.scenario.name,
        " and ".join(parts) + "; keep under the partner's quota with [limits] rate, or serve the fallback at once "
        "instead of retrying into the throttle.",
        f"capped = {capped}, ended_on_429 = {ended}",
    )


def breaker_never_opened_in_outage(ctx: RunContext) -> Finding | None:
    """An outage phase passed without the breaker opening: every call kept hitting the failing partner."""
    transitions = _transitions(ctx.events)
    for phase in ctx.figures.phases:
        window = phase.window
        if window.kind != "outage":
            continue
        before = transitions[transitions["time"] <= window.start]
        already_open = not before.empty and before["new"].iloc[-1] != "closed"
        inside = transitions[(transitions["time"] > window.start) & (transitions["time"] < window.end)]
        if already_open or (inside["new"] == "open").any():
            continue
        if ctx.config.breaker is None:
            advice = "configure a [breaker] so calls fail fast and the partner can recover"
        else:
            advice = (
                f"lower minimum_calls ({ctx.config.breaker.minimum_calls}) or failure_rate_threshold "
                f"({ctx.config.breaker.failure_rate_threshold:g}) so it trips"
            )
        return Finding(
            "breaker_never_opened_in_outage",
            ctx.scenario.name,
            f"The breaker never opened during the outage {window.label!r} ({window.end - window.start:.0f} s): "
            f"the partner received {phase.load:.2f} attempts per call offered; {advice}.",
            f"outage_load = {phase.load:.2f}",
        )
    return None


def amplification_above_objective(ctx: RunContext) -> Finding | None:
    """Retries multiplied the load beyond the objective during a bad phase (or the whole run)."""
    limit = ctx.objectives.amplification
    worst = max(
        (p for p in ctx.figures.phases if p.window.bad and not math.isnan(p.amplification)),
        key=lambda p: p.amplification,
        default=None,
    )
    where, value = ("the whole run", ctx.figures.amplification)
    if worst is not None and not worst.amplification <= value:
        where, value = (repr(worst.window.label), worst.amplification)
    if math.isnan(value) or value <= limit:
        return None
    retry = ctx.config.retry
    return Finding(
        "amplification_above_objective",
        ctx.scenario.name,
        f"Retries multiplied the load by {value:.2f} during {where} (objective at most {limit:g} attempts per call); "
        f"fewer attempts (max_attempts {retry.max_attempts}) or a tighter retry budget keep it down.",
        f"amplification = {value:.3f}",
    )


def deadline_shorter_than_schedule(ctx: RunContext) -> Finding | None:
    """``max_delay`` or ``max_retry_after`` is longer than the deadline: such waits can never be used."""
    deadline = ctx.config.deadline
    retry = ctx.config.retry
    if deadline is None:
        return None
    long = [
        (n, v) for n, v in (("max_delay", retry.max_delay), ("max_retry_after", retry.max_retry_after)) if v >= deadline
    ]
    if not long:
        return None
    names = " and ".join(f"{n} ({v:g} s)" for n, v in long)
    return Finding(
        "deadline_shorter_than_schedule",
        "",
        f"The deadline ({deadline:g} s) is shorter than {names}: a retry that waits that long can never run, so "
        f"such calls fail at once; set them below the deadline minus the read timeout.",
        ", ".join(f"{n} = {v:g} s" for n, v in long),
    )


#: Every rule, in the order the report lists findings.
RULES: tuple[Rule, ...] = (
    budget_refused_retries,
    breaker_open_after_recovery,
    p99_at_timeout,
    retry_after_capped,
    breaker_never_opened_in_outage,
    amplification_above_objective,
    deadline_shorter_than_schedule,
)


def find(ctx: RunContext, rules: tuple[Rule, ...] = RULES) -> list[Finding]:
    """Every finding ``rules`` make for one run, in rule order."""
    return [finding for rule in rules if (finding := rule(ctx)) is not None]


# -- helpers -------------------------------------------------------------------------------------------------------


def _worst_success_phase(ctx: RunContext) -> PhaseFigures | None:
    """Of the non-outage phases whose success fell below the objective, the one with the most budget refusals."""
    failing = [
        p
        for p in ctx.figures.phases
        if p.window.kind != "outage" and p.calls and p.success_rate < ctx.objectives.success_rate
    ]
    return max(failing, key=lambda p: (p.budget_refusals, -p.success_rate), default=None)


def _attempt_failure_rate(events: pd.DataFrame, phase: PhaseFigures) -> float:
    """The share of attempts that failed during ``phase``."""
    finished = events[(events["event"] == "attempt_finished")]
    times = finished["time"].astype(float)
    inside = finished[(times >= phase.window.start) & (times < phase.window.end)]
    if inside.empty:
        return 0.0
    return float(inside["verdict"].astype(str).isin(["transient", "failure"]).mean())


def _attempt_timeouts(events: pd.DataFrame) -> int:
    """Attempts that ended in a timeout (read, write, connect or pool)."""
    outcomes = events.loc[events["event"] == "attempt_finished", "outcome"].astype(str)
    return int(outcomes.str.endswith("timeout").sum())


def _calls_longer_than(events: pd.DataFrame, seconds: float) -> int:
    """Calls that took at least ``seconds``."""
    durations = events.loc[events["event"] == "call_finished", "duration"].astype(float)
    return int((durations >= seconds).sum())


def _transitions(events: pd.DataFrame) -> pd.DataFrame:
    """The breaker transitions, in time order, with ``time``, ``old`` and ``new``."""
    rows = events[events["event"] == "breaker_transition"]
    return pd.DataFrame(
        {"time": rows["time"].astype(float), "old": rows["old"].astype(str), "new": rows["new"].astype(str)}
    ).sort_values("time", kind="stable")
