"""Gap detection to the letter (pure logic): a known start (zero and negative included) makes the first number
judged against it, a duplicate or a stale number never moves the last one delivered, a gap of any size is a gap
and moves it, and the tracker shows its state."""

from __future__ import annotations

import pytest

from integration_kit.websocket import SequenceTracker, SeqVerdict


@pytest.mark.parametrize(
    ("start", "seq", "verdict", "last"),
    [
        (0, 1, SeqVerdict.NEXT, 1),
        (0, 0, SeqVerdict.DUPLICATE, 0),
        (0, 2, SeqVerdict.GAP, 2),
        (-1, 0, SeqVerdict.NEXT, 0),
        (-5, -5, SeqVerdict.DUPLICATE, -5),
        (41, 42, SeqVerdict.NEXT, 42),
        (41, 43, SeqVerdict.GAP, 43),
        (41, 40, SeqVerdict.DUPLICATE, 41),
        (None, 0, SeqVerdict.FIRST, 0),
        (None, -3, SeqVerdict.FIRST, -3),
        (None, 1000, SeqVerdict.FIRST, 1000),
    ],
)
def test_the_first_number_is_judged_against_a_known_start(
    start: int | None, seq: int, verdict: SeqVerdict, last: int
) -> None:
    tracker = SequenceTracker(start)
    assert tracker.last == start
    assert tracker.observe(seq) is verdict
    assert tracker.last == last


def test_duplicates_never_move_the_last_number_and_gaps_do() -> None:
    tracker = SequenceTracker()
    seen = [tracker.observe(n) for n in (10, 11, 11, 10, 3, 12, 15, 14, 15, 16, 100, 101)]
    assert seen == [
        SeqVerdict.FIRST,
        SeqVerdict.NEXT,
        SeqVerdict.DUPLICATE,
        SeqVerdict.DUPLICATE,
        SeqVerdict.DUPLICATE,
        SeqVerdict.NEXT,
        SeqVerdict.GAP,
        SeqVerdict.DUPLICATE,
        SeqVerdict.DUPLICATE,
        SeqVerdict.NEXT,
        SeqVerdict.GAP,
        SeqVerdict.NEXT,
    ]
    assert tracker.last == 101


def test_the_tracker_shows_its_last_number() -> None:
    assert repr(SequenceTracker()) == "SequenceTracker(last=None)"
    tracker = SequenceTracker(7)
    tracker.observe(9)
    assert repr(tracker) == "SequenceTracker(last=9)"
    assert not hasattr(tracker, "__dict__")  # slotted: one field, no stray state
