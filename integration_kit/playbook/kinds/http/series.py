"""The numbers the HTTP charts plot, from a recorded run's events: latency percentiles, attempts per call, breaker
states, outcomes and load per time bucket, and load amplification.

Every function reads an events DataFrame with :data:`~integration_kit.events.FRAME_COLUMNS` (``Recorder.to_frame()``,
the same for simulated and live runs) and, for load, optionally the partner's own count of the attempts it received
(``ServerView.to_frame()``: columns ``second`` and ``received``), and returns a DataFrame, so the numbers can be
tested and tabulated; :mod:`~integration_kit.playbook.kinds.http.charts` draws them. Time is seconds since ``origin``
(default: the frame's earliest event), cut into ``bucket``-second bins, each labelled by its start.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from integration_kit.events import FRAME_COLUMNS

__all__ = [
    "OUTCOMES",
    "PERCENTILES",
    "STATE_LEVELS",
    "amplification_series",
    "attempts_distribution",
    "breaker_states",
    "latency_percentiles",
    "load_series",
    "level_of",
    "outcome_counts",
]

#: The height of each breaker state on the breaker chart (the three usual states are always labelled).
STATE_LEVELS: dict[str, int] = {"disabled": -1, "closed": 0, "half_open": 1, "open": 2, "forced_open": 3}

#: The percentiles of :func:`latency_percentiles`: column name and quantile.
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
#: The fates of a call in :func:`outcome_counts`.
OUTCOMES: tuple[str, ...] = ("success", "error", "rejected")


def latency_percentiles(
    frame: pd.DataFrame, bucket: float = 1.0, *, origin: float | None = None, completed_only: bool = False
) -> pd.DataFrame:
    """Call latency per time bucket: columns ``start``, ``calls``, ``p50``, ``p95``, ``p99`` (seconds).

    Read from ``call_finished`` rows, bucketed by when the call ended. By default rejected calls count (they took
    no time, which is what the caller saw, and the run's :class:`~integration_kit.events.Summary` counts them);
    ``completed_only`` leaves out calls refused before reaching the network (a ``call_rejected`` row), so an
    outage in which the breaker rejects everything does not look like the fastest time of the run.
    Percentiles interpolate linearly, as numpy's default does. Buckets with no finished call are left out.
    """
    events = _events(frame)
    calls = _rows(events, "call_finished")
    if completed_only:
        refused = set(_call_keys(_rows(events, "call_rejected")))
        calls = calls[pd.Series([key not in refused for key in _call_keys(calls)], index=calls.index, dtype=bool)]
    durations = calls["duration"].astype(float).groupby(_bucket_index(calls["time"], bucket, _origin(events, origin)))
    table = pd.DataFrame({"calls": durations.size()})
    for column, q in PERCENTILES:
        table[column] = durations.quantile(q)
    return _with_start(table, ["calls", *(c for c, _ in PERCENTILES)], bucket)


def attempts_distribution(frame: pd.DataFrame) -> pd.DataFrame:
    """How many logical calls made each number of attempts: columns ``attempts`` and ``calls``.

    Read from ``call_finished`` rows; a call refused before reaching the network made 0 attempts. Every count
    between the fewest and the most attempts seen has a row, zero if no call made that many.
    """
    calls = _rows(_events(frame), "call_finished")
    if calls.empty:
        return pd.DataFrame({"attempts": pd.Series(dtype="int64"), "calls": pd.Series(dtype="int64")})
    counts = calls["attempts"].astype("int64").value_counts()
    span = range(int(counts.index.min()), int(counts.index.max()) + 1)
    counts = counts.reindex(span, fill_value=0)
    return pd.DataFrame({"attempts": list(span), "calls": counts.to_numpy(dtype="int64")})


def breaker_states(frame: pd.DataFrame, *, origin: float | None = None) -> pd.DataFrame:
    """The breaker transitions in order: columns ``time`` (seconds since origin), ``breaker``, ``old``, ``new``,
    ``reason`` and ``level`` (the new state's height in :data:`STATE_LEVELS`)."""
    events = _events(frame)
    rows = _rows(events, "breaker_transition")
    table = pd.DataFrame(
        {
            "time": rows["time"].astype(float) - _origin(events, origin),
            "breaker": rows["breaker"].astype(str),
            "old": rows["old"].astype(str),
            "new": rows["new"].astype(str),
            "reason": rows["reason"].astype(str),
            "level": rows["new"].map(level_of).astype("int64"),
        }
    )
    return table.reset_index(drop=True)


def outcome_counts(frame: pd.DataFrame, bucket: float = 1.0, *, origin: float | None = None) -> pd.DataFrame:
    """Calls ended per time bucket by fate: columns ``start``, ``success``, ``error``, ``rejected``.

    A call is *rejected* when it ended unsuccessfully and was refused before reaching the network at some point
    (a ``call_rejected`` row: circuit open, bulkhead full, rate limited); any other unsuccessful call is an
    *error*. Every bucket from the first to the last in which a call ended has a row (zeros where none did).
    """
    events = _events(frame)
    calls = _rows(events, "call_finished")
    refused = set(_call_keys(_rows(events, "call_rejected")))
    ok = calls["ok"].eq(True)
    was_refused = pd.Series([key in refused for key in _call_keys(calls)], index=calls.index, dtype=bool)
    fate = {"success": ok, "error": ~ok & ~was_refused, "rejected": ~ok & was_refused}
    index = _bucket_index(calls["time"], bucket, _origin(events, origin))
    table = pd.DataFrame({name: mask.astype("int64").groupby(index).sum() for name, mask in fate.items()})
    return _with_start(table, list(OUTCOMES), bucket, fill=True)


def load_series(
    frame: pd.DataFrame,
    server_frame: pd.DataFrame | None = None,
    bucket: float = 1.0,
    *,
    origin: float | None = None,
) -> pd.DataFrame:
    """Logical calls started and upstream attempts per time bucket: columns ``start``, ``calls``, ``sent``, and
    ``received`` when ``server_frame`` is given.

    ``calls`` counts calls by the time of their first event; ``sent`` counts ``attempt_started`` rows;
    ``received`` is the partner's own count (a refused connection is sent but never received). The server frame's
    seconds are taken as seconds since ``origin`` (a simulation starts both at 0), so ``bucket`` must then be a
    whole number of seconds. Every bucket from the first to the last with a count has a row (zeros in between).
    """
    events = _events(frame)
    _check_bucket(bucket)
    base = _origin(events, origin)
    called = events[events["call_id"].fillna(0).astype("int64") > 0]
    first_seen = called.groupby(["integration", "call_id"], sort=False)["time"].min()
    columns: dict[str, pd.Series[Any]] = {
        "calls": _count_by_bucket(first_seen, bucket, base),
        "sent": _count_by_bucket(_rows(events, "attempt_started")["time"], bucket, base),
    }
    if server_frame is not None:
        if bucket != int(bucket):
            raise ValueError(f"load_series: bucket must be a whole number of seconds with a server frame, got {bucket}")
        seconds = server_frame["second"].astype(float)
        received = server_frame["received"].astype("int64").groupby((seconds // bucket).astype("int64")).sum()
        columns["received"] = received
    table = pd.DataFrame(columns).fillna(0).astype("int64").sort_index()
    return _with_start(table, list(columns), bucket, fill=True)


def amplification_series(
    frame: pd.DataFrame,
    server_frame: pd.DataFrame | None = None,
    bucket: float = 1.0,
    *,
    origin: float | None = None,
) -> pd.DataFrame:
    """Upstream attempts per logical call over time: columns ``start``, ``calls``, ``attempts``, ``amplification``.

    ``attempts`` are those the partner received when ``server_frame`` is given, else those sent
    (``attempt_started`` rows); ``calls`` are the calls that started in the bucket (see :func:`load_series`).
    A retry may land in a later bucket than its call, so a bucket's ratio is approximate; the sums are exact, and
    ``attempts.sum() / calls.sum()`` is the run's amplification. A bucket with no new call has NaN.
    """
    load = load_series(frame, server_frame, bucket, origin=origin)
    attempts = load["received"] if "received" in load else load["sent"]
    calls = load["calls"]
    return pd.DataFrame(
        {
            "start": load["start"],
            "calls": calls,
            "attempts": attempts,
            "amplification": attempts.astype(float) / calls.where(calls > 0).astype(float),
        }
    )


# -- helpers -------------------------------------------------------------------------------------------------------


def _events(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every one of :data:`FRAME_COLUMNS` (missing ones empty), so an empty ``DataFrame()`` works."""
    missing = [c for c in FRAME_COLUMNS if c not in frame.columns]
    if not missing:
        return frame
    return frame.reindex(columns=[*frame.columns, *missing])


def _rows(events: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The rows of one event kind."""
    return events[events["event"] == kind]


def _call_keys(rows: pd.DataFrame) -> list[tuple[Any, int]]:
    """The (integration, call id) of each row: a call id is unique within one integration's engine."""
    return list(zip(rows["integration"], rows["call_id"].astype("int64"), strict=True))


def _origin(events: pd.DataFrame, origin: float | None) -> float:
    """``origin``, or by default the earliest event's time (0 for an empty frame)."""
    if origin is not None:
        return float(origin)
    earliest = events["time"].min() if not events.empty else math.nan
    return 0.0 if pd.isna(earliest) else float(earliest)


def _check_bucket(bucket: float) -> None:
    """A bucket is a finite number of seconds > 0."""
    if isinstance(bucket, bool) or not isinstance(bucket, (int, float)) or not (math.isfinite(bucket) and bucket > 0):
        raise ValueError(f"bucket must be a finite number of seconds > 0, got {bucket!r}")


def _bucket_index(times: pd.Series[Any], bucket: float, origin: float) -> pd.Series[int]:
    """The number of the bucket each time falls in (bucket ``k`` starts ``k * bucket`` seconds after ``origin``)."""
    _check_bucket(bucket)
    return ((times.astype(float) - origin) // bucket).astype("int64")


def _count_by_bucket(times: pd.Series[Any], bucket: float, origin: float) -> pd.Series[int]:
    """How many times fall in each bucket, indexed by bucket number."""
    return times.groupby(_bucket_index(times, bucket, origin)).size()


def _with_start(table: pd.DataFrame, columns: list[str], bucket: float, *, fill: bool = False) -> pd.DataFrame:
    """A table indexed by bucket number, as plain columns ``start`` (seconds) and ``columns`` with a range index.

    ``fill`` adds the empty buckets between the first and the last with zeros, so a count drops to 0 on a chart
    instead of a line being drawn across the gap.
    """
    table = table.reindex(columns=columns)
    if fill and not table.empty:
        table = table.reindex(range(int(table.index.min()), int(table.index.max()) + 1), fill_value=0)
    table.insert(0, "start", table.index.to_numpy(dtype=float) * bucket)
    return table.reset_index(drop=True)


def level_of(state: object) -> int:
    """The height of a breaker state on the timeline (an unknown state sits with open)."""
    return STATE_LEVELS.get(str(state), STATE_LEVELS["open"])
