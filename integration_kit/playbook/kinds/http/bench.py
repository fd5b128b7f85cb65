"""The HTTP kind's side of the bench: a target that answers nothing, and a live time scale this machine can play.

The bench's health (lateness, timer lags, CPU) and the rule that voids a verdict are the same for every kind and
live in :mod:`integration_kit.playbook.verdict.bench`; their names are re-exported here, where they were first
defined. :func:`fitted_time_scale` picks a live time scale this machine can play; :func:`probe_target` refuses a
live run against a target that answers nothing before any kernel starts, and :class:`FirstContact` stops a run
whose first attempts all fail before reaching the partner (TLS, or a target that went away).
"""

from __future__ import annotations

import math
import os
import socket
import threading
import urllib.request

import httpx

from integration_kit.errors import ConfigurationError
from integration_kit.events import AttemptFinished, Event
from integration_kit.http.redact import redact_url
from integration_kit.playbook.verdict.bench import (
    ABANDON_LATENESS,
    CPU_SATURATED,
    LATENESS_LIMIT,
    PROBE_INTERVAL,
    PROCESS_SATURATED,
    TIMER_LAG_LIMIT,
    BenchHealth,
    BenchMonitor,
)

__all__ = [
    "ABANDON_LATENESS",
    "CPU_SATURATED",
    "FIRST_CONTACT_ATTEMPTS",
    "LATENESS_LIMIT",
    "PROBE_INTERVAL",
    "PROBE_TIMEOUT",
    "PROCESS_SATURATED",
    "REAL_CALLS_PER_CORE",
    "TIMER_LAG_LIMIT",
    "BenchHealth",
    "BenchMonitor",
    "FirstContact",
    "UnreachableTarget",
    "fitted_time_scale",
    "probe_target",
]

#: Real calls per second one core serves in a live run (client, pool threads and the local upstream in one
#: process): measured on a 2-core machine, where 200 calls/s held (p99 0.32 s) and 1,000 calls/s did not.
REAL_CALLS_PER_CORE = 100.0
#: How many attempts must all fail before reaching the partner for a live run to stop (:class:`FirstContact`).
FIRST_CONTACT_ATTEMPTS = 10
#: Outcomes of an attempt that never reached the partner (``pool_timeout`` is the bench's own pool: not counted).
_NOT_REACHED = frozenset({"connect_error", "connect_timeout"})


#: Seconds :func:`probe_target` waits for the target's name and port before a live run starts.
PROBE_TIMEOUT = 3.0


class UnreachableTarget(ConfigurationError):
    """A live run's first attempts all failed before reaching the partner (DNS, refused, TLS): the URL is wrong or
    the service is down, and playing the rest of the scenario would only measure that."""


def probe_target(url: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Refuse a live run whose target answers nothing, before any kernel starts: resolve ``url``'s host and open a
    TCP connection to its port (closed at once, nothing sent), within ``timeout`` seconds.

    Raises :class:`UnreachableTarget` naming the URL (redacted) and why (the name does not resolve, the connection is
    refused, no answer in time). A proxy configured in the environment (``HTTPS_PROXY``...) is what the client talks
    to, so the probe is skipped then; :class:`FirstContact` still stops the run if no call gets through.
    """
    parsed = httpx.URL(url)
    if parsed.scheme in urllib.request.getproxies():
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.host, port), timeout=timeout):
            return
    except socket.gaierror as exc:
        reason = f"its host name does not resolve ({exc.strerror})"
    except ConnectionRefusedError:
        reason = f"the connection to port {port} was refused"
    except TimeoutError:
        reason = f"port {port} did not answer within {timeout:g} s"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise UnreachableTarget(
        f"no call reached {redact_url(url)}: {reason}; checked before starting, the live run did not start"
    )


class FirstContact:
    """An event hook that notices when the first :data:`FIRST_CONTACT_ATTEMPTS` attempts of a live run all failed
    before reaching the partner (``connect_error``, ``connect_timeout``); one attempt that reaches it disarms it.

    The run's load loops stop when :attr:`unreachable` is set, and :meth:`error` says which URL answered nothing.
    """

    def __init__(self, url: str, attempts: int = FIRST_CONTACT_ATTEMPTS) -> None:
        self.url = url
        self.unreachable = threading.Event()
        self._needed = attempts
        self._failed = 0
        self._reached = False
        self._lock = threading.Lock()
        self._outcome = ""

    def __call__(self, event: Event) -> None:
        if not isinstance(event, AttemptFinished) or self._reached:
            return
        with self._lock:
            if event.outcome not in _NOT_REACHED:
                self._reached = True
                return
            self._failed += 1
            self._outcome = event.outcome
            if self._failed >= self._needed:
                self.unreachable.set()

    def error(self) -> UnreachableTarget:
        """The one-line error naming the URL exercised."""
        return UnreachableTarget(
            f"no call reached {redact_url(self.url)}: the first {self._needed} attempts all failed before reaching the "
            f"partner ({self._outcome.replace('_', ' ')}: DNS, connection refused or TLS); the live run stopped"
        )


def fitted_time_scale(rate: float, default: float, cores: int | None = None) -> tuple[float, str]:
    """The live time scale for ``rate`` scenario calls per second on this machine, and a note when it is reduced.

    At most ``default`` (the kind's), at least 1 (real time), and no more than :data:`REAL_CALLS_PER_CORE` real
    calls per second per core: ``min(default, max(1, cores * REAL_CALLS_PER_CORE / rate))``. ``cores`` defaults to
    ``os.cpu_count()``.
    """
    cores = cores or os.cpu_count() or 1
    budget = cores * REAL_CALLS_PER_CORE
    fitted = min(default, max(1.0, budget / rate)) if rate > 0 else default
    if fitted >= default:
        return default, ""
    fitted = math.floor(fitted * 10) / 10 if fitted > 1 else 1.0
    note = (
        f"time scale x{fitted:g}, reduced from x{default:g} to fit {cores} core(s): {rate:g} calls/s at x{default:g} "
        f"would ask {rate * default:,.0f} real calls/s of a machine that serves about {budget:,.0f}"
    )
    return fitted, note
