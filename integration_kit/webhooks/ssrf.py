"""The SSRF guard: a webhook destination is resolved once, checked, and connected to at the checked address.

A customer controls the URL we send webhooks to, so without a guard they can point it at our own network (a
database's HTTP port, an admin panel, the cloud metadata service at ``169.254.169.254`` that hands out
credentials). At each delivery :func:`resolve_destination`:

1. refuses URLs that are not ``http``/``https``, carry credentials (``user:pass@``) or have no host;
2. resolves the host name once (``getaddrinfo``) and refuses it if *any* address is not globally routable:
   loopback, private (RFC 1918, ULA), link-local, multicast, reserved, unspecified, shared (CGNAT),
   documentation ranges, IPv4-mapped forms of those, and the cloud metadata addresses
   (:data:`METADATA_ADDRESSES`), unless the endpoint is explicitly allowed (``allow_private``, as tests on
   127.0.0.1 are);
3. returns a :class:`Destination` whose request goes to the checked IP address, with the original ``Host``
   header and TLS server name (httpcore's ``sni_hostname`` extension), so nothing resolves the name a second
   time: a DNS answer that changes between the check and the connection (DNS rebinding) cannot redirect it.

Redirects are never followed by the sender (a 3xx is a failed attempt), so a checked host cannot bounce the request
elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from integration_kit.webhooks.errors import UnsafeDestination

__all__ = ["METADATA_ADDRESSES", "Destination", "Resolver", "is_refused_address", "resolve_destination"]

Resolver = Callable[[str, int], Sequence[str]]
"""Resolves ``(host, port)`` to IP address strings (the default calls :func:`socket.getaddrinfo`)."""

#: Cloud metadata services, refused even where private addresses are allowed (AWS, GCP and Azure share
#: 169.254.169.254; AWS's IPv6 one; Alibaba Cloud's; Oracle Cloud's 192.0.0.192).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked destination: the ``url`` to request (its host is the checked ``address``), the original ``host``."""

    url: httpx.URL
    host: str
    address: str

    def request(self, content: bytes, headers: dict[str, str]) -> httpx.Request:
        """A POST to the checked address, with the original ``Host`` header and TLS server name."""
        return httpx.Request(
            "POST",
            self.url,
            content=content,
            headers={**headers, "host": self._host_header()},
            extensions={"sni_hostname": self.host},
        )

    def _host_header(self) -> str:
        return self.host if self.url.port is None else f"{self.host}:{self.url.port}"


def is_refused_address(address: str) -> bool:
    """Whether ``address`` is not a globally routable unicast address, or is a cloud metadata service."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip in METADATA_ADDRESSES or ip.is_multicast or not ip.is_global


def resolve_destination(url: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> Destination:
    """Check ``url`` and pin it to one resolved address; raise :class:`UnsafeDestination` when refused.

    ``allow_private`` lets loopback and private addresses through (never the metadata services). ``resolver``
    replaces DNS (tests); a resolution failure is refused too, as an unsafe destination with no address.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UnsafeDestination("the URL cannot be parsed", host="") from exc
    host = parsed.host
    if parsed.scheme not in ("http", "https") or not host:
        raise UnsafeDestination("only http and https URLs with a host are allowed", host=host)
    if parsed.userinfo:
        raise UnsafeDestination("credentials in the URL are refused", host=host)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = list(dict.fromkeys((resolver or _getaddrinfo)(host, port)))
    except OSError as exc:
        raise UnsafeDestination("the host name does not resolve", host=host) from exc
    if not addresses:
        raise UnsafeDestination("the host name does not resolve", host=host)
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError as exc:
            raise UnsafeDestination("the resolver gave an invalid address", host=host) from exc
        refused = ip in METADATA_ADDRESSES if allow_private else is_refused_address(address)
        if refused:
            raise UnsafeDestination(f"{host} resolves to a refused address {address}", host=host, address=address)
    address = addresses[0]
    return Destination(parsed.copy_with(host=address), host, address)


def _getaddrinfo(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
