"""The guides in notebooks/guides run and still show the outputs committed with them (nbval, in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GUIDES = Path(__file__).resolve().parent.parent / "notebooks" / "guides"


@pytest.mark.slow
@pytest.mark.timeout(360)
def test_guides_pass_nbval() -> None:
    assert sorted(GUIDES.glob("*.ipynb")), f"no guides under {GUIDES}"
    completed = subprocess.run(
        # A notebook's cells run in order: pytest-randomly (on for the suite) must not shuffle them.
        [sys.executable, "-m", "pytest", "--nbval", str(GUIDES), "-p", "no:cacheprovider", "-p", "no:randomly", "-q"],
        cwd=GUIDES.parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
