"""The surviving mutants that no behaviour can tell from the original, by mutmut's name, with the reason.

:mod:`mutation` reports these apart from the survivors that are gaps in the tests. mutmut numbers mutants within
a function: when a function changes, its entries here are checked again by the next sweep.
"""

from __future__ import annotations

from mutation_equivalent_delivery import DELIVERY_EQUIVALENT
from mutation_equivalent_drivers import DRIVERS_EQUIVALENT
from mutation_equivalent_io import IO_EQUIVALENT

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

#: The I/O layers' lists live in modules of their own (one per family of layers keeps each under 500 lines).
for _family in (IO_EQUIVALENT, DELIVERY_EQUIVALENT, DRIVERS_EQUIVALENT):
    EQUIVALENT.update(_family)
