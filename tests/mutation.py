"""Mutation testing with mutmut 3, one module at a time: ``python3 dev.py mutate [MODULE ...] [--minutes N]``.

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

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutmut"

_PURE = ("tests/test_engine.py", "tests/test_engine_edges.py", "tests/test_engine_events.py")
_HTTP = (
    "tests/test_client.py",
    "tests/test_client_guarantees.py",
    "tests/test_async_client.py",
    "tests/faults/test_hardening.py",
)
#: module -> (its source under integration_kit/, the tests that must kill its mutants)
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "retry": ("policies/retry.py", ("tests/test_retry.py", *_PURE)),
    "budget": ("policies/budget.py", ("tests/test_budget.py", "tests/test_shared_budget.py", "tests/test_engine.py")),
    "outcome": ("policies/outcome.py", ("tests/test_clock_outcome.py", *_PURE)),
    "limits": ("policies/limits.py", ("tests/test_limits.py", *_PURE)),
    "breaker.state": ("policies/breaker/state.py", ("tests/test_breaker.py",)),
    "breaker.windows": ("policies/breaker/windows.py", ("tests/test_breaker.py",)),
    "breaker.breaker": (
        "policies/breaker/breaker.py",
        ("tests/test_breaker.py", "tests/test_shared_breaker.py", "tests/test_engine.py"),
    ),
    "breaker.shared": ("policies/breaker/shared.py", ("tests/test_shared_breaker.py",)),
    "engine": ("engine/call.py", (*_PURE, "tests/test_events.py", "tests/test_decorator.py")),
    "http.exchange": ("http/exchange.py", _HTTP),
    "http.client": ("http/client.py", _HTTP),
    "server.idempotency": ("server/idempotency.py", ("tests/test_idempotency.py",)),
    "server.middleware": ("server/middleware.py", ("tests/test_idempotency.py", "tests/test_idempotency_callers.py")),
}

#: Surviving mutants that no behaviour can tell from the original, by mutmut's name, with the reason. A survivor
#: not listed here is a gap in the tests. (mutmut numbers mutants within a function: when a function changes, its
#: entries here are checked again by the next sweep.)
EQUIVALENT: dict[str, str] = {
    "integration_kit.policies.budget.xǁRetryBudgetǁ__init____mutmut_25": (
        "threshold m // 2 -> m / 2: for an integer count t, t > m / 2 exactly when t > m // 2"
    ),
    "integration_kit.policies.budget.xǁRetryBudgetǁrecord_success__mutmut_10": (
        "tokens < max -> tokens <= max: at tokens == max both branches give max"
    ),
    "integration_kit.policies.budget.xǁRetryBudgetǁrecord_failure__mutmut_10": (
        "tokens > 0 -> tokens >= 0: at tokens == 0 both branches give 0"
    ),
    "integration_kit.policies.budget.xǁRetryBudgetǁ_shared_tokens__mutmut_8": (
        "fail closed reads -1 -> -2: any negative count refuses the retry and reads as 0 tokens"
    ),
    "integration_kit.policies.breaker.state.xǁPermitǁrecord_success__mutmut_3": (
        "failed=False -> failed=None: the flag is only ever tested for truth"
    ),
    "integration_kit.policies.breaker.windows.xǁCountWindowǁ__init____mutmut_4": (
        "ring of 0s -> ring of 1s: a slot is read only after it was written (calls == size)"
    ),
    "integration_kit.policies.breaker.windows.xǁTimeWindowǁ__init____mutmut_14": (
        "no newest second: None -> '': both differ from every int second, so the first record opens a bucket"
    ),
    "integration_kit.policies.breaker.windows.xǁTimeWindowǁ__init____mutmut_15": (
        "the newest index is read only when a bucket is open, and the first record opens one"
    ),
    "integration_kit.policies.breaker.windows.xǁTimeWindowǁ__init____mutmut_16": (
        "the newest index is read only when a bucket is open, and the first record opens one"
    ),
    "integration_kit.policies.breaker.windows.xǁTimeWindowǁexpire__mutmut_11": (
        "forgetting the newest second when buckets remain only makes the next record reopen the same bucket; "
        "keeping it when none remain matters only for a clock that goes back a whole window (ours are monotonic)"
    ),
    "integration_kit.policies.breaker.windows.xǁTimeWindowǁexpire__mutmut_12": (
        "no newest second: None -> '': both differ from every int second"
    ),
    "integration_kit.policies.breaker.windows.xǁTimeWindowǁ_open_bucket__mutmut_5": (
        "second < newest -> second <= newest: when equal, second is set to the value it already has"
    ),
    "integration_kit.policies.breaker.windows.xǁTimeWindowǁ_open_bucket__mutmut_14": (
        "not noting a bucket's second only lists the second again in the active queue; both listings leave in "
        "the same expire, and the second _drop subtracts the zeros the first one left (memory, not counts)"
    ),
    "integration_kit.policies.breaker.windows.xǁTimeWindowǁ_open_bucket__mutmut_16": (
        "not remembering the newest second only makes each record reopen its (existing) bucket: slower, same counts"
    ),
    "integration_kit.policies.breaker.windows.xǁTimeWindowǁclear__mutmut_3": (
        "no newest second: None -> '': both differ from every int second"
    ),
    "integration_kit.policies.breaker.windows.xǁTimeWindowǁ_drop__mutmut_7": (
        "an empty bucket's second None -> '': both differ from every int second it is compared with"
    ),
    "integration_kit.policies.breaker.breaker.xǁCircuitBreakerǁ__init____mutmut_41": (
        "with no slow_call_duration no call is slow, so the slow-rate threshold is never reached either way"
    ),
    "integration_kit.policies.breaker.breaker.xǁCircuitBreakerǁtry_acquire__mutmut_1": (
        "skipping the CLOSED fast path: _admit() hands out the same permit (slower, same result)"
    ),
    "integration_kit.policies.breaker.breaker.xǁCircuitBreakerǁacquire__mutmut_1": (
        "skipping the CLOSED fast path: _admit() hands out the same permit (slower, same result)"
    ),
    "integration_kit.policies.breaker.breaker.xǁCircuitBreakerǁ_record_closed__mutmut_11": (
        "a count window ignores the time it is given"
    ),
    "integration_kit.policies.breaker.breaker.xǁCircuitBreakerǁ_record_closed__mutmut_12": (
        "a count window ignores the time it is given"
    ),
    "integration_kit.engine.call.xǁCallEngineǁcall__mutmut_2": (
        "'CALL' -> 'call': the method is upper-cased on the next line"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_35": (
        "status None -> None: no attempt was made before the rate limiter refuses"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_80": (
        "status None -> None: no attempt was made before the bulkhead refuses"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_36": (
        "history [] -> None: with_context() leaves the attempts empty either way"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_81": (
        "history [] -> None: with_context() leaves the attempts empty either way"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_62": (
        "left <= 1e-6 -> left < 1e-6: differs only at exactly one microsecond left"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_105": (
        "reading the clock when nothing waited gives the start time again (an optimisation)"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_110": (
        "reading the clock for attempt 1 gives the time already taken after admission"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_fail__mutmut_10": (
        "every error given a cause here is new and has none, so 'and' and 'or' agree"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_fail__mutmut_17": (
        "an error's status always comes from the call's last outcome: the fallback is equal"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_fail__mutmut_22": (
        "an error's status always comes from the call's last outcome: the fallback is equal"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_fail__mutmut_23": (
        "an error's status always comes from the call's last outcome: the fallback is equal"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_reject__mutmut_12": (
        "the only caller that passes a cause also raises 'from' it"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_reject__mutmut_15": (
        "the only caller that passes a cause also raises 'from' it"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_136": (
        "status None -> None in the call's context: the error's own status (the same outcome's) is used first"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_355": (
        "status None -> None in the call's context: the error's own status (the same outcome's) is used first"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_416": (
        "status None -> None in the call's context: the error's own status (the same outcome's) is used first"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_453": (
        "status None -> None in the call's context: the error's own status (the same outcome's) is used first"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_156": (
        "the cause of a circuit-open rejection: the raise names it with 'from' as well"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_160": (
        "the cause of a circuit-open rejection: the raise names it with 'from' as well"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_262": (
        "recorded True -> None/False: release() after a recorded outcome is a no-op"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_263": (
        "recorded True -> None/False: release() after a recorded outcome is a no-op"
    ),
    "integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_197": (
        "the prebuilt first Send equals Send(1, None, None) (an optimisation)"
    ),
    **{
        f"integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_{n}": (
            "the inline 2xx check is a fast path: classify() gives the same verdict when it is skipped"
        )
        for n in (237, 238, 243, 244, 245)
    },
    **{
        f"integration_kit.engine.call.xǁCallEngineǁ_run__mutmut_{n}": (
            "queued False -> None/True, or reading the clock anyway: with nothing queued no Wait was yielded, so "
            "the clock still reads the call's start (reading it is what the flag saves)"
        )
        for n in (10, 11)
    },
    **{
        f"integration_kit.engine.call.x_{driver}__mutmut_10": (
            "continue -> break after gen.throw(): the engine ends the call on every refusal it is thrown, so throw() "
            "always raises and the statement after it is never reached"
        )
        for driver in ("run_sync", "run_async")
    },
    "integration_kit.policies.breaker.shared.xǁSharedRecordǁdecode__mutmut_5": (
        "the record of an empty store is CLOSED at generation 0, like a fresh breaker: no transition reads its wait"
    ),
    "integration_kit.policies.breaker.shared.xǁSharedRecordǁdecode__mutmut_14": (
        "the record of an empty store is CLOSED at generation 0, like a fresh breaker: no transition reads its wait"
    ),
    "integration_kit.policies.breaker.shared.xǁSharedRecordǁdecode__mutmut_6": (
        "the record of an empty store never yields a transition, so its reason is never read"
    ),
    "integration_kit.policies.breaker.shared.xǁSharedRecordǁdecode__mutmut_15": (
        "the record of an empty store never yields a transition, so its reason is never read"
    ),
    "integration_kit.policies.breaker.shared.xǁSharedRecordǁdecode__mutmut_16": (
        "the record of an empty store never yields a transition, so its reason is never read"
    ),
    "integration_kit.policies.breaker.shared.xǁSharedRecordǁencode__mutmut_7": (
        "the record is a JSON array: the key separator is never written"
    ),
    "integration_kit.policies.breaker.shared.xǁSharedModeǁ_admit_shared__mutmut_28": (
        "an unrecorded permit's generation -1 -> None: neither matches a real generation (>= 0)"
    ),
    "integration_kit.policies.breaker.shared.xǁSharedModeǁ_admit_shared__mutmut_34": (
        "an unrecorded permit's generation -1 -> -2: neither matches a real generation (>= 0)"
    ),
    "integration_kit.policies.breaker.shared.xǁSharedModeǁ_share__mutmut_14": (
        "the expected value of the first compare-and-set, None -> '': only _publish reads it, for a permit of the "
        "current generation, and that permit's admission read the store and set it first"
    ),
    **{
        f"integration_kit.policies.breaker.shared.xǁSharedModeǁ_propose_trip__mutmut_{n}": (
            "the proposed trip only carries its reason to _publish; the transition listeners get is built by "
            "_adopt once the compare-and-set wins, so its name, old state, new state and time are never read"
        )
        for n in (1, 2, 3, 5)
    },
    **{
        f"integration_kit.server.middleware.{name}": "codec names are case-insensitive: 'LATIN-1' is 'latin-1'"
        for name in (
            "xǁIdempotencyMiddlewareǁ__init____mutmut_33",
            "xǁIdempotencyMiddlewareǁ_replay__mutmut_21",
            "xǁIdempotencyMiddlewareǁ_replay__mutmut_24",
            "xǁIdempotencyMiddlewareǁ_keyed__mutmut_46",
            "xǁ_ResponseRecorderǁsend__mutmut_19",
            "xǁ_ResponseRecorderǁsend__mutmut_24",
        )
    },
    **{
        f"integration_kit.server.middleware.{name}": (
            "ASGI's more_body defaults to False: a message without the key (or a falsy default) is the same"
        )
        for name in (
            "x__problem__mutmut_39",
            "x__problem__mutmut_40",
            "xǁIdempotencyMiddlewareǁ_replay__mutmut_44",
            "xǁIdempotencyMiddlewareǁ_replay__mutmut_45",
            "xǁIdempotencyMiddlewareǁ_execute__mutmut_13",
            "xǁIdempotencyMiddlewareǁ_execute__mutmut_14",
            "xǁ_ResponseRecorderǁsend__mutmut_47",
            "xǁ_ResponseRecorderǁsend__mutmut_49",
        )
    },
    **{
        f"integration_kit.server.middleware.xǁIdempotencyMiddlewareǁ__init____mutmut_{n}": (
            "the header name is lower-cased once, in __init__"
        )
        for n in (3, 4)
    },
    **{
        f"integration_kit.server.middleware.xǁIdempotencyMiddlewareǁ__init____mutmut_{n}": (
            "the guard's clock only stamps a record's created and expires fields, which nothing reads: claims and "
            "records expire by the store's TTL, on the store's clock"
        )
        for n in (18, 23)
    },
    "integration_kit.server.middleware.xǁIdempotencyMiddlewareǁ_execute__mutmut_2": (
        "replayed_body False -> None: only tested for truth"
    ),
    "integration_kit.server.middleware.xǁ_ResponseRecorderǁsend__mutmut_54": (
        "finished True -> False: as mutant 53, the completed claim is released, which changes nothing"
    ),
    "integration_kit.server.middleware.xǁ_ResponseRecorderǁsend__mutmut_53": (
        "finished True -> None: the claim is then released after it was completed, and release() is a "
        "compare-and-set on the claim's own record, which completion replaced, so it changes nothing"
    ),
    **{
        f"integration_kit.server.middleware.xǁ_ResponseRecorderǁ__init____mutmut_{n}": (
            "ASGI sends http.response.start before any body, so the status is set before it is read"
        )
        for n in (4, 5)
    },
    "integration_kit.server.middleware.xǁ_ResponseRecorderǁ__init____mutmut_10": (
        "finished False -> None: only tested for truth"
    ),
    **{
        f"integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_{n}": (
            "a 200 sent down the error path still ends as a success: the engine decides by the status (the error "
            "built for it is never read)"
        )
        for n in (5, 6)
    },
    "integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_35": "codec names are case-insensitive",
    "integration_kit.http.exchange.xǁBodyǁcheck_deadline__mutmut_3": (
        "monotonic() > expires -> >=: differs only when two float readings are equal to the last bit"
    ),
    **{
        name: (
            "redundant: the body check of the deadline is defence in depth; the deadline backend ends every socket "
            "read at the attempt's expiry first (why the smoke set dropped body_read_deadline_removed), so the "
            "check is reached past the expiry only by a process starved of CPU between two reads"
        )
        for name in (
            "integration_kit.http.exchange.xǁBodyǁ__init____mutmut_6",
            "integration_kit.http.exchange.xǁBodyǁ__init____mutmut_7",
            "integration_kit.http.exchange.xǁExchangeǁreader__mutmut_10",
        )
    },
    **{
        f"integration_kit.http.exchange.xǁExchangeǁreader__mutmut_{n}": "strict -> None: only tested for truth"
        for n in (8, 19)
    },
    **{
        f"integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_{n}": (
            "the response kept on a failed outcome is never read: the clients' engine has no classifier, so only a "
            "2xx outcome is returned and its value read"
        )
        for n in (63, 68)
    },
    **{
        f"integration_kit.http.client.xǁ_ClientCoreǁ_guard_redirect__mutmut_{n}": (
            "httpx.Headers.pop matches names case-insensitively: the name in another case is the same header"
        )
        for n in (4, 5, 7, 8, 10, 11)
    },
    **{
        f"integration_kit.http.client.xǁ_ClientCoreǁ_guard_redirect__mutmut_{n}": (
            "redundant with httpx, which drops Authorization on a redirect to another origin and Cookie on every "
            "redirect (the cookie jar sets it again); the hook's own list matters for the credential's header"
        )
        for n in (3, 9)
    },
    **{
        f"integration_kit.http.client.xǁ_ClientCoreǁ_guard_redirect__mutmut_{n}": (
            "the refusal's integration and method: the engine fills both from the call when the refusal ends it"
        )
        for n in (24, 25, 27, 28)
    },
    "integration_kit.http.client.xǁ_ClientCoreǁ_guard_redirect__mutmut_6": (
        "redundant: a caller cannot set Proxy-Authorization (http.safety refuses it as a routing header), and "
        "httpx adds a proxy's credential in the transport, not on the request the hook sees"
    ),
    "integration_kit.policies.outcome.x_classify__mutmut_6": (
        "a missing status as 0 -> 1: both are below 200 and 500, a refusal either way"
    ),
    "integration_kit.policies.limits.xǁRateLimiterǁtry_acquire__mutmut_3": (
        "now > last -> now >= last: at now == last the refill adds nothing"
    ),
    "integration_kit.policies.limits.xǁRateLimiterǁtry_acquire__mutmut_11": (
        "tokens < burst -> tokens <= burst: at tokens == burst both give burst"
    ),
    "integration_kit.policies.limits.xǁRateLimiterǁtry_acquire__mutmut_15": (
        "tokens >= 1 - eps -> tokens > 1 - eps: differs only at exactly 1 - 1e-9 tokens"
    ),
    "integration_kit.policies.limits.xǁRateLimiterǁtry_acquire__mutmut_20": (
        "a token taken from [1 - 1e-9, 1] leaves 0 or at most 1e-9 below it: within the limiter's epsilon"
    ),
    "integration_kit.policies.limits.xǁRateLimiterǁtry_acquire__mutmut_23": (
        "tokens > 1 -> tokens >= 1: at exactly 1 token both leave 0"
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
        f"pytest_add_cli_args_test_selection = {json.dumps(list(tests))}",
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


def survival(killed: int, survived: int, timeout: int) -> str:
    """``survived / tested`` as a percentage, where a timeout counts as killed."""
    tested = killed + survived + timeout
    return f"{100 * survived / tested:.1f}%" if tested else "n/a"


def main(argv: list[str]) -> int:
    """Mutate each named module (all by default) in turn and print a table of the results."""
    parser = argparse.ArgumentParser(prog="dev.py mutate", description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", choices=[[], *TARGETS], help="modules to mutate (default: all)")
    parser.add_argument("--minutes", type=float, default=15.0, help="time bound per module (default: 15)")
    parser.add_argument("--report", action="store_true", help="only print the table of the last runs")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB", help="mutant names to run (repeatable)")
    args = parser.parse_args(argv)
    rows = []
    for name in args.modules or list(TARGETS):
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
