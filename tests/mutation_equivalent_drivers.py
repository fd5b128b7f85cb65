"""The surviving mutants of the gRPC and WebSocket drivers (``grpc``, ``websocket``) and the hedging race
that no behaviour can tell from the original, by mutmut's name, with the reason.

:mod:`mutation_equivalent` merges them into ``EQUIVALENT``; the layout is the same (see that module).
"""

from __future__ import annotations

#: The equivalent survivors of these modules, by mutmut's name, with the reason.
DRIVERS_EQUIVALENT: dict[str, str] = {}
