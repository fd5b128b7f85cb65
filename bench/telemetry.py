"""What the telemetry hooks add per call on the happy path, in process and over loopback, in one run.

    python3 dev.py bench bench/telemetry.py      # or: .venv/bin/python bench/telemetry.py

Contenders, measured in interleaved rounds so machine noise hits all alike: no hook; the OpenTelemetry hook on
the SDK (a tracer provider with a batch span processor whose exporter drops the spans, a meter provider with a
reader that is never collected during the run); the Prometheus hook (its own registry).

- in process: the call engine driven by a send function that answers 200 at once (what the simulator does), so
  the figure is the hooks' own cost: spans, trace context, metric updates. Also variants of the OpenTelemetry
  hook (traces only, metrics only, 1 % of traces sampled), and two yardsticks, not contenders: a no-op hook
  (what the engine's events cost once any hook listens) and the "SDK floor" (what the SDK alone costs for two
  spans and three histogram records);
- loopback: ``ResilientClient`` GETs against a bare ASGI app under uvicorn in a subprocess on 127.0.0.1; here
  the OpenTelemetry hook also makes each attempt's span current and injects ``traceparent``.

Target (issue 16): at most 15 us added per call for each hook. The figure is the median per-call time of a
round minus the same round's no-hook figure, over the rounds. Absolute figures depend on the machine's load:
compare the contenders of one run.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from prometheus_client import CollectorRegistry

from integration_kit import ClientConfig, ResilientClient
from integration_kit.engine.call import CallEngine, Send, run_sync
from integration_kit.events import Hook
from integration_kit.policies.config import BreakerPolicy, BudgetPolicy
from integration_kit.policies.outcome import Outcome, OutcomeKind
from integration_kit.telemetry.otel import OpenTelemetryHook
from integration_kit.telemetry.prometheus import PrometheusHook

IN_PROCESS_CALLS = 2000
LOOPBACK_CALLS = 10  # a round of loopback calls is short, and there are many, so that noise hits all alike
LOOPBACK_ROUNDS = 80
LOOPBACK_CONTENDERS = ("no hook", "OpenTelemetry", "OTel 1% sampled", "Prometheus")
ROUNDS = 9
TARGET_US = 15.0
BODY = b'{"ok":true}'


class Drop(SpanExporter):
    """An exporter that drops every span: the cost measured is the hook's, not a backend's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class NoOp:
    """A hook that does nothing: what the engine's events cost once any hook listens (a yardstick)."""

    def __call__(self, event: Any) -> None:
        pass

    def watch(self, engine: CallEngine) -> None:
        pass


class SdkFloor:
    """Not a contender but a yardstick: per call, what the SDK alone costs for what the hook asks of it (a call
    span and an attempt span with the same attributes, three histogram records), with no event handling."""

    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
        self.tracer = tracer_provider.get_tracer("floor")
        meter = meter_provider.get_meter("floor")
        self.histograms = [meter.create_histogram(f"floor{i}") for i in range(3)]
        self.attributes = {
            "integration_kit.integration": "bench",
            "http.request.method": "GET",
            "server.address": "127.0.0.1",
            "server.port": 8080,
            "url.full": "http://127.0.0.1:8080/orders",
            "integration_kit.attempt": 1,
        }

    def __call__(self, event: Any) -> None:
        if event.kind == "call_finished":
            call = self.tracer.start_span("bench GET", attributes=self.attributes)
            self.tracer.start_span("GET", attributes=self.attributes).end()
            call.end()
            for h in self.histograms:
                h.record(0.001, self.attributes)

    def watch(self, engine: CallEngine) -> None:
        pass


def contenders() -> tuple[dict[str, list[Hook]], Callable[[], None]]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=65536))
    sampled = TracerProvider(sampler=TraceIdRatioBased(0.01))
    sampled.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=65536))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])

    def close() -> None:
        tracer_provider.shutdown()
        sampled.shutdown()
        meter_provider.shutdown()

    def otel(**options: Any) -> list[Hook]:
        options.setdefault("tracer_provider", tracer_provider)
        options.setdefault("meter_provider", meter_provider)
        return [OpenTelemetryHook(**options)]

    hooks: dict[str, list[Hook]] = {
        "no hook": [],
        "no-op hook": [NoOp()],
        "OpenTelemetry": otel(),
        "OTel traces": otel(metrics=False),
        "OTel metrics": otel(traces=False),
        "OTel 1% sampled": otel(tracer_provider=sampled),
        "SDK floor": [SdkFloor(tracer_provider, meter_provider)],
        "Prometheus": [PrometheusHook(registry=CollectorRegistry())],
    }
    return hooks, close


# -- in process ----------------------------------------------------------------------------------------------------

OK = Outcome(OutcomeKind.STATUS, status=200)


def in_process_round(engine: CallEngine, calls: int) -> float:
    def send(action: Send) -> Outcome:
        return OK

    def sleep(seconds: float) -> None:
        pass

    target = "http://127.0.0.1:8080/orders"
    started = time.perf_counter()
    for _ in range(calls):
        run_sync(engine.call("GET", target), send, sleep)
    return (time.perf_counter() - started) / calls


def bench_in_process(hooks: dict[str, list[Hook]]) -> dict[str, list[float]]:
    engines = {}
    for name, hook_list in hooks.items():
        engine = CallEngine(name="bench", hooks=hook_list)
        for hook in hook_list:
            hook.watch(engine)  # type: ignore[attr-defined]
        engines[name] = engine
    for engine in engines.values():
        in_process_round(engine, 200)  # warm up
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(ROUNDS):
        for name, engine in engines.items():
            times[name].append(in_process_round(engine, IN_PROCESS_CALLS))
    return times


# -- loopback ------------------------------------------------------------------------------------------------------


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The smallest useful JSON endpoint."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def serve(port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the benchmark server did not start")


def loopback_round(client: ResilientClient, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        client.get("/orders")
    return (time.perf_counter() - started) / calls


def bench_loopback(hooks: dict[str, list[Hook]], url: str) -> dict[str, list[float]]:
    clients = {}
    for name, hook_list in hooks.items():
        if name not in LOOPBACK_CONTENDERS:
            continue
        config = ClientConfig(name="bench", base_url=url, breaker=BreakerPolicy(), budget=BudgetPolicy())
        client = ResilientClient(config)
        for hook in hook_list:
            if hasattr(hook, "instrument"):
                hook.instrument(client)
            else:
                client.add_hook(hook)
        clients[name] = client
    try:
        for client in clients.values():
            loopback_round(client, 30)
        times: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(LOOPBACK_ROUNDS):
            for name, client in clients.items():
                times[name].append(loopback_round(client, LOOPBACK_CALLS))
        return times
    finally:
        for client in clients.values():
            client.close()


def report(title: str, times: dict[str, list[float]]) -> bool:
    print(f"\n{title}")
    print(f"  {'contender':<22} {'median us/call':>15} {'added us/call':>14}   target <= {TARGET_US:g} us")
    ok = True
    for name, values in times.items():
        median = statistics.median(values)
        added = statistics.median(v - b for v, b in zip(values, times["no hook"], strict=True)) * 1e6
        judged = name in ("OpenTelemetry", "Prometheus")
        verdict = ("met" if added <= TARGET_US else "MISSED") if judged else ""
        ok &= not judged or added <= TARGET_US
        print(f"  {name:<22} {median * 1e6:>15.1f} {added if name != 'no hook' else 0.0:>14.1f}   {verdict}")
    return ok


def main() -> None:
    hooks, close = contenders()
    try:
        in_process = bench_in_process(hooks)
        process, url = start_server()
        try:
            loopback = bench_loopback(hooks, url)
        finally:
            process.kill()
            process.wait()
    finally:
        close()
    print(
        f"telemetry overhead, interleaved rounds: in process {ROUNDS} x {IN_PROCESS_CALLS} calls, "
        f"loopback {LOOPBACK_ROUNDS} x {LOOPBACK_CALLS} calls"
    )
    met = report("in process (call engine, 200 at once)", in_process)
    met &= report("loopback (ResilientClient -> uvicorn subprocess on 127.0.0.1)", loopback)
    print("\nall targets met" if met else "\nsome targets missed")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        main()
