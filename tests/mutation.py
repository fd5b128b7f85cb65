"""Mutation testing with mutmut 3, one module at a time: ``python3 dev.py mutate [MODULE ...] [--minutes N]``.

A MODULE is a name in :data:`TARGETS` (``http.client``) or a layer (``http``, ``server``, ``webhooks``: each of its
modules in turn); ``--minutes`` is the time budget of each module (default 15).

Each module in :data:`TARGETS` is mutated alone, against the tests that exercise it (the fast, pure ones where they
exist, so one mutant costs seconds, not the whole suite). A run happens in ``.mutmut/<module>/``, a scratch
folder holding links to the package and the tests and a ``pyproject.toml`` written here, so mutmut's ``mutants/``
copies never touch the work tree. One worker (``--max-children 1``: the machine is shared), bounded in time.

Afterwards it prints, per module, the mutants killed, survived, timed out and without tests, and the survival rate
``survived / (killed + survived + timeout)``; ``docs/reliability.md`` records the last figures. Lines whose
mutants are equivalent (no behaviour can tell them apart) carry ``# pragma: no mutate`` with the reason beside it.
Survivors are listed with ``mutmut results`` and shown with ``mutmut show NAME`` inside ``.mutmut/<module>/``.
``--only GLOB`` mutates only the functions whose mutant names match (``'*_answered*'``, ``'*xǁBodyǁ*'``): a module
whose tests run real servers costs seconds per mutant, so a time-bounded sweep starts with its guarantees.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mutation_equivalent import EQUIVALENT

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutmut"

_PURE = ("tests/engine/test_engine.py", "tests/engine/test_engine_edges.py", "tests/engine/test_engine_events.py")
_HTTP = (
    "tests/http/test_client.py",
    "tests/http/test_client_guarantees.py",
    "tests/http/test_async_client.py",
    "tests/faults/test_hardening.py",
)
_IO = ("tests/http/test_io_guarantees.py", "tests/http/test_exchange_boundary.py", "tests/http/test_client_surface.py")
#: The partners' signals through the client (rate-limit headers, hints, pacing), over real sockets.
_SIGNALS = ("tests/http/test_signals_client.py", "tests/http/test_pacing.py")
_GRPC = ("tests/grpc/test_channel.py", "tests/grpc/test_status.py", "tests/grpc/test_interop.py")
#: What the gRPC channels do end to end: every call shape, hedging, health probes, telemetry.
_GRPC_CHANNEL = (
    *_GRPC,
    "tests/grpc/test_streams.py",
    "tests/grpc/test_grpc_mix.py",
    "tests/grpc/test_health_probes.py",
    "tests/grpc/test_grpc_telemetry.py",
)
_WS = ("tests/websocket/test_ws_policy.py", "tests/websocket/test_ws_guards.py", "tests/websocket/test_live_client.py")
_RECEIVER = (
    "tests/server/test_sqlite_inbox.py",
    "tests/server/test_webhook_receiver_paths.py",
    "tests/server/test_webhook_processor_paths.py",
    "tests/server/test_webhook_receiver.py",
    "tests/server/test_inbox_contract.py",
)
_SENDER = (
    "tests/webhooks/test_schedule.py",
    "tests/webhooks/test_sqlite_delivery_store.py",
    "tests/webhooks/test_webhook_sender.py",
    "tests/webhooks/test_webhook_recovery.py",
    "tests/webhooks/test_webhook_sender_paths.py",
    "tests/webhooks/test_delivery_store_contract.py",
)
#: module -> (its source under integration_kit/, the tests that must kill its mutants)
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "retry": ("policies/retry.py", ("tests/policies/test_retry.py", *_PURE)),
    "budget": (
        "policies/budget.py",
        ("tests/policies/test_budget.py", "tests/policies/test_shared_budget.py", "tests/engine/test_engine.py"),
    ),
    "outcome": ("policies/outcome.py", ("tests/core/test_clock_outcome.py", *_PURE)),
    "limits": ("policies/limits.py", ("tests/policies/test_limits.py", *_PURE)),
    "breaker.state": ("policies/breaker/state.py", ("tests/policies/test_breaker.py",)),
    "breaker.windows": ("policies/breaker/windows.py", ("tests/policies/test_breaker.py",)),
    "breaker.breaker": (
        "policies/breaker/breaker.py",
        ("tests/policies/test_breaker.py", "tests/policies/test_shared_breaker.py", "tests/engine/test_engine.py"),
    ),
    "breaker.shared": ("policies/breaker/shared.py", ("tests/policies/test_shared_breaker.py",)),
    "engine": ("engine/call.py", (*_PURE, "tests/core/test_events.py", "tests/engine/test_decorator.py")),
    "http.exchange": (
        "http/exchange.py",
        (
            "tests/http/test_exchange_exact.py",
            "tests/http/test_proxy_refusals.py",
            "tests/http/test_answered_errors.py",
            *_HTTP,
            *_IO,
            *_SIGNALS,
        ),
    ),
    "http.client": (
        "http/client.py",
        (
            "tests/http/test_client_init_exact.py",
            *_HTTP,
            *_IO,
            *_SIGNALS,
            "tests/http/test_client_proxy.py",
            "tests/http/test_scaled_deadline.py",
        ),
    ),
    "http.auth": ("http/auth.py", ("tests/http/test_auth.py", "tests/http/test_client_config.py", *_HTTP)),
    "http.config": (
        "http/config.py",
        ("tests/http/test_config_exact.py", "tests/http/test_client_config.py", "tests/policies/test_config.py"),
    ),
    # The backend and the transports have their own loopback tests; the client's lists cost minutes per mutant here.
    "http.backend": (
        "http/backend.py",
        ("tests/http/test_backend.py", "tests/http/test_backend_async.py", "tests/http/test_scaled_deadline.py"),
    ),
    "http.transport": (
        "http/transport.py",
        (
            "tests/http/test_transport.py",
            "tests/http/test_socks_proxy.py",
            "tests/http/test_transport_async.py",
            "tests/http/test_pool_leak.py",
            "tests/http/test_scaled_deadline.py",
        ),
    ),
    "http.redact": ("http/redact.py", ("tests/http/test_redact.py", "tests/http/test_client_config.py", *_HTTP, *_IO)),
    "http.safety": ("http/safety.py", ("tests/http/test_safety.py", "tests/http/test_client_config.py", *_HTTP)),
    "server.idempotency": (
        "server/idempotency.py",
        ("tests/server/test_idempotency.py", "tests/server/test_idempotency_guard.py"),
    ),
    "server.middleware": (
        "server/middleware.py",
        (
            "tests/server/test_middleware_exact.py",
            "tests/server/test_idempotency.py",
            "tests/server/test_idempotency_callers.py",
        ),
    ),
    "server.keyed": (
        "server/keyed.py",
        ("tests/server/test_keyed.py", "tests/server/test_idempotency.py", "tests/server/test_idempotency_callers.py"),
    ),
    "server.signatures": (
        "server/signatures.py",
        (
            "tests/server/test_signatures_base.py",
            "tests/server/test_signatures_schemes.py",
            "tests/server/test_webhook_signatures.py",
            *_RECEIVER,
        ),
    ),
    "server.inbox": ("server/inbox.py", _RECEIVER),
    "server.redis_inbox": (
        "server/redis_inbox.py",
        ("tests/server/test_redis_inbox.py", "tests/server/test_inbox_contract.py"),
    ),
    "server.webhook_processor": ("server/webhook_processor.py", _RECEIVER),
    "server.webhook_receiver": ("server/webhook_receiver.py", _RECEIVER),
    "webhooks.ssrf": ("webhooks/ssrf.py", ("tests/webhooks/test_ssrf.py", *_SENDER)),
    "webhooks.sender": ("webhooks/sender.py", ("tests/webhooks/test_webhook_sender_exact.py", *_SENDER)),
    "webhooks.schedule": ("webhooks/schedule.py", _SENDER),
    "webhooks.delivery_store": ("webhooks/delivery_store.py", _SENDER),
    "webhooks.postgres_store": (
        "webhooks/postgres_store.py",
        ("tests/webhooks/test_postgres_store.py", "tests/webhooks/test_delivery_store_contract.py"),
    ),
    "queues.consumer": (
        "queues/consumer.py",
        (
            "tests/queues/test_queue_consumer_exact.py",
            "tests/queues/test_queue_consumer_events.py",
            "tests/queues/test_queue_consumer.py",
            "tests/queues/test_queue_telemetry.py",
        ),
    ),
    "queues.outbox": (
        "queues/outbox.py",
        (
            "tests/queues/test_queue_sqlite_outbox.py",
            "tests/queues/test_queue_outbox_postgres.py",
            "tests/queues/test_queue_outbox.py",
        ),
    ),
    "queues.inbox": (
        "queues/inbox.py",
        (
            "tests/queues/test_queue_inbox.py",
            "tests/queues/test_queue_store_inbox.py",
            "tests/queues/test_queue_sqlite_inbox.py",
            "tests/queues/test_queue_consumer.py",
        ),
    ),
    # The partners' signals, the loopback rule and the drivers this round added (issues 24, 25, 26).
    "policies.signals": (
        "policies/signals.py",
        (
            "tests/policies/test_signals_exact.py",
            "tests/policies/test_signals_headers_exact.py",
            "tests/policies/test_signals.py",
            *_SIGNALS,
        ),
    ),
    "policies.profiles": (
        "policies/profiles.py",
        ("tests/policies/test_profiles_exact.py", "tests/policies/test_signals.py", *_SIGNALS),
    ),
    "policies.hosts": ("policies/hosts.py", ("tests/policies/test_hosts.py", "tests/http/test_client_config.py")),
    "policies.hedging": (
        "policies/hedging.py",
        ("tests/grpc/test_hedge_race_exact.py", "tests/grpc/test_hedge_race.py", "tests/grpc/test_sim_hedging.py"),
    ),
    "grpc.config": (
        "grpc/config.py",
        ("tests/grpc/test_grpc_config_exact.py", "tests/grpc/test_grpc_config.py", *_GRPC),
    ),
    "grpc.status": (
        "grpc/status.py",
        (
            "tests/grpc/test_status_exact.py",
            "tests/grpc/test_status_lost.py",
            "tests/grpc/test_grpc_config.py",
            "tests/grpc/test_status.py",
            *_GRPC,
        ),
    ),
    "grpc.rpc": ("grpc/rpc.py", ("tests/grpc/test_rpc_exact.py", *_GRPC)),
    # The channels themselves (issue 29's fifth sweep): every shape over a real loopback server, a second each.
    "grpc.channel": ("grpc/channel.py", ("tests/grpc/test_channel_exact.py", *_GRPC_CHANNEL)),
    "grpc.core": (
        "grpc/core.py",
        ("tests/grpc/test_grpc_core_exact.py", "tests/grpc/test_grpc_sync_exact.py", *_GRPC_CHANNEL),
    ),
    "grpc.sync": ("grpc/sync.py", ("tests/grpc/test_grpc_sync_exact.py", *_GRPC_CHANNEL)),
    "grpc.hedging": (
        "grpc/hedging.py",
        (
            "tests/grpc/test_hedging_exact.py",
            "tests/grpc/test_channel_exact.py",
            "tests/grpc/test_hedge_race.py",
            *_GRPC_CHANNEL,
        ),
    ),
    "grpc.security": (
        "grpc/security.py",
        ("tests/grpc/test_security_exact.py", "tests/grpc/test_security.py", *_GRPC),
    ),
    "websocket.reconnect": (
        "websocket/reconnect.py",
        (
            "tests/websocket/test_reconnect_exact.py",
            "tests/websocket/test_ws_policy.py",
            "tests/websocket/test_herd.py",
        ),
    ),
    "websocket.sequence": ("websocket/sequence.py", ("tests/websocket/test_sequence_exact.py", *_WS)),
    "websocket.client": (
        "websocket/client.py",
        # the exact tests first (two seconds, the scripted server in the test's loop): most mutants die there
        (
            "tests/websocket/test_ws_client_exact.py",
            *_WS,
            "tests/websocket/test_canary.py",
            "tests/websocket/test_ws_budget.py",
        ),
    ),
    # The drivers' smaller parts and the layers' error types (issue 29's fifth sweep, last).
    "websocket.handshake": (
        "websocket/handshake.py",
        ("tests/websocket/test_ws_client_exact.py", "tests/websocket/test_ws_handshake_exact.py", *_WS),
    ),
    "websocket.resync": (
        "websocket/resync.py",
        ("tests/websocket/test_ws_client_exact.py", "tests/websocket/test_ws_resync_exact.py", *_WS),
    ),
    "websocket.config": (
        "websocket/config.py",
        ("tests/websocket/test_ws_client_exact.py", "tests/websocket/test_ws_config_exact.py", *_WS),
    ),
    "websocket.errors": (
        "websocket/errors.py",
        ("tests/websocket/test_ws_errors_exact.py", "tests/websocket/test_ws_client_exact.py", *_WS),
    ),
    "grpc.health": (
        "grpc/health.py",
        (
            "tests/grpc/test_health_exact.py",
            "tests/grpc/test_channel_exact.py",
            "tests/grpc/test_health_probes.py",
            *_GRPC_CHANNEL,
        ),
    ),
    "grpc.replay": (
        "grpc/replay.py",
        (
            "tests/grpc/test_replay_exact.py",
            "tests/grpc/test_channel_exact.py",
            "tests/grpc/test_grpc_sync_exact.py",
            *_GRPC_CHANNEL,
        ),
    ),
    "server.errors": (
        "server/errors.py",
        (
            "tests/server/test_server_errors_exact.py",
            "tests/server/test_middleware_exact.py",
            "tests/server/test_idempotency_guard.py",
            "tests/server/test_keyed.py",
            "tests/server/test_webhook_receiver_paths.py",
            "tests/server/test_idempotency.py",
        ),
    ),
    "webhooks.errors": (
        "webhooks/errors.py",
        (
            "tests/webhooks/test_webhook_errors_exact.py",
            "tests/webhooks/test_webhook_sender_exact.py",
            "tests/webhooks/test_ssrf.py",
            "tests/server/test_signatures_base.py",
            "tests/server/test_webhook_signatures.py",
        ),
    ),
    "telemetry.otel": (
        "telemetry/otel.py",
        (
            "tests/telemetry/test_telemetry_otel_exact.py",
            "tests/telemetry/test_telemetry_otel.py",
            "tests/telemetry/test_telemetry_otel_more.py",
            "tests/queues/test_queue_telemetry.py",
        ),
    ),
}

#: pytest options for every mutant: no shuffling, no plugins that only slow start-up, stop at the first failure.
PYTEST_ARGS = ["-x", "-q", "-p", "no:randomly", "-p", "no:nbval", "-p", "no:cov", "-p", "no:hypothesispytest"]


def prepare(name: str) -> Path:
    """A scratch folder for ``name``: links to the package and tests, and mutmut's configuration."""
    source, tests = TARGETS[name]
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for part in ("integration_kit", "tests"):
        shutil.copytree(ROOT / part, work / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    lines = [
        "[tool.mutmut]",
        'source_paths = ["integration_kit"]',
        f'only_mutate = ["integration_kit/{source}"]',
        f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS)}",
        f"pytest_add_cli_args_test_selection = {json.dumps([t for t in tests if (ROOT / t).exists()])}",
        "",
        "[tool.pytest.ini_options]",
        'testpaths = ["tests"]',
        'markers = ["redis: a private redis-server", "slow: more than a few seconds"]',
        "timeout = 60",
        "",
    ]
    (work / "pyproject.toml").write_text("\n".join(lines))
    return work


def run(name: str, minutes: float, only: Sequence[str] = ()) -> dict[str, int] | None:
    """Run mutmut on ``name`` for at most ``minutes`` (only the mutants matching a glob of ``only``, if given);
    its counts, or ``None`` if it ran out of time."""
    work = prepare(name)
    mutmut = Path(sys.executable).parent / "mutmut"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "INTEGRATION_KIT_HYPOTHESIS_PROFILE": "mutation"}
    print(f"== {name}: mutating integration_kit/{TARGETS[name][0]} (at most {minutes:g} min)", flush=True)
    command = [mutmut, "run", "--max-children", "1", *only]
    process = subprocess.Popen(command, cwd=work, env=env, start_new_session=True)
    try:
        process.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        print(f"== {name}: out of time; partial results follow", flush=True)
    subprocess.run([mutmut, "export-cicd-stats"], cwd=work, env=env, check=False, capture_output=True)
    stats = work / "mutants" / "mutmut-cicd-stats.json"
    if not stats.exists():
        return None
    counts: dict[str, int] = json.loads(stats.read_text())
    return counts


def last_counts(name: str) -> dict[str, int] | None:
    """The counts of the last run of ``name``, if there was one."""
    mutmut = Path(sys.executable).parent / "mutmut"
    if not (WORK / name / "mutants").exists():
        return None
    subprocess.run([mutmut, "export-cicd-stats"], cwd=WORK / name, check=False, capture_output=True)
    stats = WORK / name / "mutants" / "mutmut-cicd-stats.json"
    counts: dict[str, int] = json.loads(stats.read_text())
    return counts


def survivors(name: str) -> list[str]:
    """The names of the mutants of ``name`` that survived its last run."""
    mutmut = Path(sys.executable).parent / "mutmut"
    listing = subprocess.run([mutmut, "results"], cwd=WORK / name, capture_output=True, text=True, check=False)
    return [line.split(":")[0].strip() for line in listing.stdout.splitlines() if line.strip().endswith(": survived")]


def select(names: Sequence[str]) -> list[str]:
    """The targets named, in :data:`TARGETS` order: a module (``http.client``) or a layer (``http``); all if none."""
    if not names:
        return list(TARGETS)
    return [t for t in TARGETS if any(t == n or t.startswith(f"{n}.") for n in names)]


def survival(killed: int, survived: int, timeout: int) -> str:
    """``survived / tested`` as a percentage, where a timeout counts as killed."""
    tested = killed + survived + timeout
    return f"{100 * survived / tested:.1f}%" if tested else "n/a"


def main(argv: list[str]) -> int:
    """Mutate each named module (all by default) in turn and print a table of the results."""
    parser = argparse.ArgumentParser(prog="dev.py mutate", description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="modules or layers to mutate ('http', 'http.client'; default: all)")
    parser.add_argument("--minutes", type=float, default=15.0, help="time bound per module (default: 15)")
    parser.add_argument("--report", action="store_true", help="only print the table of the last runs")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB", help="mutant names to run (repeatable)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if not select([m])]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}; choose from {', '.join(TARGETS)}")
    rows = []
    for name in select(args.modules):
        counts = last_counts(name) if args.report else run(name, args.minutes, args.only)
        rows.append((name, counts))
    header = (
        f"{'module':<20} {'mutants':>8} {'killed':>7} {'survived':>9} {'equivalent':>11} {'timeout':>8} {'no tests':>9}"
    )
    print(f"\n{header} {'survival':>9} {'unexplained':>12}")
    gaps: list[str] = []
    for name, c in rows:
        if c is None:
            print(f"{name:<20} (no results)")
            continue
        alive = survivors(name)
        equivalent = [m for m in alive if m in EQUIVALENT]
        gaps += [m for m in alive if m not in EQUIVALENT]
        real = c["survived"] - len(equivalent)
        print(
            f"{name:<20} {c['total']:>8} {c['killed']:>7} {c['survived']:>9} {len(equivalent):>11} {c['timeout']:>8} "
            f"{c['no_tests']:>9} {survival(c['killed'], c['survived'], c['timeout']):>9} "
            f"{survival(c['killed'], real, c['timeout']):>12}"
        )
    for mutant in gaps:
        print(f"  survived: {mutant}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
