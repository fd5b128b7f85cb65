"""``tune(storage=...)``: two worker processes work one optuna study in PostgreSQL, and a search resumes.

Needs a PostgreSQL server (``IK_POSTGRES_DSN``, default the local one); the test works in a schema of its own,
created here and dropped afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_server import DSN, postgres_or_skip
from test_tune import SPEC

from integration_kit.playbook.tune import tune

WORKER = """
import json, sys
from integration_kit.playbook.tune import tune
result = tune(sys.argv[1], trials=int(sys.argv[3]), seeds=1, validation_seeds=1, jobs=1, batch=2,
              storage=sys.argv[2], study_name="shared")
print(json.dumps(sorted(c.number for c in result.candidates)))
"""


@pytest.fixture
def storage() -> Iterator[str]:
    """An SQLAlchemy URL whose tables live in a schema of the test's own, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    pytest.importorskip("sqlalchemy")
    postgres_or_skip()
    schema = f"ik_tune_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(DSN, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        url = DSN.replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(DSN, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_workers_share_one_study_and_a_search_resumes(storage: str, tmp_path: Path) -> None:
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC, encoding="utf-8")
    # optuna creates its tables on first use: two processes doing it at the same instant collide, so the study's
    # storage is made once before the workers start (as the docstring of tune() says).
    optuna = pytest.importorskip("optuna")
    optuna.storages.RDBStorage(storage)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), *sys.path])}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(spec), storage, "8"], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    seen = []
    for worker in workers:
        out, _ = worker.communicate(timeout=200)
        assert worker.returncode == 0
        seen.append(json.loads(out.strip().splitlines()[-1]))
    # Each worker's result covers the whole study: its own trials and the other's.
    assert all(len(numbers) >= 8 for numbers in seen)
    numbers = set(seen[0]) | set(seen[1])
    assert numbers == set(range(len(numbers)))  # one study: its trial numbers, none lost
    resumed = tune(
        str(spec),
        trials=len(numbers) + 2,
        seeds=1,
        validation_seeds=1,
        jobs=1,
        batch=2,
        storage=storage,
        study_name="shared",
    )
    assert {c.number for c in resumed.candidates} >= numbers  # the earlier trials are kept, not run again
    assert len(resumed.candidates) >= len(numbers) + 2
