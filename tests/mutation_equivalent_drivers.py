"""The surviving mutants of the gRPC and WebSocket drivers (``grpc``, ``websocket``) and the hedging race
that no behaviour can tell from the original, by mutmut's name, with the reason.

:mod:`mutation_equivalent` merges them into ``EQUIVALENT``; the layout is the same (see that module).
"""

from __future__ import annotations

#: The equivalent survivors of these modules, by mutmut's name, with the reason.
DRIVERS_EQUIVALENT: dict[str, str] = {
    # grpc.status: the status boundary.
    "integration_kit.grpc.status.x_parse_pushback__mutmut_9": ("codec names are case-insensitive: 'ASCII' is 'ascii'"),
    **{
        f"integration_kit.grpc.status.x_outcome_for_error__mutmut_{n}": (
            "the status given to the error's constructor (or its default, 429) is overwritten at once by "
            "attempt_error.status = status, and the constructors only store it"
        )
        for n in (48, 51, 61, 67)
    },
    **{
        f"integration_kit.grpc.status.x__pairs__mutmut_{n}": (
            "list(metadata) of a list or tuple holds the same items, and iterating grpc.aio.Metadata in the "
            "comprehension gives what list() would: the same pairs either way"
        )
        for n in (3, 4)
    },
    "integration_kit.grpc.status.x__pairs__mutmut_7": (
        "every metadatum grpcio hands out is a tuple (cygrpc's pairs, aio Metadata's pairs, the beta _Metadatum "
        "namedtuple), so item[0], item[1] is item.key, item.value wherever the .key branch could run"
    ),
    # grpc.config: the service config reader.
    "integration_kit.grpc.config.xǁServiceConfigǁparse__mutmut_54": (
        "the place named by the second _table(at, entry) call: the entry passed the first one (with its keys) on the "
        "line above, so this one never raises and its place is never shown"
    ),
    "integration_kit.grpc.config.xǁServiceConfigǁmethod__mutmut_3": (
        "partition -> rpartition: a gRPC method's full name is /service/method with one slash after the leading "
        "one (a service name holds dots, never a slash), so both split it the same way"
    ),
    "integration_kit.grpc.config.x__retry__mutmut_100": (
        "jitter='full' dropped: RetryPolicy's default jitter is 'full' (A6's random(0, ...) backoff), the same value"
    ),
    # grpc.security: the loopback rule's target reading and the credential.
    "integration_kit.grpc.security.x_split_target__mutmut_3": (
        "splitting a target without ':///' gives [target], whose last item is the target itself"
    ),
    "integration_kit.grpc.security.x_split_target__mutmut_11": (
        "[-1] -> [+1]: split(':///', 1) of a target holding ':///' has exactly two items, so [1] is [-1]"
    ),
    "integration_kit.grpc.security.x_split_target__mutmut_43": (
        "rpartition -> partition: taken only when the target holds exactly one ':', where both split at it"
    ),
    **{
        f"integration_kit.grpc.security.x_split_target__mutmut_{n}": (
            "the (rest, '', '') of a target with no single ':': the middle is discarded, and a port 'XXXX' is no "
            "more digits than '', so the port is None either way"
        )
        for n in (49, 50)
    },
    **{
        f"integration_kit.grpc.security.xǁMetadataCredentialǁload__mutmut_{n}": (
            "a missing variable read as None instead of '': both are falsy, so the same 'is not set' error is raised "
            "before the value is used"
        )
        for n in (3, 5)
    },
    # grpc.core: what the sync and async channels share (session 33).
    "integration_kit.grpc.core.xǁChannelCoreǁ__init____mutmut_8": (
        "request_id_key's default 'x-request-id' -> 'X-REQUEST-ID': the key is lowered at once (request_id_key.lower())"
    ),
    "integration_kit.grpc.core.xǁChannelCoreǁ_begin__mutmut_7": (
        "'if caller' -> 'if caller or True': next() over an empty caller's metadata finds no request id either, None"
    ),
    "integration_kit.grpc.core.xǁChannelCoreǁ_begin__mutmut_32": (
        "'if self._auth' -> always: with no credential, (*(), *caller) is a tuple equal to caller (already a tuple)"
    ),
    **{
        f"integration_kit.grpc.core.x__levels__mutmut_{n}": (
            "an unknown idempotency option's default UNKNOWN -> None: GetOptions().idempotency_level is a closed "
            "proto2 enum (descriptor.proto) whose only values, 0, 1 and 2, are all in _IDEMPOTENCY_OPTION"
        )
        for n in (5, 7)
    },
    "integration_kit.grpc.core.x__levels__mutmut_12": (
        "an Idempotency given as it is -> Idempotency(level): an Enum called with one of its members returns it"
    ),
    # grpc.sync: the sync ResilientChannel (session 33).
    **{
        f"integration_kit.grpc.sync.xǁResilientChannelǁ{shape}__mutmut_1": (
            "_registered_method's default False -> True: grpcio's generated stubs pass it, and the channel never "
            "reads it (its own grpc multicallables are made without it)"
        )
        for shape in ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
    },
    **{
        f"integration_kit.grpc.sync.xǁ{shape}ǁ__init____mutmut_{n}": (
            "hedged=False -> hedged=None: _plan only tests it for truth ('config.hedging if hedged and safe')"
        )
        for shape, n in (("_UnaryUnary", 6), ("_UnaryStream", 6), ("_StreamUnary", 5))
    },
    **{
        f"integration_kit.grpc.sync.xǁ{shape}ǁ{function}__mutmut_{n}": (
            "typing.cast's type argument changed: cast returns its value unchanged at run time, whatever the type"
        )
        for shape, function, numbers in (
            ("_UnaryStream", "__call__", (8, 12, 13, 14, 26, 30, 31, 32)),
            ("_StreamUnary", "_send", (2, 6, 7, 8)),
        )
        for n in numbers
    },
    # grpc.channel: the async resilient channel (fifth sweep).
    **{
        f"integration_kit.grpc.channel.xǁAsyncResilientChannelǁ{shape}__mutmut_1": (
            "_registered_method's default False -> True: the parameter is accepted for grpcio's generated stubs and "
            "never read"
        )
        for shape in ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
    },
    **{
        f"integration_kit.grpc.channel.xǁ{cls}ǁ__init____mutmut_{n}": (
            "self._method = None: the multicallable's _method is never read (its plan holds the method)"
        )
        for cls, n in (("_AsyncUnaryUnary", 2), ("_AsyncUnaryStream", 3))
    },
    "integration_kit.grpc.channel.xǁ_AsyncUnaryUnaryǁ__init____mutmut_10": (
        "_direct = None: every call takes _attempt, which with no hedging policy and no health checks awaits _gate "
        "(None at once: not health_checks) and then the same _send(rpc, kwargs, None, action): the same sends"
    ),
    **{
        f"integration_kit.grpc.channel.xǁ{cls}ǁ__init____mutmut_{n}": (
            "_plan(method, hedged=None): _plan reads 'hedged and safe', and None is as false as False"
        )
        for cls, n in (("_AsyncUnaryStream", 7), ("_AsyncStreamUnary", 5))
    },
    **{
        f"integration_kit.grpc.channel.xǁ_AsyncUnaryStreamǁ_stream__mutmut_{n}": (
            "typing.cast's first argument (the type, or its string) is not read at run time: cast returns its value"
        )
        for n in (6, 10, 11, 12, 34, 38, 39, 40)
    },
    # websocket.reconnect: the shared reconnect policy.
    "integration_kit.websocket.reconnect.xǁReconnectPolicyǁ__post_init____mutmut_21": (
        "float('INF') is float('inf'): float() reads the name in any case"
    ),
    "integration_kit.websocket.reconnect.xǁReconnectPolicyǁretry_policy__mutmut_13": (
        "retry_on_status dropped: RetryPolicy's default is the same set, {408, 429, 500, 502, 503, 504}"
    ),
    "integration_kit.websocket.reconnect.x__close_codes__mutmut_12": (
        "TypeError(key) -> TypeError(None): the TypeError is caught at once and replaced by a ConfigurationError "
        "raised from None, so its argument is never seen"
    ),
    "integration_kit.websocket.reconnect.x__close_codes__mutmut_29": (
        "a CloseClass given as it is -> CloseClass(value): an Enum called with one of its members returns that member"
    ),
    # policies.hedging: the sans-I/O hedging race.
    "integration_kit.policies.hedging.xǁHedgeRaceǁ__init____mutmut_6": (
        "_stopped False -> None: only ever tested for truth, and set to True when the race stops"
    ),
    # websocket.client: the ResilientWebSocket driver.
    **{
        f"integration_kit.websocket.client.xǁResilientWebSocketǁ__init____mutmut_{n}": (
            "the first value of _attempt_no, _up_since or _last_message (0 -> None or 1): each is assigned by the "
            "handshake (_attempt, _connect) before anything reads it, and nothing reads them without a connection"
        )
        for n in (50, 51, 52, 53, 55, 56)
    },
    "integration_kit.websocket.client.xǁResilientWebSocketǁ__init____mutmut_61": (
        "_closing False -> None: only ever tested for truth, and set to True by close()"
    ),
    **{
        f"integration_kit.websocket.client.xǁResilientWebSocketǁ_connect__mutmut_{n}": (
            "_attempt_no reset to None or 1 before the handshake: a successful handshake went through _attempt, "
            "which sets it to the attempt's number before WsConnected reads it; a failed one raises first"
        )
        for n in (1, 2)
    },
    "integration_kit.websocket.client.xǁResilientWebSocketǁ_connect__mutmut_17": (
        "method 'connect' for 'CONNECT': CallEngine.call upper-cases the method first"
    ),
    **{
        f"integration_kit.websocket.client.xǁResilientWebSocketǁ_headers__mutmut_{n}": (
            "the order of the redactor's secrets (by length, reversed or not, or by value): its only reader, "
            "redact_text, sorts them longest first itself"
        )
        for n in (16, 19, 20, 22)
    },
    **{
        f"integration_kit.websocket.client.xǁResilientWebSocketǁ_lost__mutmut_{n}": (
            "the code given to decide_reconnect when the verdict is 'stale' (the code itself instead of None): "
            "the only caller with verdict='stale', _stale, passes code None"
        )
        for n in (11, 14, 15)
    },
    "integration_kit.websocket.client.xǁResilientWebSocketǁ_deliverable__mutmut_76": (
        "'sequence_of is not None' forced true for a resync filler: the branch runs only when seq is not None, "
        "which needs sequence_of"
    ),
    **{
        f"integration_kit.websocket.client.x__query_pairs__mutmut_{n}": (
            "keep_blank_values dropped: blank values are never secrets (secret_query_values skips empty values), "
            "and _query_pairs has no other reader"
        )
        for n in (2, 4, 6)
    },
    **{
        f"integration_kit.websocket.client.x__discard__mutmut_{n}": (
            "an exception type dropped from the suppress() of close()'s reader of unread messages: its task ends "
            "with ConnectionClosed or ConcurrencyError only to be cancelled at once by close(), and Future.cancel() "
            "clears the 'exception never retrieved' flag of a finished task, so nothing is raised or logged"
        )
        for n in (1, 2, 3, 4)
    },
    # websocket.handshake: the handshake's failures and the wire-log filter (session 33).
    **{
        f"integration_kit.websocket.handshake.x_outcome_for_failure__mutmut_{n}": (
            "a header name in another case ('retry-after', 'RETRY-AFTER', 'date', 'DATE'): websockets' Headers "
            "look names up case-insensitively"
        )
        for n in (12, 13, 17, 18)
    },
    "integration_kit.websocket.handshake.x_outcome_for_failure__mutmut_27": (
        "error=None dropped from the connect timeout's Outcome: None is the field's default"
    ),
    **{
        f"integration_kit.websocket.handshake.x__date_of__mutmut_{n}": (
            "a Date without a zone kept naive ('or True', or replace(tzinfo=None)): parse_retry_after reads a "
            "naive reference as GMT, exactly what the replace(tzinfo=UTC) does; an aware Date is returned as it is"
        )
        for n in (6, 8)
    },
    # websocket.resync: the snapshot through the HTTP client (session 33).
    "integration_kit.websocket.resync.x_http_resync__mutmut_13": (
        "an unreadable answer's items None -> '': both are not a list, so both raise the same InvalidResponse"
    ),
    # websocket.config: the settings' validation (session 33).
    "integration_kit.websocket.config.xǁWebSocketConfigǁ__post_init____mutmut_39": (
        "allow_none=False -> None for open_timeout and close_timeout: _positive only tests it for truth"
    ),
    # grpc.replay: a client stream's request buffer (session 33).
    "integration_kit.grpc.replay.xǁReplayǁ__init____mutmut_22": (
        "_exhausted starting None instead of False: its only reader is 'while not self._exhausted', and both are false"
    ),
    **{
        f"integration_kit.grpc.replay.xǁReplayǁmessages__mutmut_{n}": (
            "messages() not marking the source ended (None or False instead of True): the source is always read "
            "through self._source, one _aiter async generator, which once finished raises StopAsyncIteration on "
            "every anext without asking the caller's iterable again; the flag only saves that one call"
        )
        for n in (5, 6)
    },
}
