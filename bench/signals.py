"""What reading the partners' signals costs per answer, with and without signal headers.

    PYTHONPATH=. python bench/signals.py

For each header set: the path before signals were read (``retry_after_seconds``, one ``Retry-After`` lookup),
the fast check and ``read_signals`` over the same headers (the generic reading, no profile), and the whole
outcome mapping of a refused answer (``Exchange.answered``: signals, redaction, the typed error). The ratio
column is ``read_signals`` over the previous lookup; the last column is what reading the signals adds, as a share
of the outcome mapping it is part of. A 2xx answer reads no signal unless the client paces (then the same fast
check comes first).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import httpx

from integration_kit.http.exchange import Body, Exchange, ExchangeContext, retry_after_seconds
from integration_kit.policies.signals import has_signal_fields, read_signals

N = 20_000
ROUNDS = 5
TYPICAL = {
    "content-type": "application/json",
    "date": "Thu, 01 Jan 2026 12:00:00 GMT",
    "server": "nginx",
    "cache-control": "no-store",
    "x-request-id": "req_123",
    "content-length": "42",
}
CASES: dict[str, tuple[int, dict[str, str]]] = {
    "503, no signal headers": (503, TYPICAL),
    "429, Retry-After": (429, {**TYPICAL, "retry-after": "2"}),
    "403, X-RateLimit at 0": (
        403,
        {**TYPICAL, "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1767269000"},
    ),
    "429, IETF RateLimit": (
        429,
        {**TYPICAL, "ratelimit-policy": '"default";q=100;w=10', "ratelimit": '"default";r=0;t=2'},
    ),
}


def per_call(fn: Callable[[], object]) -> float:
    """Microseconds per call, the median of ROUNDS rounds of N calls."""
    samples = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        for _ in range(N):
            fn()
        samples.append((time.perf_counter() - began) / N * 1e6)
    return statistics.median(samples)


def main() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/x")
    exchange = Exchange(ExchangeContext(), request, None, {}, frozenset({429, 503}), 1.0)  # type: ignore[arg-type]
    print(f"{'answer':28} {'before (us)':>12} {'signals (us)':>13} {'ratio':>7} {'mapping (us)':>13} {'share':>7}")
    for label, (status, headers) in CASES.items():
        response = httpx.Response(status, headers=headers, content=b'{"message": "no"}', request=request)
        now = time.time()

        def before(response: httpx.Response = response) -> object:
            return retry_after_seconds(response)

        def signals(response: httpx.Response = response, status: int = status, now: float = now) -> object:
            if not has_signal_fields(response.headers.raw):  # the driver's fast check (Exchange.answered)
                return None
            return read_signals(response.headers, now, status=status)

        def mapping(response: httpx.Response = response) -> object:
            return exchange.answered(response, Body(2048, False, None, response, whole=True))

        old, new, whole = per_call(before), per_call(signals), per_call(mapping)
        share = (new - old) / whole
        print(f"{label:28} {old:12.2f} {new:13.2f} {new / old:7.2f} {whole:13.2f} {share:7.1%}")


if __name__ == "__main__":
    main()
