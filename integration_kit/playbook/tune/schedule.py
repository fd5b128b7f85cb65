"""Candidates evaluated run by run on a pool of worker processes, so that no core waits for a batch's slowest one.

A candidate is a sequence of runs (:func:`~integration_kit.playbook.tune.candidates.plan`: each scenario on each
seed). :func:`evaluate_all` keeps every worker busy with single runs, taken from a work queue rather than one whole
candidate per worker:

- a candidate with no run in flight gets its next run first (in the batch's order), so every candidate moves on
  and an early stop (its first failed run) is seen as soon as it can be;
- when every open candidate already has a run in flight and a worker is idle (the tail of a batch, where one long,
  feasible candidate would otherwise run alone on one core), that worker takes the next run of the candidate with
  the most runs left. The run may prove unneeded (an earlier one fails); its result is then ignored;
- one run more than there are workers is kept queued (:data:`AHEAD`), so a worker that finishes starts its next
  run at once instead of waiting for this process to be scheduled and hand it one (on a loaded machine, that wait
  left the workers idle about half the time).

Each run is seeded by its ``(scenario, seed)`` alone and a candidate is built from its runs in plan order
(:func:`~integration_kit.playbook.tune.candidates.combine`), so the result is the same as
:func:`~integration_kit.playbook.tune.candidates.evaluate` one run after the other, whatever the number of
processes or the order the runs finish in.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence

from integration_kit.playbook.tune.candidates import Candidate, Run, Settings, combine, plan, run_in_worker

__all__ = ["AHEAD", "evaluate_all"]

#: Runs kept queued beyond one per worker.
AHEAD = 1


def evaluate_all(
    pool: concurrent.futures.Executor,
    jobs: int,
    settings: Sequence[Settings],
    seeds: Sequence[int],
    names: Sequence[str],
    *,
    stop_early: bool,
) -> list[Candidate]:
    """Every candidate of ``settings``, evaluated on ``pool`` (``jobs`` worker processes, given the spec by
    :func:`~integration_kit.playbook.tune.candidates.start_worker`) with ``jobs + AHEAD`` runs in flight: the
    scenarios ``names`` in that order, each on ``seeds``, stopping a candidate at its first failed run when
    ``stop_early``. Returns the candidates in the order of ``settings`` (``number`` -1); a run's exception is
    raised here."""
    steps = plan(names, seeds)
    runs: list[dict[int, Run]] = [{} for _ in settings]
    sent = [0] * len(settings)  # the next run of each candidate to send
    flying_of = [0] * len(settings)
    done: list[Candidate | None] = [None] * len(settings)
    flying: dict[concurrent.futures.Future[Run], tuple[int, int]] = {}

    def next_candidate() -> int | None:
        open_ = [i for i, d in enumerate(done) if d is None and sent[i] < len(steps)]
        idle = [i for i in open_ if flying_of[i] == 0]
        if idle:
            return idle[0]
        return max(open_, key=lambda i: (len(steps) - sent[i], -i), default=None)

    try:
        while any(d is None for d in done):
            while len(flying) < jobs + AHEAD and (i := next_candidate()) is not None:
                name, seed = steps[sent[i]]
                flying[pool.submit(run_in_worker, settings[i], name, seed)] = (i, sent[i])
                sent[i] += 1
                flying_of[i] += 1
            finished, _ = concurrent.futures.wait(flying, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                i, index = flying.pop(future)
                flying_of[i] -= 1
                if done[i] is None:
                    runs[i][index] = future.result()
                    done[i] = combine(settings[i], names, seeds, runs[i], stop_early)
    finally:
        for future in flying:  # runs no candidate needs any more: drop those not started
            future.cancel()
    return [d for d in done if d is not None]
