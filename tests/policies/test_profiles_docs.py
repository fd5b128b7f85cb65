"""The provider profiles table of ``docs/signals.md`` agrees with the bundled data: each profile's added retryable
statuses and its idempotency header and methods. (Apart from ``test_profiles_exact.py``, which the mutation
harness runs without the docs.)"""

from __future__ import annotations

from pathlib import Path

from integration_kit.policies.profiles import PROFILES

FIVE_XX = {500, 502, 503, 504}


def test_the_docs_table_names_each_profile_with_its_statuses_and_idempotency() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "signals.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in text.splitlines() if line.startswith("| `")}
    for name, profile in PROFILES.items():
        row = rows[name]
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        statuses = cells[2]
        for status in sorted(profile.retry_on_status - FIVE_XX):
            assert str(status) in statuses, name
        assert ("5xx" in statuses) == (profile.retry_on_status >= FIVE_XX), name
        header = profile.idempotency_header
        assert (cells[3] == "none") == (header is None), name
        if header is not None:
            assert f"`{header}` on {', '.join(sorted(profile.idempotency_methods))}" in cells[3]
