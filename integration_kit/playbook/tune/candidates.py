"""The candidates of a policy search: the settings searched, how a candidate's settings apply to a client, and how a
candidate is evaluated in the simulator and scored against the integration's objectives.

:func:`evaluate` plays every scenario of a spec with a candidate's settings on several seeds, judges each run as
the gate does (:func:`~integration_kit.playbook.kinds.http.judge.judge` on the verdict's own figures), and scores it
(:class:`ScenarioScore`: the worst relative miss per objective, the partner's load, the p99), stopping at the first
scenario that fails; :class:`Candidate` holds the result. :mod:`~integration_kit.playbook.tune.study` runs the
search over them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from integration_kit.http.config import ClientConfig
from integration_kit.playbook.kinds.http.judge import judge
from integration_kit.playbook.kinds.http.sim_figures import verdict_figures
from integration_kit.playbook.kinds.http.spec import IntegrationSpec, load_integration
from integration_kit.playbook.kinds.http.tune_space import SPACE, Bounds, narrow
from integration_kit.playbook.verdict.verdict import Check
from integration_kit.sim.simulate import simulate

if TYPE_CHECKING:
    import optuna

__all__ = [
    "CHECKED",
    "OBJECTIVES",
    "UNRUN_PENALTY",
    "Candidate",
    "Run",
    "ScenarioScore",
    "Settings",
    "choice_label",
    "combine",
    "current_settings",
    "evaluate",
    "evaluate_in_worker",
    "load_for_worker",
    "plan",
    "run",
    "run_in_worker",
    "search_bounds",
    "start_worker",
    "suggest",
]

#: The objectives a candidate is judged on, in the verdict's order (``deadline_overruns`` is always 0).
OBJECTIVES: tuple[str, ...] = ("success_rate", "p99_latency", "amplification", "outage_load", "recovery_time")
CHECKED = (*OBJECTIVES, "deadline_overruns")
#: The violation counted for each objective of a scenario that an early stop left unrun.
UNRUN_PENALTY = 0.25
#: Violations are relative misses; a never-recovering run would give infinity, which ranks nothing: cap them.
_MAX_VIOLATION = 10.0

Settings = dict[str, Any]  # "policy.field" -> value


# --- settings and the search space -----------------------------------------------------------------------------


def search_bounds(
    spec: IntegrationSpec, bounds: Mapping[str, Sequence[Any]] | None = None, *, where: str = "bounds"
) -> dict[str, Bounds]:
    """The bounds searched for ``spec``: its ``[tune]`` table's (:attr:`IntegrationSpec.tune_bounds`, the kit's
    where it names none), then ``bounds`` (``{"retry.max_attempts": (2, 4)}``, each within the kit's) on top.
    Raises :class:`~integration_kit.errors.ConfigurationError` naming ``where.<setting>`` for a bad bound."""
    found = dict(spec.tune_bounds) or narrow(spec.client, None)
    if bounds:
        checked = narrow(spec.client, bounds, where=where)
        found.update({key: checked[key] for key in bounds})
    return found


def current_settings(config: ClientConfig) -> Settings:
    """The searchable settings as ``config`` has them (choices as tuples, like the space's)."""
    found: Settings = {}
    for dim in SPACE:
        holder = getattr(config, dim.policy)
        value = None if holder is None else getattr(holder, dim.field)
        if value is not None:
            found[dim.key] = tuple(sorted(value)) if isinstance(value, frozenset) else value
    return found


def _apply(config: ClientConfig, settings: Mapping[str, Any]) -> ClientConfig:
    """``config`` with ``settings`` applied (raises ValueError when they do not make a valid policy)."""
    changes: dict[str, Any] = {}
    for policy in ("retry", "budget", "breaker", "timeouts", "limits"):
        holder = getattr(config, policy)
        given = {k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith(f"{policy}.")}
        if holder is not None and given:
            changes[policy] = dataclasses.replace(holder, **given)
    return dataclasses.replace(config, **changes)


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def choice_label(choice: Any) -> Any:
    """An optuna-storable stand-in for a choice (optuna keeps None, bools, numbers and strings only)."""
    return str(list(choice)) if isinstance(choice, tuple) else choice


def suggest(trial: optuna.Trial, config: ClientConfig, bounds: Mapping[str, Bounds]) -> Settings:
    """The settings optuna's ``trial`` asks for within ``bounds``, kept valid for ``config``."""
    settings: Settings = {}
    for dim in SPACE:
        if dim.key not in bounds:
            continue
        span = bounds[dim.key]
        if dim.kind == "choice":
            labels = {choice_label(c): c for c in span}
            settings[dim.key] = labels[trial.suggest_categorical(dim.key, list(labels))]
        elif dim.kind == "int":
            settings[dim.key] = trial.suggest_int(dim.key, int(span[0]), int(span[1]), log=dim.log)
        else:
            value = trial.suggest_float(dim.key, span[0], span[1], log=dim.log)
            settings[dim.key] = min(max(_round(value), span[0]), span[1])
    return _keep_valid(settings, config)


def _keep_valid(settings: Settings, config: ClientConfig) -> Settings:
    """``settings`` made valid (max_delay >= base_delay, minimum_calls <= a count window, the open wait's cap >=
    the wait) and sensible: no backoff or read timeout longer than the deadline (the checklist's "deadline
    shorter than the retry schedule")."""
    if config.deadline is not None:
        for key in ("retry.max_delay", "retry.base_delay", "timeouts.read"):
            if key in settings:
                settings[key] = min(settings[key], _round(config.deadline))
    if "retry.max_delay" in settings and "retry.base_delay" in settings:
        settings["retry.max_delay"] = max(settings["retry.max_delay"], settings["retry.base_delay"])
    breaker = config.breaker
    if breaker is not None:
        if breaker.window_type == "count" and "breaker.minimum_calls" in settings and "breaker.window_size" in settings:
            settings["breaker.minimum_calls"] = min(settings["breaker.minimum_calls"], settings["breaker.window_size"])
        wait = settings.get("breaker.wait_in_open", breaker.wait_in_open)
        if breaker.max_wait_in_open < wait:
            settings["breaker.max_wait_in_open"] = wait
    return settings


# --- evaluation (runs in worker processes) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScenarioScore:
    """One scenario's runs of a candidate: the worst check of each objective over the scopes and seeds run.

    ``measured`` holds, per objective, the measurement of its worst check; ``violations`` how far that check
    misses (relative to the target for a maximum, absolute for ``success_rate``; <= 0: met). ``partner_load`` is
    the attempts the partner received per call offered (mean over the seeds), ``p99_latency`` the verdict's p99
    (worst seed, seconds); ``seeds`` how many seeds ran (fewer when the candidate stopped early).
    """

    partner_load: float
    p99_latency: float
    measured: Mapping[str, float]
    violations: Mapping[str, float]
    seeds: int

    @property
    def passed(self) -> bool:
        """Whether every objective was met on every seed run."""
        return all(v <= 0 for v in self.violations.values())


@dataclass(frozen=True, slots=True)
class Candidate:
    """One evaluated set of settings: its score per scenario run and whether every run was made."""

    number: int
    settings: Settings
    scores: Mapping[str, ScenarioScore]
    complete: bool  # False: stopped early, some scenarios or seeds were not run

    @property
    def feasible(self) -> bool:
        """Whether every scenario ran on every seed and met every objective."""
        return self.complete and all(s.passed for s in self.scores.values())

    @property
    def partner_load(self) -> float:
        """Attempts the partner received per call offered, the mean over the scenarios run."""
        return sum(s.partner_load for s in self.scores.values()) / max(1, len(self.scores))

    @property
    def p99_latency(self) -> float:
        """The p99 latency of completed calls in the worst scenario run (seconds)."""
        return max((s.p99_latency for s in self.scores.values()), default=0.0)

    def constraints(self, scenarios: Iterable[str]) -> dict[str, float]:
        """NSGA-II's constraint values, one per scenario and objective (<= 0: met; an unrun scenario counts
        :data:`UNRUN_PENALTY` per objective)."""
        found = {}
        for scenario in scenarios:
            score = self.scores.get(scenario)
            for objective in CHECKED:
                value = UNRUN_PENALTY if score is None else score.violations[objective]
                found[f"{scenario}/{objective}"] = value
        return found


def _violation(check: Check) -> float:
    """How far ``check`` misses its target (<= 0: met), relative to the target for a maximum, capped."""
    margin = check.margin
    if math.isinf(margin):
        return -_MAX_VIOLATION if margin > 0 else _MAX_VIOLATION
    miss = -margin if check.minimum else -margin / (check.target if check.target > 0 else 1.0)
    return max(-_MAX_VIOLATION, min(_MAX_VIOLATION, miss))


def _score(checks_per_seed: Sequence[list[Check]], loads: Sequence[float], p99s: Sequence[float]) -> ScenarioScore:
    measured: dict[str, float] = {}
    violations: dict[str, float] = {}
    for objective in CHECKED:
        worst = None
        for checks in checks_per_seed:
            for check in checks:
                if check.objective == objective and (worst is None or check.margin < worst.margin):
                    worst = check
        measured[objective] = math.nan if worst is None else worst.measured
        violations[objective] = -_MAX_VIOLATION if worst is None else _violation(worst)
    finite = [p for p in p99s if not math.isnan(p)]
    return ScenarioScore(
        partner_load=sum(loads) / len(loads),
        p99_latency=max(finite, default=0.0),
        measured=measured,
        violations=violations,
        seeds=len(checks_per_seed),
    )


@dataclass(frozen=True, slots=True)
class Run:
    """One simulated run of a candidate on one scenario and seed: the gate's checks, the partner's load (attempts
    received per call offered) and the verdict's p99 (seconds; NaN without a completed call)."""

    checks: tuple[Check, ...]
    load: float
    p99: float

    @property
    def passed(self) -> bool:
        """Whether every check of the run passed."""
        return all(c.passed for c in self.checks)


def plan(names: Sequence[str], seeds: Sequence[int]) -> list[tuple[str, int]]:
    """The runs of a candidate in the order they are judged: each scenario of ``names`` on each of ``seeds``."""
    return [(name, seed) for name in names for seed in seeds]


def run(spec: IntegrationSpec, settings: Mapping[str, Any], scenario: str, seed: int) -> Run:
    """Simulate ``scenario`` of ``spec`` with ``settings`` applied on ``seed``, at the spec's exercise load, and
    judge it as the gate does (``spec.objectives_for(scenario)``). Seeded by ``(scenario, seed)`` alone."""
    config = _apply(spec.client, settings)
    exercise = spec.exercise
    result = simulate(
        spec.scenario(scenario),
        config=config,
        rate=exercise.rate,
        workers=exercise.workers,
        duration=exercise.duration,
        method=exercise.method,
        seed=seed,
    )
    figures = verdict_figures(result, deadline=config.deadline)
    checks = judge(figures, spec.objectives_for(scenario))
    load = sum(p.received for p in figures.phases) / figures.calls if figures.calls else 0.0
    return Run(tuple(checks), load, figures.p99_latency)


def combine(
    settings: Mapping[str, Any],
    names: Sequence[str],
    seeds: Sequence[int],
    runs: Mapping[int, Run],
    stop_early: bool,
) -> Candidate | None:
    """The candidate that ``runs`` (index in :func:`plan` order -> run) make, or ``None`` while a run it needs is
    missing: every run in order, up to and including the first failed one with ``stop_early``. Runs beyond
    that are ignored, so the result depends on the runs alone, never on the order they were made in."""
    scores: dict[str, ScenarioScore] = {}
    index = 0
    for name in names:
        made: list[Run] = []
        for _ in seeds:
            found = runs.get(index)
            if found is None:
                return None
            index += 1
            made.append(found)
            if stop_early and not found.passed:
                break
        scores[name] = score = _score([list(r.checks) for r in made], [r.load for r in made], [r.p99 for r in made])
        if stop_early and not score.passed:
            break
    complete = len(scores) == len(names) and all(s.seeds == len(seeds) for s in scores.values())
    return Candidate(-1, dict(settings), scores, complete)


def evaluate(
    spec: IntegrationSpec,
    settings: Mapping[str, Any],
    seeds: Iterable[int],
    *,
    order: Sequence[str] | None = None,
    stop_early: bool = False,
) -> Candidate:
    """Simulate every scenario of ``spec`` with ``settings`` applied, on each seed, at the spec's exercise load,
    and judge each run as the gate does (:func:`run`), one run after the other.

    ``order`` gives the scenario names in the order to run them (default: the spec's). With ``stop_early`` the
    evaluation ends at the first run that fails a check (the candidate is infeasible whatever the others do).
    Returns a :class:`Candidate` (``number`` -1); :mod:`~integration_kit.playbook.tune.schedule` makes the same
    runs in parallel and gets the same candidate.
    """
    seeds = tuple(seeds)
    names = list(order) if order is not None else [s.name for s in spec.scenarios]
    runs: dict[int, Run] = {}
    for index, (name, seed) in enumerate(plan(names, seeds)):
        runs[index] = run(spec, settings, name, seed)
        if (candidate := combine(settings, names, seeds, runs, stop_early)) is not None:
            return candidate
    raise AssertionError("combine() holds a candidate once every run is made")  # pragma: no cover


_worker_spec: list[IntegrationSpec] = []  # the spec a worker process evaluates, set once by start_worker


def load_for_worker(source: str) -> IntegrationSpec:
    """The HTTP spec named ``source`` (a name in the current project, or a ``.toml`` path)."""
    return load_integration(Path(source) if source.endswith(".toml") else source)


def start_worker(spec: IntegrationSpec) -> None:
    """The pool's initializer: the spec arrives once per worker process, not with every task."""
    _worker_spec[:] = [spec]


def evaluate_in_worker(
    settings: Settings, seeds: tuple[int, ...], order: tuple[str, ...] | None, stop_early: bool
) -> Candidate:
    """:func:`evaluate` on the spec :func:`start_worker` gave this worker process."""
    return evaluate(_worker_spec[0], settings, seeds, order=order, stop_early=stop_early)


def run_in_worker(settings: Settings, scenario: str, seed: int) -> Run:
    """:func:`run` on the spec :func:`start_worker` gave this worker process."""
    return run(_worker_spec[0], settings, scenario, seed)


# --- the search ----------------------------------------------------------------------------------------------------
