"""The surviving mutants that no behaviour can tell from the original, by mutmut's name, with the reason.

:mod:`mutation` reports these apart from the survivors that are gaps in the tests. mutmut numbers mutants within
a function: when a function changes, its entries here are checked again by the next sweep.
"""

from __future__ import annotations

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
    **{
        f"integration_kit.http.client.xǁ_ClientCoreǁ{verb}__mutmut_7": (
            "the verb in lower case: _begin passes every method through safety.checked_method, which upper-cases it"
        )
        for verb in ("get", "post", "put", "patch", "delete")
    },
    **{
        f"integration_kit.http.client.x{cls}ǁjson__mutmut_2": (
            "json()'s default method 'get': _begin upper-cases every method (safety.checked_method)"
        )
        for cls in ("ǁResilientClient", "ǁAsyncResilientClient")
    },
    "integration_kit.http.client.xǁ_ClientCoreǁ_parse_json__mutmut_23": (
        "httpx.Headers.get matches names case-insensitively: the name in another case is the same header"
    ),
    **{
        f"integration_kit.http.client.x{cls}ǁ_open__mutmut_3": (
            "the redirect hook installed without follow_redirects: httpx then sends only the call's own request, "
            "which _begin pinned to the origin, so the hook returns at its same-origin check"
        )
        for cls in ("ǁResilientClient", "ǁAsyncResilientClient")
    },
    **{
        name: "Exchange.reader does not read its action"
        for name in (
            "integration_kit.http.client.xǁResilientClientǁ_attempt__mutmut_12",
            "integration_kit.http.client.xǁAsyncResilientClientǁ_attempt__mutmut_13",
        )
    },
    "integration_kit.http.exchange.xǁExchangeǁresult__mutmut_1": "typing.cast() does nothing at run time",
    **{
        f"integration_kit.server.idempotency.{name}": (
            "json.dumps' default separators only add spaces: every reader decodes with json.loads, and each "
            "compare-and-set compares bytes that this same encode() produced"
        )
        for name in (
            "xǁIdempotencyRecordǁencode__mutmut_17",
            "xǁIdempotencyRecordǁencode__mutmut_19",
            "xǁStoredResponseǁencode__mutmut_10",
            "xǁStoredResponseǁencode__mutmut_12",
        )
    },
    "integration_kit.webhooks.ssrf.xǁDestinationǁrequest__mutmut_12": "httpx upper-cases a request's method",
    "integration_kit.webhooks.ssrf.xǁDestinationǁrequest__mutmut_14": (
        "httpx.Headers matches names case-insensitively: 'HOST' is the Host header"
    ),
    "integration_kit.webhooks.ssrf.x_parse_ipv4_host__mutmut_6": (
        "a host of one empty label: popping it leaves no label, and an empty label is not numeric: None either way "
        "(and resolve_destination refuses an empty host before)"
    ),
    **{
        f"integration_kit.webhooks.ssrf.{name}": "getaddrinfo's addresses do not depend on the port asked for"
        for name in ("x__resolve__mutmut_4", "x__getaddrinfo__mutmut_5")
    },
    **{
        f"integration_kit.webhooks.ssrf.x_resolve_destination__mutmut_{n}": (
            "the port (default or given) is only passed to the resolver, and no address it gives depends on it"
        )
        for n in (34, 35, 36, 37, 38, 39, 40, 41, 42, 59)
    },
    "integration_kit.webhooks.ssrf.x__getaddrinfo__mutmut_9": (
        "without type=SOCK_STREAM getaddrinfo repeats each address once per socket type, in the same order; "
        "resolve_destination keeps the first of each (dict.fromkeys)"
    ),
    "integration_kit.webhooks.ssrf.x__number__mutmut_13": "the label '0' read as octal or decimal is 0",
    "integration_kit.webhooks.ssrf.x__number__mutmut_14": (
        "a two-character octal label '0d' (d from 0 to 7, the only ones _NUMBER lets through) is d in decimal too"
    ),
    "integration_kit.webhooks.sender.xǁWebhookSenderǁrun__mutmut_13": (
        "busy after a store outage 0 -> None: only tested for truth ('if not busy'), so the loop waits either way"
    ),
    **{
        f"integration_kit.webhooks.sender.xǁWebhookSenderǁ_refused__mutmut_{n}": (
            "a refusal is recorded with counted=False: not logged, and the delivery row takes only its outcome, "
            "status and error (next_attempt_at is always given), so its attempt number, time and latency are unread"
        )
        for n in (11, 12, 13, 24)
    },
    **{
        f"integration_kit.telemetry.otel.x__suppress_http_key__mutmut_{n}": (
            "not equivalent, but out of mutmut's reach: the key is read once at import, before mutmut switches a "
            "mutant on; test_http_instrumentation_is_suppressed_inside_an_attempt fails when the change is made in "
            "the source (checked by hand, and in the smoke set)"
        )
        for n in range(1, 9)
    },
    "integration_kit.telemetry.otel.xǁOpenTelemetryHookǁ_start_call__mutmut_15": (
        "parent None: start_span and set_span_in_context then use the current context, which is what is passed"
    ),
    **{
        f"integration_kit.telemetry.otel.xǁOpenTelemetryHookǁ_start_call__mutmut_{n}": (
            "the 'CALL' fallback: a rejected call's event (RejectedCall) has no method, and the other events that "
            "start a call span (AttemptStarted, CallFinished) always have one"
        )
        for n in (18, 21, 24, 27)
    },
    "integration_kit.telemetry.otel.xǁOpenTelemetryHookǁ_finish_call__mutmut_4": (
        "decision {} -> None: _end_attempt tests the attributes for truth, and both are falsy"
    ),
    "integration_kit.telemetry.otel.xǁ_CallTraceǁ__init____mutmut_5": (
        "the initial end time 0 -> None: it is read as 'call.attempt_end or None', None either way"
    ),
    "integration_kit.telemetry.otel.xǁOpenTelemetryHookǁ_end_attempt__mutmut_7": (
        "the reset end time 0 -> None: it is read as 'call.attempt_end or None', None either way"
    ),
    "integration_kit.telemetry.otel.xǁ_AttemptScopeǁ__exit____mutmut_3": (
        "the token reset after detaching: a scope is exited once, so the reset value is never read"
    ),
    "integration_kit.server.idempotency.x__parse_sf_string__mutmut_10": (
        "i + 1 >= end -> i + 2 >= end: differs only for a backslash second to last, which escapes the last "
        "character and leaves no closing quote, so the value is refused (None) either way"
    ),
    **{
        f"integration_kit.http.exchange.x__certificate_failure__mutmut_{n}": (
            "the fallback text when an SSLCertVerificationError has neither verify_message nor reason: the ssl "
            "module sets verify_message on every one it raises, so only a hand-made error reaches it"
        )
        for n in (10, 12, 13)
    },
    **{
        f"integration_kit.http.exchange.x_retry_after_seconds__mutmut_{n}": (
            "httpx.Headers.get matches names case-insensitively: the name in another case is the same header"
        )
        for n in (4, 9)
    },
    **{
        f"integration_kit.http.exchange.x_retry_after_seconds__mutmut_{n}": (
            "no Date: None -> '': both are falsy, and 'now or datetime.now(UTC)' is the only reader"
        )
        for n in (6, 12)
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
    # http/redact.py (issue 29's sweep): each only masks more, or is the same call spelled differently.
    **{
        f"integration_kit.http.redact.x_secret_forms__mutmut_{n}": (
            "base64 decoded without validate=True: a Basic token that is not base64 yields extra decoded forms, "
            "which only mask more (a well-formed token decodes the same)"
        )
        for n in (22, 23)
    },
    **{f"integration_kit.http.redact.x_secret_forms__mutmut_{n}": "codec names are case-insensitive" for n in (25, 47)},
    "integration_kit.http.redact.x_secret_forms__mutmut_26": (
        "the undecodable token's fallback '' -> None: both are falsy, and the next line adds nothing for either"
    ),
    "integration_kit.http.redact.x_secret_forms__mutmut_42": (
        "quote(safe='XXXX'): letters are never percent-encoded, so adding them to the safe set changes nothing"
    ),
    "integration_kit.http.redact.xǁ_HttpLogRedactorǁfilter__mutmut_12": (
        "record.args () -> None: LogRecord.getMessage formats only when args is truthy; both are falsy"
    ),
    # http/safety.py: httpx.Headers matches names case-insensitively, and codec names are case-insensitive.
    **{
        f"integration_kit.http.safety.x_replayable__mutmut_{n}": (
            "a header name in another case: httpx.Headers pops and sets names case-insensitively"
        )
        for n in (31, 32, 35, 36)
    },
    "integration_kit.http.safety.x_checked_headers__mutmut_23": "codec names are case-insensitive",
    # policies/signals.py: the older RateLimit-* family's reset is a delta; any form but "epoch"/"auto" reads so.
    **{
        f"integration_kit.policies.signals.x__quota__mutmut_{n}": (
            "the RateLimit-Reset form 'delta' -> None / 'XXdeltaXX' / 'DELTA': any form but 'epoch' or 'auto' is read "
            "as seconds from now, and the reference is only read for an epoch"
        )
        for n in (5, 6, 13, 14)
    },
    "integration_kit.policies.signals.x__sf_list__mutmut_9": "codec names are case-insensitive",
    **{
        f"integration_kit.policies.signals.x__sf_list__mutmut_{n}": (
            "http_sf.parse(tltype='list') always returns a list of (item, params) pairs with a dict of params, so "
            "the shape checks cannot fail either way"
        )
        for n in (14, 15, 16)
    },
    # http/exchange.py's _answered after the partners' signals (numbers of this round's sweep).
    **{
        f"integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_{n}": (
            "a 200 sent down the error path still ends as a success: the engine decides by the status, and the error "
            "path reads the same signals into the pacer"
        )
        for n in (12, 13)
    },
    **{
        f"integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_{n}": (
            "a 2xx read without its status: the status only decides a refusal (429, 503, the profile's limited "
            "statuses), never a 2xx"
        )
        for n in (22, 26)
    },
    "integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_29": (
        "read_signals returns None only when no header is a signal, and this branch runs only when one is"
    ),
}
