"""The surviving mutants of the I/O layers (issue 29: ``http``, ``server``, ``webhooks``, ``queues``, ``telemetry``,
the partners' signals) that no behaviour can tell from the original, by mutmut's name, with the reason.

:mod:`mutation_equivalent` merges them into ``EQUIVALENT``; the layout is the same (see that module).
"""

from __future__ import annotations

#: The I/O layers' equivalent survivors, by mutmut's name, with the reason.
IO_EQUIVALENT: dict[str, str] = {
    **{
        f"integration_kit.server.middleware.{name}": "codec names are case-insensitive: 'LATIN-1' is 'latin-1'"
        for name in (
            "xǁIdempotencyMiddlewareǁ__init____mutmut_33",
            "xǁIdempotencyMiddlewareǁ_replay__mutmut_21",
            "xǁIdempotencyMiddlewareǁ_replay__mutmut_24",
            "xǁIdempotencyMiddlewareǁ_keyed__mutmut_46",
            "xǁIdempotencyMiddlewareǁ__call____mutmut_37",
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
            "x__read_body__mutmut_25",
            "x__read_body__mutmut_27",
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
            "integration_kit.http.client.xǁAsyncResilientClientǁ_attempt__mutmut_12",
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
    "integration_kit.policies.signals.x_read_signals__mutmut_3": (
        "the Date found starts as '' instead of None: _reference treats both alike (no Date: measured from now)"
    ),
    "integration_kit.policies.signals.x__number__mutmut_18": (
        "isfinite(value) or True: float() of at most 20 digits and dots is below 1e20, never infinite or NaN"
    ),
    "integration_kit.policies.signals.x__shopify_quota__mutmut_8": (
        "partition -> rpartition on 'used/size': with one '/' both split alike, and with more one side holds a '/', "
        "which no integer reads, so the bucket is None either way"
    ),
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
    # http.auth: the one survivor of the whole-module sweep after tests/http/test_auth.py (issue 29).
    "integration_kit.http.auth.xǁBasicAuthǁload__mutmut_28": "codec names are case-insensitive: 'ASCII' is 'ascii'",
    # server.signatures: the survivors of the whole-module sweep after test_signatures_base/_schemes.py (issue 29).
    "integration_kit.server.signatures.xǁWebhookSchemeǁ_timestamp__mutmut_28": (
        "skew > 0 -> >= 0: the age is named only when |skew| > tolerance > 0, so skew is never 0 there"
    ),
    **{
        f"integration_kit.server.signatures.{name}": (
            "digest names are case-insensitive: hmac.new(..., 'SHA256') is sha256"
        )
        for name in ("xǁWebhookSchemeǁ_mac__mutmut_2", "xǁWebhookSchemeǁ_match__mutmut_2")
    },
    "integration_kit.server.signatures.x__unhex__mutmut_2": (
        "the isascii() guard made always true: bytes.fromhex refuses every non-ASCII character with the ValueError "
        "caught below, so None either way"
    ),
    "integration_kit.server.signatures.x__unbase64__mutmut_7": "codec names are case-insensitive: 'ASCII' is 'ascii'",
    **{
        f"integration_kit.server.signatures.{name}": (
            "partition -> rpartition: a value in base64 or hex holds no ',' or '=', so an entry yields a candidate "
            "exactly when it holds one separator, where both split alike; any other entry is skipped or malformed "
            "with the same error either way"
        )
        for name in ("xǁStandardWebhooksǁverify__mutmut_45", "xǁGitHubSignatureǁverify__mutmut_11")
    },
    "integration_kit.server.signatures.xǁStripeSignatureǁsign__mutmut_1": (
        "Stripe's sign() never reads msg_id (the event id is in the body)"
    ),
    "integration_kit.server.signatures.xǁGitHubSignatureǁverify__mutmut_37": (
        "the error for a missing or too long X-GitHub-Delivery is caught at once (the body's hash stands in): "
        "the scheme name it carries is never seen"
    ),
    # server.keyed: the one survivor of the whole-module sweep after tests/server/test_keyed.py (issue 29).
    "integration_kit.server.keyed.x_idempotent__mutmut_34": (
        "typing.cast(None, fn) returns fn unchanged: cast does nothing at run time"
    ),
    # http.config: the survivors of the whole-module sweep after tests/http/test_config_exact.py (issue 29).
    **{
        f"integration_kit.http.config.xǁClientConfigǁ_apply_profile__mutmut_{n}": (
            "<= -> <: when the profile's set equals the configured one, the union is that same set, so the policy "
            "(or the methods) put back is equal to the one there"
        )
        for n in (5, 21)
    },
    **{
        f"integration_kit.http.config.xǁClientConfigǁfrom_mapping__mutmut_{n}": (
            "from_mapping skipping its own auth conversion: the constructor builds an auth table itself, under the "
            "same field (auth.*) and with the same message"
        )
        for n in (47, 48)
    },
    **{
        f"integration_kit.http.config.xǁClientConfigǁfrom_mapping__mutmut_{n}": (
            "from_mapping's own _strings() of idempotency_methods and redact_query_params: check_table has already "
            "refused anything but an array of strings, so it cannot fail, and the constructor converts the array "
            "itself"
        )
        for n in (59, 60, 61, 62, 66, 67, 72, 73, 74)
    },
    "integration_kit.http.config.xǁClientConfigǁfrom_env__mutmut_74": (
        "the default of a missing _DEADLINE, '' -> 'XXXX': neither is 'none' or 'off', and _env_number reads the "
        "variable itself"
    ),
    "integration_kit.http.config.x__token__mutmut_8": "X is alphanumeric: adding it to the token symbols adds nothing",
    # http.exchange: _answered re-checked by name (issue 29, this sweep). Its mutants were renumbered since the
    # entries 5, 6, 35, 63 and 68 were written: those numbers are now other mutants, all killed, so the entries were
    # dropped; their reasons hold for the mutants below (the 200 down the error path is 12 and 13, listed above).
    "integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_49": "codec names are case-insensitive",
    "integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_121": (
        "the response kept on a failed outcome is never read: the clients' engine has no classifier, so only a 2xx "
        "outcome is returned and its value read"
    ),
    "integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_54": (
        "the signals read on every refusal: with no signal header and no min_limited_wait, read_signals returns "
        "None (_limited_without_headers needs min_limited_wait), which is what skipping it gives"
    ),
    "integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_69": (
        "should_retry None -> '': only ever compared by identity with True and False (decide_retry, the engine's "
        "rejected check, hedging), where '' is neither, as None"
    ),
    "integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_70": "limited False -> None: only tested for truth",
    **{
        f"integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_{n}": (
            "error_for_status gets retry_after: it reads it only for a 429 or 503, which reach it with None (a 429 "
            "with any signal, and a 503 with an explicit wait or an exhausted quota, are rate limited and take "
            "the RateLimited branch; a 503 without is given the hint's retry_after, None); a 409 may bring a wait, "
            "which its ClientError or ServerError does not carry"
        )
        for n in (108, 113)
    },
    # http.backend: the edges where both branches give the same thing
    "integration_kit.http.backend.x_held__mutmut_12": (
        "left < timeout -> left <= timeout: at equality both branches return the same value as a plain float "
        "(left is a float, float(timeout) drops the HeldTimeout type)"
    ),
    **{
        f"integration_kit.http.backend.{name}": (
            "len(buffer) <= WRITE_PIECE -> <: a buffer of exactly WRITE_PIECE bytes then goes through the loop, "
            "which writes it as one piece of the same bytes with the same held timeout: one call, same arguments"
        )
        for name in ("xǁ_Streamǁwrite__mutmut_1", "xǁ_AsyncStreamǁwrite__mutmut_1")
    },
    # http.transport: httpx's own handling, defaults never used, an instant no clock can hit
    "integration_kit.http.transport.x__pool__mutmut_26": (
        "an SSLContext given as verify passed through httpx.create_ssl_context: httpx (0.28 and later) returns the "
        "same context object, so the pool gets it either way"
    ),
    **{
        f"integration_kit.http.transport.xǁ_Phaseǁ__init____mutmut_{n}": (
            "the default name is never used: both callers pass one (_AsyncComposed its silence or 'unknown', "
            "_AsyncHeldStream 'read')"
        )
        for n in (1, 2)
    },
    "integration_kit.http.transport.xǁ_HeldStreamǁ__iter____mutmut_1": (
        "monotonic() > expires -> >=: differs only at the instant the clock equals the expiry, which no read can be "
        "placed on; before it and after it both read or both refuse"
    ),
    # http.client: the functions the last sweep did not reach
    **{
        f"integration_kit.http.client.xǁ_ClientCoreǁ_exchange_context__mutmut_{n}": (
            "framed=None (14: framed left out, its default False): every body is then fed through Body.feed "
            "chunk by chunk, never read whole by httpx; the whole read is a shortcut taken only for a body "
            "httpcore frames within the bound, where both give the same bytes, size check and expiry check"
        )
        for n in (6, 14)
    },
    # telemetry.otel, http.exchange: the fifth sweep (session 33), the parts the earlier time bounds did not reach
    **{
        f"integration_kit.telemetry.otel.xǁOpenTelemetryHookǁ__init____mutmut_{n}": (
            "a ContextVar's name: shown only in its repr; the variable is told apart by identity"
        )
        for n in (20, 21, 27, 28)
    },
    "integration_kit.telemetry.otel.xǁOpenTelemetryHookǁ_start_call__mutmut_28": (
        "the 'CALL' fallback as 'call': RejectedCall has no method but takes the other branch; AttemptStarted and "
        "CallFinished always have one, so the fallback is never read"
    ),
    **{
        f"integration_kit.telemetry.otel.xǁOpenTelemetryHookǁ_start_call__mutmut_{n}": (
            "the kind test of the method line: a RejectedCall has no method, so getattr falls back to 'CALL', the "
            "value of the other branch"
        )
        for n in (30, 31)
    },
    **{
        f"integration_kit.telemetry.otel.xǁOpenTelemetryHookǁ_start_call__mutmut_{n}": (
            "parent None (or left out): start_span and set_span_in_context then use the current context, which is "
            "what parent holds (read at the start of the same function, nothing attached since)"
        )
        for n in (45, 63, 65)
    },
    **{
        f"integration_kit.http.exchange.x_read_response__mutmut_{n}": (
            "an upper-cased header name: httpx.Headers looks names up case-insensitively ('in', del, pop)"
        )
        for n in (3, 7, 12)
    },
    **{
        f"integration_kit.http.exchange.xǁExchangeǁreader__mutmut_{n}": (
            "a header name upper-cased (Content-Length, Content-Encoding): httpx.Headers matches names "
            "case-insensitively"
        )
        for n in (14, 41)
    },
    "integration_kit.http.exchange.xǁExchangeǁprepare__mutmut_21": (
        "remaining >= longest -> >: at remaining == longest no phase is None (longest is finite) and each is at "
        "most remaining, so the clipped phases min(v, remaining) are the configured ones"
    ),
    "integration_kit.http.exchange.xǁExchangeǁscope__mutmut_4": (
        "'if hooks else None' always taken: no hooks give an empty list, falsy like None, so the null scope"
    ),
    "integration_kit.http.exchange.xǁExchangeǁscope__mutmut_16": "typing.cast() does nothing at run time",
    "integration_kit.http.exchange.xǁExchangeǁ_answered__mutmut_127": (
        "value=response left out of a failed outcome (None): as _answered__mutmut_121, the response kept on a "
        "failed outcome is never read"
    ),
}
