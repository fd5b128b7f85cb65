"""A recorder that streams a long simulation's events to CSV files, so memory stays bounded.

An hour at 1,000 calls/s is 3.6 million calls and about eleven million events: kept as objects they take gigabytes.
:class:`EventStream` keeps at most ``chunk`` events in memory, as the engine's rows
(:data:`~integration_kit.events.EventRow`); each full chunk is appended to one CSV file per kind of event in
``folder`` (``events-attempt_started.csv``, ``events-call_finished.csv``, ...; the columns are the event's fields),
and tallied for the run's :class:`~integration_kit.events.Summary`. What stays in memory for the whole run is the
tally and each call's duration (8 bytes a call, for the latency percentiles).

Give it to :func:`~integration_kit.sim.simulate.simulate` as ``recorder=``. Read the files back with
``pandas.read_csv``; :meth:`EventStream.summary` covers every event, written or not.
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Iterator
from dataclasses import astuple, fields
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from integration_kit.events import CallFinished, Event, EventRow, Recorder, Summary, summarize

__all__ = ["EventStream"]

_FIELDS = itemgetter(slice(1, None))
_DURATION = 1 + [f.name for f in fields(CallFinished)].index("duration")


class EventStream(Recorder):
    """A :class:`~integration_kit.events.Recorder` that writes its events to ``folder`` every ``chunk`` events.

    ``folder`` is created if missing; files of an earlier stream there are replaced. Not thread-safe: it is made
    for the simulator, which runs on one thread. :attr:`events` and :meth:`to_frame` are refused (the events are
    in the files); ``len()`` counts every event received. Call :meth:`close` (or use ``with``) to write the last
    chunk and close the files; :meth:`summary` writes it too.
    """

    def __init__(self, folder: str | Path, *, chunk: int = 100_000) -> None:
        if chunk < 1:
            raise ValueError(f"EventStream.chunk must be >= 1, got {chunk!r}")
        super().__init__()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._chunk = chunk
        self._pending: list[Event | EventRow] = []
        self._files: dict[type[Event], tuple[IO[str], Any]] = {}
        self._parts: list[Summary] = []
        self._durations = array("d")
        self._written = 0
        self.append = self._add  # rows and events both come here

    def _add(self, item: Event | EventRow) -> None:
        pending = self._pending
        pending.append(item)
        if len(pending) >= self._chunk:
            self.flush()

    def flush(self) -> None:
        """Write the events held in memory to their files, tally them, and forget them."""
        pending = self._pending
        if not pending:
            return
        by_kind: dict[type[Event], list[EventRow]] = {}
        for item in pending:
            row = item if type(item) is tuple else (type(item), *astuple(item))  # type: ignore[arg-type]
            by_kind.setdefault(row[0], []).append(row)
        for kind, rows in by_kind.items():
            self._writer(kind).writerows(map(_FIELDS, rows))
        self._durations.extend(row[_DURATION] for row in by_kind.get(CallFinished, ()))
        self._parts.append(summarize(pending))
        self._written += len(pending)
        self._pending = []

    def close(self) -> None:
        """Write what is left and close the files."""
        self.flush()
        for handle, _ in self._files.values():
            handle.close()
        self._files.clear()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def summary(self) -> Summary:
        """The figures of every event received (see :class:`~integration_kit.events.Summary`)."""
        self.flush()
        for handle, _ in self._files.values():
            handle.flush()
        parts = self._parts
        return Summary.of(
            sum(p.calls for p in parts),
            sum(p.succeeded for p in parts),
            sum(p.rejected for p in parts),
            sum(p.attempts for p in parts),
            sum(p.retries for p in parts),
            sum(p.budget_refusals for p in parts),
            sorted(self._durations),
            (t for p in parts for t in p.transitions),
        )

    @property
    def events(self) -> list[Event]:
        """Refused: the events are in the files of :attr:`folder` (raises ``TypeError``)."""
        raise TypeError(f"an EventStream keeps no events: read the CSV files in {self.folder}")

    def to_frame(self) -> Any:
        """Refused: the events are in the files of :attr:`folder` (raises ``TypeError``)."""
        raise TypeError(f"an EventStream keeps no events: read the CSV files in {self.folder}")

    def __len__(self) -> int:
        return self._written + len(self._pending)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def _writer(self, kind: type[Event]) -> Any:
        opened = self._files.get(kind)
        if opened is None:
            handle = (self.folder / f"events-{kind.kind}.csv").open("w", newline="", encoding="utf-8")
            writer = csv.writer(handle)
            writer.writerow([f.name for f in fields(kind)])
            opened = self._files[kind] = (handle, writer)
        return opened[1]

    def __repr__(self) -> str:
        return f"EventStream(folder={str(self.folder)!r}, events={len(self)})"
