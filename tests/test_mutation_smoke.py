"""A fixed set of mutants, each applied to a copy of the package, must each make its tests fail.

Three survived the suite once (issue 17) and five are the kind the core tests always caught (two more of the
original ten became equivalent, see below); the last four survived the first full mutmut sweeps of the shared
breaker, the engine's drivers and the idempotency middleware; issue 29 added one per I/O module it swept
(``smoke_mutants.py``). Each mutant is one exact text replacement in one
module: if the code moves on and the text is gone, the test fails and says so, so the mutant is updated rather
than silently skipped. The unmutated copy must pass the same tests, so a mutant "caught" by a broken copy does not
count. ``python3 dev.py mutate`` runs the full mutmut sweep; this is the smoke test that keeps the suite's teeth
between sweeps (about a minute).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from smoke_mutants import IO_MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[1]


# Two mutants of the first set became equivalent when the hardening (issue 10) added a second mechanism: the sync
# client's attempt deadline is now held at every socket operation (http/deadline.py) *and* checked as the body
# is read (Body.check_deadline) *and* each phase's timeout is clipped to it (Exchange.prepare). Removing any one
# of them is caught by nothing, since the others still hold the deadline ("body_read_deadline_removed",
# "attempt_timeout_not_clipped_to_deadline"); tests/faults/test_matrix.py proves the deadline held as a whole.
MUTANTS = [
    # -- the four that survived before issue 17 ----------------------------------------------------------------
    Mutant(
        "engine_deadline_at_attempt_start_ge_to_gt",
        "engine/call.py",
        "if remaining <= 0:",
        "if remaining < 0:",
        ("tests/engine/test_engine_edges.py",),
    ),
    Mutant(
        "set_cookie_stored_for_replay",
        "server/middleware.py",
        '"server", "set-cookie", "transfer-encoding"',
        '"server", "transfer-encoding"',
        ("tests/server/test_idempotency_callers.py::test_set_cookie_and_date_are_not_stored_for_replay",),
    ),
    Mutant(
        "retry_after_floor_removed",
        "policies/retry.py",
        "delay = max(0.0, outcome.retry_after)",
        "delay = outcome.retry_after",
        ("tests/engine/test_engine_edges.py",),
    ),
    # -- six the suite always caught -------------------------------------------------------------------------
    Mutant(
        "half_open_probe_limit_off_by_one",
        "policies/breaker/breaker.py",
        "core.probes_in_flight < self._policy.half_open_max_calls",
        "core.probes_in_flight <= self._policy.half_open_max_calls",
        ("tests/policies/test_breaker.py",),
    ),
    Mutant(
        "budget_threshold_ge",
        "policies/budget.py",
        "if tokens > self._threshold or not self._enabled:",
        "if tokens >= self._threshold or not self._enabled:",
        ("tests/policies/test_budget.py",),
    ),
    Mutant(
        "post_without_key_retried",
        "policies/retry.py",
        "if not safe_to_repeat and outcome.may_have_been_processed:",
        "if False:",
        ("tests/policies/test_retry.py", "tests/engine/test_engine.py"),
    ),
    Mutant(
        "retry_scheduled_up_to_the_deadline",
        "policies/retry.py",
        'elapsed + delay >= deadline:\n        return RetryDecision(False, delay, "deadline")',
        'elapsed + delay > deadline:\n        return RetryDecision(False, delay, "deadline")',
        ("tests/engine/test_engine_edges.py",),
    ),
    Mutant(
        "truncated_upload_executed",
        "server/middleware.py",
        "            raise _Disconnected\n",
        "            break\n",
        ("tests/server/test_idempotency_callers.py::test_a_truncated_upload_is_never_executed_and_its_retry_runs",),
    ),
    # -- four the first full sweeps found (each survived until a test was written for it) -------------------------
    Mutant(
        "shared_breaker_loses_the_half_open_race_and_forgets_the_winner",
        "policies/breaker/shared.py",
        "            raw = store.get(self._key)\n            record = SharedRecord.decode(raw)",
        "            raw = None\n            record = SharedRecord.decode(raw)",
        ("tests/policies/test_shared_breaker.py::test_a_process_that_loses_the_move_to_half_open_follows_the_winner",),
    ),
    Mutant(
        "driver_refusal_not_thrown_into_the_engine",
        "engine/actions.py",
        "outcome = send(action)\n                except IntegrationError as exc:",
        "outcome = send(action)\n                except ZeroDivisionError as exc:",
        ("tests/engine/test_engine_events.py",),
    ),
    Mutant(
        "idempotent_response_of_exactly_the_limit_not_stored",
        "server/middleware.py",
        "if self._size <= self._limit else None",
        "if self._size < self._limit else None",
        ("tests/server/test_idempotency_callers.py::test_bodies_exactly_at_the_limit_are_executed_and_stored",),
    ),
    Mutant(
        "store_lost_after_the_claim_costs_the_client_its_answer",
        "server/middleware.py",
        "with contextlib.suppress(StoreUnavailable):  # unstored, the claim lapses",
        "with contextlib.suppress():  # unstored, the claim lapses",
        ("tests/server/test_idempotency_callers.py::test_a_store_lost_after_the_claim_costs_the_client_nothing",),
    ),
    # -- one per module of the I/O layers swept by issue 29 (smoke_mutants.py) -----------------------------------
    *IO_MUTANTS,
]


def _run_tests(package_parent: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Run ``tests`` importing ``integration_kit`` from ``package_parent`` (the copy comes first on sys.path)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    command += ["-p", "no:nbval", "-p", "no:cov", "-p", "no:hypothesispytest"]  # start-up is most of each run
    command += ["--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), "-o", "addopts=", "--timeout", "60"]
    command += [str(ROOT / t) for t in tests]
    env = {**os.environ, "PYTHONPATH": str(package_parent), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        command, cwd=package_parent, env=env, capture_output=True, text=True, check=False, timeout=240
    )


def _copy(tmp_path: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "integration_kit", tmp_path / "integration_kit", ignore=skip)
    return tmp_path


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_copy_passes_unmutated_and_is_the_one_imported(tmp_path: Path) -> None:
    parent = _copy(tmp_path)
    probe = subprocess.run(
        [sys.executable, "-c", "import integration_kit; print(integration_kit.__file__)"],
        cwd=parent,
        env={**os.environ, "PYTHONPATH": str(parent)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(probe.stdout.strip()).is_relative_to(parent)
    tests = tuple(sorted({t for m in MUTANTS for t in m.tests}))
    done = _run_tests(parent, tests)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_the_mutant_is_caught(tmp_path: Path, mutant: Mutant) -> None:
    parent = _copy(tmp_path)
    path = parent / "integration_kit" / mutant.module
    source = path.read_text()
    assert source.count(mutant.original) == 1, f"{mutant.name}: the code changed; update the mutant"
    path.write_text(source.replace(mutant.original, mutant.mutated))
    done = _run_tests(parent, mutant.tests)
    assert done.returncode == 1, f"{mutant.name} survived:\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
