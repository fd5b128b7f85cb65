"""What the partner saw of a run: attempts received per second (the simulator's count and the live upstream's
``/stats`` have the same shape, so load charts work on both)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ServerView"]


@dataclass(frozen=True, slots=True)
class ServerView:
    """What the partner saw: ``per_second[s]`` is the number of attempts it received during second ``s``.

    The live upstream's ``/stats`` has the same shape (:meth:`from_stats`), so load charts work on both.
    """

    per_second: tuple[int, ...]
    idempotency_keys: int = 0
    overflowed: int = 0

    @property
    def received(self) -> int:
        """Attempts received in all."""
        return sum(self.per_second)

    @property
    def peak(self) -> int:
        """The most attempts received in one second."""
        return max(self.per_second, default=0)

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> ServerView:
        """Build from the live upstream's ``/stats`` JSON (``per_second`` maps a second to its count)."""
        counts = {int(k): int(v) for k, v in stats.get("per_second", {}).items()}
        size = max(counts, default=-1) + 1
        return cls(
            tuple(counts.get(s, 0) for s in range(size)),
            int(stats.get("idempotency_keys_seen", 0)),
            int(stats.get("overflowed", 0)),
        )

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with columns ``second`` and ``received`` (pandas is imported here, lazily)."""
        import pandas as pd

        return pd.DataFrame({"second": range(len(self.per_second)), "received": list(self.per_second)})
