"""Policy tuning in virtual time: search retry, budget, breaker, timeout and limit settings with optuna over the
simulator.

:func:`tune` searches an integration's policies (:data:`~integration_kit.playbook.kinds.http.tune_space.SPACE`,
within the bounds of the spec's ``[tune]`` table) over all of its scenarios, each candidate on several seeds, in the
simulator, with a multi-objective, constrained optuna search that:

- minimises the **partner load** (attempts the partner received per call offered, the mean over the scenarios)
  and the **p99 latency** of completed calls (the worst scenario);
- treats the integration's **objectives** as constraints (``Trial.set_constraint``), judged exactly as the gate
  judges a run: each run's figures are the verdict's
  (:func:`~integration_kit.playbook.kinds.http.sim_figures.verdict_figures`, equal to what ``integration-kit run``
  measures) and :func:`~integration_kit.playbook.verdict.verdict.judge` checks them against
  ``spec.objectives_for(scenario)``, per phase and over the whole run, ``deadline_overruns`` included. A
  candidate is feasible when every check of every scenario passes on every seed.

**Sampler.** ``"tpe"`` (the default): optuna's multi-objective TPE with constraints (Ozaki et al., "Multiobjective
tree-structured Parzen estimator", JAIR 2022; c-TPE, Watanabe and Hutter, IJCAI 2023), multivariate, with a
constant liar for the batches; optuna's documentation recommends it for budgets of 100-1000 trials, which is the
tuner's. ``"nsga2"``: NSGA-II (Deb et al., IEEE TEC 2002), which needs far more trials: on the catalog spec as it
was before ``ignore_statuses`` (knife-edge budget, 429s counted by the breaker), 100 trials found 1 feasible
candidate with NSGA-II and 15 with TPE, and only TPE's recommendation held on the unseen seeds.

**Early stop.** A candidate is infeasible as soon as one run fails a check, so :func:`evaluate` stops there
(``stop_early``): the scenarios that failed most often so far run first, one seed after the other. The runs it
skips count as a fixed violation (:data:`UNRUN_PENALTY` per scenario) so that, among infeasible candidates,
NSGA-II prefers the ones that passed more. Every run is still seeded by (scenario, seed) alone, and the order is
fixed before each batch from the results told so far, so the search is deterministic for its ``seed`` whatever
the number of processes.

Candidates are asked in batches and evaluated by a pool of worker processes (one per core) that live for the whole
search and load the spec once each; the workers take single runs from a work queue
(:mod:`~integration_kit.playbook.tune.schedule`), so no core waits for a batch's slowest candidate. The spec's own
settings and the kit's defaults are the first two candidates. The **recommendation** is the feasible candidate of
least partner load (then p99) that also meets the objectives on seeds the search did not use (the best twelve are
checked, four at a time; failing those, the spec's own settings when they hold: no change); the :class:`TuneResult`
holds the Pareto front, the recommendation's settings and its verdict per scenario, and
:mod:`integration_kit.playbook.tune.spec_edit` turns the settings into a TOML diff against the spec file.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from integration_kit.errors import ConfigurationError
from integration_kit.http.config import ClientConfig
from integration_kit.playbook.kinds.http.spec import IntegrationSpec
from integration_kit.playbook.kinds.http.tune_space import Bounds
from integration_kit.playbook.tune.candidates import (
    CHECKED,
    OBJECTIVES,
    UNRUN_PENALTY,
    Candidate,
    ScenarioScore,
    Settings,
    choice_label,
    current_settings,
    evaluate,
    load_for_worker,
    search_bounds,
    start_worker,
    suggest,
)
from integration_kit.playbook.tune.schedule import evaluate_all

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "OBJECTIVES",
    "SAMPLERS",
    "UNRUN_PENALTY",
    "Candidate",
    "ScenarioScore",
    "TuneResult",
    "evaluate",
    "pareto_chart",
    "search_bounds",
    "tune",
]

#: How the workers start: from a clean server process, not forked from this one, whose threads (a gRPC channel's,
#: a notebook kernel's) a fork would copy mid-call (grpcio then skips its fork handlers and the child can crash:
#: the pool breaks). "spawn" where there is no forkserver (not POSIX).
_WORKER_START = multiprocessing.get_context(
    "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
)

#: The optuna samplers :func:`tune` offers (see the module docstring).
SAMPLERS: tuple[str, ...] = ("tpe", "nsga2")


@dataclass(frozen=True)
class TuneResult:
    """A finished search: every candidate, the Pareto front, the recommendation and its check on unseen seeds."""

    spec: IntegrationSpec
    seed: int
    candidates: tuple[Candidate, ...]
    front: tuple[Candidate, ...]
    recommended: Candidate | None  # None: no candidate met the objectives on the unseen seeds
    validation: Candidate | None  # the recommendation evaluated on the unseen seeds
    current: Candidate  # the spec's own settings, evaluated on the unseen seeds
    seeds: tuple[int, ...]
    validation_seeds: tuple[int, ...]
    bounds: Mapping[str, Bounds] = dataclasses.field(default_factory=dict)

    @property
    def changes(self) -> Settings:
        """The recommended settings that differ from the spec's (empty when none is recommended); choices as
        lists, ready for :func:`~integration_kit.playbook.tune.spec_edit.write_settings`."""
        if self.recommended is None:
            return {}
        now = current_settings(self.spec.client)
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in self.recommended.settings.items() if now.get(k) != v
        }

    def front_frame(self) -> pd.DataFrame:
        """The Pareto front as a table: partner load, p99, feasible, then each setting."""
        import pandas as pd

        rows = [
            {
                "candidate": c.number,
                "partner load": round(c.partner_load, 3),
                "p99 s": round(c.p99_latency, 3),
                "feasible": c.feasible,
                **{k: choice_label(v) for k, v in c.settings.items()},
            }
            for c in self.front
        ]
        return pd.DataFrame(rows).set_index("candidate") if rows else pd.DataFrame()

    def verdict_frame(self) -> pd.DataFrame:
        """The recommendation (else the spec as it is) on the unseen seeds: one row per scenario and objective,
        the worst measurement over the phases and seeds, with pass or fail."""
        import pandas as pd

        chosen = self.validation or self.current
        rows = []
        for scenario, score in chosen.scores.items():
            objectives = self.spec.objectives_for(scenario)
            for objective in CHECKED:
                rows.append(
                    {
                        "scenario": scenario,
                        "objective": objective,
                        "target": float(getattr(objectives, objective)),
                        "measured": round(score.measured[objective], 4),
                        "pass": score.violations[objective] <= 0,
                    }
                )
        return pd.DataFrame(rows)


def _pareto(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The feasible candidates no other feasible one beats on both partner load and p99 (all when none is)."""
    pool = [c for c in candidates if c.feasible] or list(candidates)
    front = [
        c
        for c in pool
        if not any(
            o.partner_load <= c.partner_load
            and o.p99_latency <= c.p99_latency
            and (o.partner_load < c.partner_load or o.p99_latency < c.p99_latency)
            for o in pool
        )
    ]
    return sorted(front, key=lambda c: (c.partner_load, c.p99_latency, c.number))


def _order(spec: IntegrationSpec, candidates: Sequence[Candidate]) -> tuple[str, ...]:
    """The scenarios, those that failed most often so far first (then the spec's order): fixed per batch."""
    names = [s.name for s in spec.scenarios]
    failed = {n: sum(1 for c in candidates if n in c.scores and not c.scores[n].passed) for n in names}
    return tuple(sorted(names, key=lambda n: (-failed[n], names.index(n))))


def tune(
    spec: IntegrationSpec | str,
    *,
    trials: int = 100,
    seed: int = 0,
    seeds: int = 2,
    validation_seeds: int = 3,
    bounds: Mapping[str, Sequence[Any]] | None = None,
    jobs: int | None = None,
    batch: int | None = None,
    stop_early: bool = True,
    sampler: str = "tpe",
    progress: Callable[[int, int], None] | None = None,
    storage: str | None = None,
    study_name: str | None = None,
) -> TuneResult:
    """Search ``spec``'s policies (a spec or a bundled name/path) with ``trials`` candidates (see the module).

    Each candidate runs every scenario on ``seeds`` seeds (``seed * 1000 + 1 ...``), stopping at its first
    failed run when ``stop_early``; the recommendation is checked on ``validation_seeds`` others, in full.
    ``bounds`` narrows the search beyond the spec's ``[tune]`` table (:func:`search_bounds`; a bad bound raises
    :class:`~integration_kit.errors.ConfigurationError`, a ValueError). ``jobs`` processes evaluate candidates
    (default: one per core), ``batch`` at a time (default: a fifth of the trials, from 4 to 12: one NSGA-II
    generation, or TPE's random start); ``sampler`` is ``"tpe"`` or ``"nsga2"`` (see the module);
    ``progress(done, total)`` is called after each batch. Deterministic for ``seed``. Needs optuna.

    ``storage`` (an SQLAlchemy URL, e.g. ``postgresql+psycopg://user@host/db``) keeps the study in optuna's RDB
    storage under ``study_name`` (default ``tune-{name}-{seed}``): several processes or hosts given the same
    storage and name work one study, each asking and telling its own candidates until the study holds
    ``trials``, and a search stopped midway resumes where it was. Each candidate's scores travel with its trial (a
    user attribute), so every worker's result covers the whole study. Shared, a search is no longer deterministic.
    optuna creates its tables on first use: make the storage once (``optuna.storages.RDBStorage(url)``, or start
    one worker) before starting several at the same instant.
    """
    import optuna

    if isinstance(spec, str):
        spec = load_for_worker(spec)
    limits = search_bounds(spec, bounds)
    search_seeds = tuple(seed * 1000 + 1 + i for i in range(seeds))
    unseen = tuple(seed * 1000 + 500 + i for i in range(validation_seeds))
    names = [s.name for s in spec.scenarios]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    population = max(4, min(12, trials // 5))
    if sampler not in SAMPLERS:
        raise ConfigurationError(f"tune: sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    chosen: optuna.samplers.BaseSampler = (
        optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True, n_startup_trials=population)
        if sampler == "tpe"
        else optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    )
    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=chosen,
        storage=storage,
        study_name=study_name or (f"tune-{spec.name}-{seed}" if storage is not None else None),
        load_if_exists=storage is not None,
    )
    current = current_settings(spec.client)
    defaults = current_settings(ClientConfig(name=spec.name, base_url="http://127.0.0.1"))
    for start in (current, defaults):  # the spec's settings and the kit's defaults first, within the bounds
        inside = {k: choice_label(v) for k, v in start.items() if k in limits and _within(v, limits[k])}
        study.enqueue_trial(inside, skip_if_exists=True)
    jobs = jobs or os.cpu_count() or 1
    batch = batch or population
    candidates: list[Candidate] = []
    seen: dict[tuple[tuple[str, Any], ...], Candidate] = {}  # settings -> result: the same settings, the same runs
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=_WORKER_START, initializer=start_worker, initargs=(spec,)
    ) as pool:
        while (done := len(candidates) if storage is None else len(_stored(study))) < trials:
            asked = [study.ask() for _ in range(min(batch, trials - done))]
            settings = [suggest(t, spec.client, limits) for t in asked]
            order = _order(spec, candidates)
            keys = [tuple(sorted(s.items())) for s in settings]
            fresh = {k: s for k, s in zip(keys, settings, strict=True) if k not in seen}  # samplers repeat themselves
            evaluated = evaluate_all(pool, jobs, list(fresh.values()), search_seeds, order, stop_early=stop_early)
            seen.update(zip(fresh, evaluated, strict=True))
            for trial, key in zip(asked, keys, strict=True):
                result = seen[key]
                candidate = dataclasses.replace(result, number=trial.number)
                candidates.append(candidate)
                for name, value in candidate.constraints(names).items():  # feasible ones rank first
                    trial.set_constraint(name, value)
                trial.set_user_attr(_CANDIDATE, _to_json(candidate))
                study.tell(trial, [candidate.partner_load, candidate.p99_latency])
            if progress is not None:
                progress(len(candidates), trials)
        if storage is not None:  # the whole study: this worker's candidates and everyone else's
            candidates = [_from_json(t.number, t.user_attrs[_CANDIDATE]) for t in _stored(study)]
        front = _pareto(candidates)
        recommended, validation, current_check = _recommend(pool, jobs, candidates, current, unseen, names)
        if recommended is None and candidates and candidates[0].settings == current and current_check.feasible:
            recommended, validation = candidates[0], current_check  # the spec as it is holds: no change
    return TuneResult(
        spec=spec,
        seed=seed,
        candidates=tuple(candidates),
        front=tuple(front),
        recommended=recommended,
        validation=validation,
        current=current_check,
        seeds=search_seeds,
        validation_seeds=unseen,
        bounds=limits,
    )


#: The user attribute of a stored trial that holds its candidate's scores (JSON).
_CANDIDATE = "integration_kit.candidate"


def _stored(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's finished trials that carry a candidate (every worker's, with a shared storage)."""
    return [t for t in study.get_trials(deepcopy=False) if _CANDIDATE in t.user_attrs and t.state.is_finished()]


def _to_json(candidate: Candidate) -> str:
    scores = {name: dataclasses.asdict(score) for name, score in candidate.scores.items()}
    return json.dumps({"settings": candidate.settings, "scores": scores, "complete": candidate.complete})


def _from_json(number: int, text: str) -> Candidate:
    data = json.loads(text)
    scores = {name: ScenarioScore(**score) for name, score in data["scores"].items()}
    return Candidate(number, data["settings"], scores, data["complete"])


#: Feasible candidates checked on the unseen seeds at once, and how many such rounds before giving up.
_SHORTLIST = 4
_ROUNDS = 3


def _recommend(
    pool: concurrent.futures.ProcessPoolExecutor,
    jobs: int,
    candidates: Sequence[Candidate],
    current: Settings,
    unseen: tuple[int, ...],
    names: Sequence[str],
) -> tuple[Candidate | None, Candidate | None, Candidate]:
    """The feasible candidate of least partner load (then p99) that meets every objective on the ``unseen`` seeds,
    its evaluation there (``(None, None)`` when none of the best few does), and the evaluation of the ``current``
    settings there. Checked a few at a time, in parallel (the current settings with the first few): the least
    loaded is the likeliest to sit on a constraint's edge and miss on another draw."""
    ranked = sorted((c for c in candidates if c.feasible), key=lambda c: (c.partner_load, c.p99_latency, c.number))
    current_check: Candidate | None = None
    for start in range(0, max(1, min(len(ranked), _SHORTLIST * _ROUNDS)), _SHORTLIST):
        shortlist = ranked[start : start + _SHORTLIST]
        wanted = (
            [c.settings for c in shortlist]
            if current_check is not None
            else [current, *(c.settings for c in shortlist)]
        )
        checks = evaluate_all(pool, jobs, wanted, unseen, names, stop_early=False)
        if current_check is None:
            current_check, checks = checks[0], checks[1:]
        for candidate, checked in zip(shortlist, checks, strict=True):
            if checked.feasible:
                return candidate, checked, current_check
    assert current_check is not None  # the loop runs at least once
    return None, None, current_check


def _within(value: Any, span: Bounds) -> bool:
    if isinstance(value, (tuple, str)):
        return value in span
    return bool(span[0] <= value <= span[1])


def pareto_chart(result: TuneResult) -> Figure:
    """Every candidate's partner load against its p99 (feasible ones coloured), the Pareto front as a line, the
    spec's settings and the recommendation marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    ok = [c for c in result.candidates if c.feasible]
    bad = [c for c in result.candidates if not c.feasible]
    ax.scatter([c.partner_load for c in bad], [c.p99_latency for c in bad], s=12, c="0.7", label="misses objectives")
    ax.scatter([c.partner_load for c in ok], [c.p99_latency for c in ok], s=16, c="tab:blue", label="meets objectives")
    ax.plot(
        [c.partner_load for c in result.front],
        [c.p99_latency for c in result.front],
        "-",
        c="tab:orange",
        label="Pareto front",
    )
    ax.scatter([result.current.partner_load], [result.current.p99_latency], marker="s", c="k", s=50, label="spec today")
    if result.recommended is not None:
        r = result.recommended
        ax.scatter([r.partner_load], [r.p99_latency], marker="*", c="tab:red", s=160, label="recommended")
    ax.set_xlabel("partner load (attempts received per call offered)")
    ax.set_ylabel("p99 latency of successful calls (s, worst scenario)")
    ax.set_title(f"{result.spec.name}: {len(result.candidates)} candidates", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig
