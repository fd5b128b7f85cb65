"""The tuner's work queue (``playbook/tune/schedule.py``): candidates evaluated run by run on a pool give exactly
what :func:`evaluate` gives one run after the other, early stop included, and an idle worker takes a run of a
candidate already in flight (no core waits for the slowest candidate)."""

from __future__ import annotations

import concurrent.futures
import math
import threading
from pathlib import Path
from typing import Any

import pytest
from test_tune import SPEC

from integration_kit.playbook.kinds.http.spec import load_integration
from integration_kit.playbook.tune.candidates import Candidate, Run, combine, evaluate, start_worker
from integration_kit.playbook.tune.schedule import AHEAD, evaluate_all
from integration_kit.playbook.verdict.verdict import Check

SETTINGS: list[dict[str, Any]] = [{"retry.max_attempts": 1}, {"retry.max_attempts": 3}, {"retry.max_attempts": 2}]
SEEDS = (1, 2, 3)


@pytest.fixture
def spec(tmp_path: Path) -> Any:
    path = tmp_path / "tiny.toml"
    path.write_text(SPEC)
    return load_integration(path)


def _figures(candidate: Candidate) -> tuple[Any, ...]:
    """Everything but the NaN measurements (nothing to measure), which are never equal to themselves."""
    measured = [{k: v for k, v in s.measured.items() if not math.isnan(v)} for s in candidate.scores.values()]
    scores = [(n, s.partner_load, s.p99_latency, dict(s.violations), s.seeds) for n, s in candidate.scores.items()]
    return candidate.settings, candidate.complete, scores, measured


@pytest.mark.parametrize("stop_early", [True, False])
def test_the_pool_gives_what_one_run_after_the_other_gives(spec: Any, stop_early: bool) -> None:
    names = [s.name for s in spec.scenarios]
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, initializer=start_worker, initargs=(spec,)) as pool:
        pooled = evaluate_all(pool, 2, SETTINGS, SEEDS, names, stop_early=stop_early)
    alone = [evaluate(spec, s, SEEDS, order=names, stop_early=stop_early) for s in SETTINGS]
    assert [_figures(c) for c in pooled] == [_figures(c) for c in alone]
    assert pooled[1].feasible
    assert not pooled[0].feasible
    assert pooled[0].complete is not stop_early  # stopped at its first failed run
    if stop_early:
        assert pooled[0].scores["blip"].seeds == 1


class Watched(concurrent.futures.ThreadPoolExecutor):
    """A pool in this process that counts the runs in flight at once. No run starts before ``gate`` runs were
    submitted (or 10 s passed), so what the scheduler queues ahead does not depend on how fast a thread runs."""

    def __init__(self, gate: int) -> None:
        super().__init__(max_workers=2)
        self.flying = 0
        self.most = 0
        self.sent = 0
        self.gate = gate
        self.opened = threading.Event()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        self.flying += 1
        self.sent += 1
        self.most = max(self.most, self.flying)
        if self.sent >= self.gate:
            self.opened.set()
        future = super().submit(self._gated, fn, *args, **kwargs)
        future.add_done_callback(self._landed)
        return future

    def _gated(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.opened.wait(10)
        return fn(*args, **kwargs)

    def _landed(self, future: concurrent.futures.Future[Any]) -> None:
        self.flying -= 1


def test_an_idle_worker_takes_the_next_run_of_a_candidate_in_flight(spec: Any) -> None:
    start_worker(spec)  # the thread pool's workers share this process's spec
    with Watched(gate=2 + AHEAD) as pool:
        (alone,) = evaluate_all(pool, 2, [SETTINGS[1]], SEEDS, ["blip"], stop_early=True)
    assert pool.most == 2 + AHEAD  # one candidate: a run per worker, and one queued
    assert pool.sent == len(SEEDS)
    assert alone.feasible


def test_a_candidate_waits_for_the_runs_it_needs_and_ignores_those_past_its_first_failure() -> None:
    missed = Check(scenario="a", objective="success_rate", scope="whole run", target=0.99, measured=0.5, minimum=True)
    passed, failed = Run((), 1.0, 0.1), Run((missed,), 2.0, 0.2)
    assert not failed.passed
    assert combine({}, ["a", "b"], (1, 2), {0: passed, 2: passed}, stop_early=True) is None  # run 1 missing
    stopped = combine({}, ["a", "b"], (1, 2), {0: passed, 1: failed, 3: passed}, stop_early=True)
    assert stopped is not None
    assert list(stopped.scores) == ["a"]  # "b" ran speculatively: ignored
    assert stopped.scores["a"].seeds == 2
    assert not stopped.complete
    assert combine({}, ["a", "b"], (1, 2), {0: passed, 1: failed, 3: passed}, stop_early=False) is None
