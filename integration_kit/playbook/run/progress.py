"""Progress of live runs, on the console and never in a notebook's outputs.

A live run takes real time, so the person who started ``integration-kit run --mode live`` wants a progress bar;
the report does not (ipykernel forwards everything a kernel writes, even to its own standard error, into the
cell's outputs). So the exercise notebook reports progress to a small file (:func:`progress_to_file`) and the
runner, in the parent process, draws the bar on its console while papermill executes the notebook
(:class:`ConsoleProgress`). Interactive sessions use :func:`progress_bar`, a tqdm bar in the notebook itself.

A bar is drawn only on a terminal. When standard error is a file or a pipe (CI, ``nohup``, ``2> run.log``) a bar
would leave one frame per update in it (hundreds per run), so :class:`ConsoleProgress` writes one line per scenario
instead, when the scenario ends.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["ConsoleProgress", "Progress", "progress_bar", "progress_to_file", "read_progress"]

Progress = Callable[[str, float], None]

#: How often (seconds) the console bar reads the progress file.
POLL_INTERVAL = 0.25


def progress_bar(total_scenarios: int) -> Progress:
    """A ``progress`` callback that draws a tqdm bar where it runs (a notebook's widget, or a terminal)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=100 * total_scenarios, unit="%", desc="live run")
    done: dict[str, int] = {}

    def update(scenario: str, fraction: float) -> None:
        step = int(fraction * 100)
        bar.set_description(scenario)
        bar.update(max(0, step - done.get(scenario, 0)))
        done[scenario] = max(step, done.get(scenario, 0))

    return update


def progress_to_file(path: str | Path) -> Progress:
    """A ``progress`` callback that records each scenario's fraction done in ``path`` (replaced atomically), for
    :class:`ConsoleProgress` to read. Writes nothing to standard output or error."""
    target = Path(path)
    done: dict[str, float] = {}

    def update(scenario: str, fraction: float) -> None:
        done[scenario] = max(fraction, done.get(scenario, 0.0))
        scratch = target.with_suffix(".tmp")
        scratch.write_text("".join(f"{name}\t{value:.4f}\n" for name, value in done.items()), encoding="utf-8")
        os.replace(scratch, target)

    return update


def read_progress(path: str | Path) -> dict[str, float]:
    """What :func:`progress_to_file` wrote: each scenario's fraction done (empty when there is no file yet)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition("\t")
        try:
            found[name] = float(value)
        except ValueError:
            continue
    return found


class ConsoleProgress:
    """While open, shows on this process's standard error the progress recorded in a file written elsewhere.

    ``total`` is the number of scenarios. On a terminal, a tqdm bar that advances one percent per percent of a
    scenario; on anything else (``stream.isatty()`` false), one line per scenario as it ends, such as
    ``live run: outage (2/3) done in 41.2 s``.
    """

    def __init__(self, path: str | Path, total: int, *, stream: Any = None, enabled: bool = True) -> None:
        self.enabled = enabled  # False: a context that draws nothing (a stage that reports no progress)
        self.path = Path(path)
        self.total = max(1, total)
        self.stream = stream if stream is not None else sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ConsoleProgress:
        if not self.enabled:
            return self
        isatty = getattr(self.stream, "isatty", None)
        view = (
            _BarView(self.total, self.stream) if callable(isatty) and isatty() else _LineView(self.total, self.stream)
        )

        def follow() -> None:
            while True:
                stopping = self._stop.wait(POLL_INTERVAL)
                view.update(read_progress(self.path))
                if stopping:
                    view.close()
                    return

        self._thread = threading.Thread(target=follow, name="console-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)


class _BarView:
    """A tqdm bar over every scenario's percent (a terminal redraws it in place)."""

    def __init__(self, total: int, stream: Any) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=100 * total, unit="%", desc="live run", file=stream, leave=False)
        self._shown = 0

    def update(self, done: dict[str, float]) -> None:
        now = int(sum(done.values()) * 100)
        if done:
            self._bar.set_description(next(reversed(done)))
        self._bar.update(max(0, now - self._shown))
        self._shown = max(self._shown, now)

    def close(self) -> None:
        self._bar.close()


class _LineView:
    """One line per scenario, written when it ends: it reached 100 %, the next one started, or the run stopped."""

    def __init__(self, total: int, stream: Any) -> None:
        self._total = total
        self._stream = stream
        self._began: dict[str, float] = {}  # scenario -> when it was first seen (monotonic seconds)
        self._reported: set[str] = set()
        self._last: dict[str, float] = {}

    def update(self, done: dict[str, float]) -> None:
        now = time.monotonic()
        names = list(done)  # in the order the scenarios started
        for index, name in enumerate(names):
            self._began.setdefault(name, now)
            if name not in self._reported and (done[name] >= 1.0 or index < len(names) - 1):
                self._report(name, index, f"done in {now - self._began[name]:.1f} s")
        self._last = done

    def close(self) -> None:
        for index, name in enumerate(self._last):
            if name not in self._reported:
                self._report(name, index, f"stopped at {self._last[name]:.0%}")

    def _report(self, name: str, index: int, what: str) -> None:
        self._reported.add(name)
        self._stream.write(f"live run: {name} ({index + 1}/{self._total}) {what}\n")
        self._stream.flush()
