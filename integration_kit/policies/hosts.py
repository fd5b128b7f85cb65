"""Which hosts are this machine's loopback: the one exception every driver makes to "TLS unless told otherwise".

One rule for every protocol (the HTTP client and its config, the gRPC channel, the WebSocket client), so a target
that one driver sends in plain text another does not refuse, and the other way round.
"""

from __future__ import annotations

import ipaddress

__all__ = ["LOOPBACK_NAMES", "is_loopback"]

#: Host names taken for the loopback interface without resolving them: ``localhost`` (RFC 6761 section 6.3 reserves
#: it, and every name under ``.localhost``), its absolute form, and Debian's IPv6 names from ``/etc/hosts``. A name
#: a resolver or a search domain could send elsewhere (``localhost.localdomain``) is not one of them.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, brackets allowed, any case) is this machine's loopback interface:
    one of :data:`LOOPBACK_NAMES`, a name under ``.localhost``, or an address in ``127.0.0.0/8`` or ``::1``."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith((".localhost", ".localhost.")):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
