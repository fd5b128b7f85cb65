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
        for n in (36, 39, 49, 55)
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
}
