"""Issue 12's three targets for a set of policies, in the simulator: the table of ``docs/defaults.md``.

Run by ``bench/defaults.py`` and checked by ``tests/policies/test_defaults.py``: a random brownout keeps its retries, an
outage is not amplified and recovers, a retry storm dies out after its trigger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from integration_kit.events import CallFinished
from integration_kit.playbook.kinds.http.sim_figures import bad_phases, scenario_figures
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy, RetryPolicy
from integration_kit.sim.scenarios import load_scenario
from integration_kit.sim.simulate import DEFAULT_BREAKER, SimulationResult, simulate

__all__ = ["TargetRow", "default_targets", "targets_of"]


@dataclass(frozen=True, slots=True)
class TargetRow:
    """One policy's figures on issue 12's three targets (worst over the seeds; see ``bench/defaults.py``)."""

    brownout_success: float
    brownout_attempts: float
    outage_load: float
    outage_recovered_success: float
    storm_recovered: bool
    storm_recovery: float


def _calls(result: SimulationResult, since: float = -math.inf, until: float = math.inf) -> list[CallFinished]:
    """The calls of ``result`` that started in ``[since, until)``."""
    return [
        e
        for e in result.recorder.of(CallFinished)
        if isinstance(e, CallFinished) and since <= e.time - e.duration < until
    ]


def _success_from(result: SimulationResult, since: float) -> float:
    calls = _calls(result, since)
    return sum(e.ok for e in calls) / len(calls) if calls else 1.0


def targets_of(policies: Mapping[str, Any], seeds: tuple[int, ...] = (1, 2, 3)) -> TargetRow:
    """Issue 12's three targets for one set of simulator policy arguments (``retry``, ``budget``, ``breaker``)."""
    brownout, outage, storm = (load_scenario(n) for n in ("brownout", "outage-and-recovery", "retry-storm"))
    breaker = policies.get("breaker", DEFAULT_BREAKER)
    wait = breaker.wait_in_open if isinstance(breaker, BreakerPolicy) else 0.0
    healthy_again = sum(p.duration for p in outage.phases[:2]) + outage.phases[2].ramp
    rows = []
    for seed in seeds:
        brown = simulate(brownout, seed=seed, **policies)
        b = scenario_figures(brown)
        start, end, _ = bad_phases(brownout)[0]
        in_phase = _calls(brown, start, end)
        o = simulate(outage, seed=seed, **policies)
        s = scenario_figures(simulate(storm, seed=seed, **policies))
        rows.append(
            TargetRow(
                brownout_success=sum(e.ok for e in in_phase) / len(in_phase),
                brownout_attempts=b.amplification,
                outage_load=scenario_figures(o).outage_load,
                outage_recovered_success=_success_from(o, healthy_again + wait + 1),
                storm_recovered=not s.overloaded_at_end,
                storm_recovery=s.recovery_time,
            )
        )
    return TargetRow(
        brownout_success=min(r.brownout_success for r in rows),
        brownout_attempts=max(r.brownout_attempts for r in rows),
        outage_load=max(r.outage_load for r in rows),
        outage_recovered_success=min(r.outage_recovered_success for r in rows),
        storm_recovered=all(r.storm_recovered for r in rows),
        storm_recovery=max(r.storm_recovery for r in rows),
    )


def default_targets(seeds: tuple[int, ...] = (1, 2, 3)) -> dict[str, TargetRow]:
    """The three targets for the naive policy, the defaults before issue 12 (A6's example budget) and today's."""
    return {
        "naive": targets_of({"retry": RetryPolicy(max_attempts=3), "budget": None, "breaker": None}, seeds),
        "old": targets_of({"budget": BudgetPolicy(max_tokens=10, token_ratio=0.1)}, seeds),
        "new": targets_of({}, seeds),
    }
