"""Gaps and duplicates in a sequenced feed: a pure tracker of the last sequence number delivered.

Exchanges' market-data feeds number their messages; after a reconnect a resumed feed replays from the number the
client asks for, which may repeat some, and an unresumed one skips those sent while the client was away.
:class:`SequenceTracker` tells each number apart: the next one, a duplicate (already delivered: drop it), or a
gap (some are missing: the client raises an event and may resync).
"""

from __future__ import annotations

from enum import Enum

__all__ = ["SequenceTracker", "SeqVerdict"]


class SeqVerdict(Enum):
    """How a message's sequence number relates to those delivered before it."""

    FIRST = "first"  # the first number seen: nothing to compare with
    NEXT = "next"  # exactly one more than the last
    DUPLICATE = "duplicate"  # at or below the last: already delivered
    GAP = "gap"  # more than one above the last: some are missing


class SequenceTracker:
    """The last sequence number delivered (``last``), and the judgement of each new one.

    ``start`` is the number before the first expected one when the feed's numbering is known (a resumed
    subscription), else ``None``: the first number seen is accepted as it comes.
    """

    __slots__ = ("last",)

    def __init__(self, start: int | None = None) -> None:
        self.last = start

    def observe(self, seq: int) -> SeqVerdict:
        """Judge ``seq``; a delivered one (first, next or past a gap) becomes :attr:`last`."""
        last = self.last
        if last is None:
            self.last = seq
            return SeqVerdict.FIRST
        if seq <= last:
            return SeqVerdict.DUPLICATE
        self.last = seq
        return SeqVerdict.NEXT if seq == last + 1 else SeqVerdict.GAP

    def __repr__(self) -> str:
        return f"SequenceTracker(last={self.last!r})"
