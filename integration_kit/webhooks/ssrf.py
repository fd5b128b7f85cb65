"""The SSRF guard: a webhook destination is resolved once, checked, and connected to at the checked address.

A customer controls the URL we send webhooks to, so without a guard they can point it at our own network (a
database's HTTP port, an admin panel, the cloud metadata service at ``169.254.169.254`` that hands out
credentials). At each delivery :func:`resolve_destination`:

1. refuses URLs that are not ``http``/``https``, carry credentials (``user:pass@``) or have no host;
2. takes an IP literal as written (in any of the forms ``inet_aton`` reads: ``2852039166``, ``0xa9fea9fe``,
   ``0251.0376.0251.0376``, ``169.254.43518``; a host whose last label is a number and that is no such form is
   refused), and otherwise resolves the host name once (``getaddrinfo``);
3. normalises every address before any check (:func:`normalise_address`): the IPv6 zone is dropped, and an IPv6
   address that carries an IPv4 one (IPv4-mapped ``::ffff:0:0/96``, IPv4-compatible ``::/96``, NAT64
   ``64:ff9b::/96``, 6to4 ``2002::/16``) is judged as that IPv4 address, since that is where the packets go;
4. refuses the host if *any* address is not globally routable: loopback, private (RFC 1918, ULA), link-local,
   multicast, reserved, unspecified, shared (CGNAT), documentation ranges, local-use NAT64 (``64:ff9b:1::/48``),
   and the cloud metadata addresses (:data:`METADATA_ADDRESSES`) in every form above. ``allow_private`` (as tests
   on 127.0.0.1 use) lets the others through, never the metadata addresses;
5. returns a :class:`Destination` whose request goes to the checked IP address, with the original ``Host``
   header and TLS server name (httpcore's ``sni_hostname`` extension), so nothing resolves the name a second
   time: a DNS answer that changes between the check and the connection (DNS rebinding) cannot redirect it.

Redirects are never followed by the sender (a 3xx is a failed attempt), so a checked host cannot bounce the request
elsewhere.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import httpx

from integration_kit.webhooks.errors import UnsafeDestination

__all__ = [
    "METADATA_ADDRESSES",
    "Destination",
    "Resolver",
    "is_refused_address",
    "normalise_address",
    "parse_ipv4_host",
    "resolve_destination",
]

Resolver = Callable[[str, int], Sequence[str]]
"""Resolves ``(host, port)`` to IP address strings (the default calls :func:`socket.getaddrinfo`)."""

#: Cloud metadata services, refused even where private addresses are allowed (AWS, GCP and Azure share
#: 169.254.169.254; AWS's IPv6 one; Alibaba Cloud's; Oracle Cloud's 192.0.0.192).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: IPv6 prefixes whose low 32 bits are an IPv4 address the packets go to: IPv4-mapped, NAT64's well-known prefix.
_LOW_32_EMBEDDINGS = (ipaddress.ip_network("::ffff:0:0/96"), ipaddress.ip_network("64:ff9b::/96"))
#: IPv4-compatible addresses (deprecated, RFC 4291): ``::a.b.c.d``; ``::`` and ``::1`` are IPv6's own.
_COMPATIBLE = ipaddress.ip_network("::/96")
#: NAT64 local-use prefix (RFC 8215): an operator's own translation, never a public destination.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
#: One label of an ``inet_aton`` host: hexadecimal, octal (a leading 0) or decimal.
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked destination: the ``url`` to request (its host is the checked ``address``), the original ``host``
    (an IP literal in its canonical form: ``0x7f.1`` is ``127.0.0.1``) for the ``Host`` header and TLS."""

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
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.url.port is None else f"{host}:{self.url.port}"


def normalise_address(address: str | _Address) -> _Address:
    """The address the packets go to: without an IPv6 zone (``%eth0``), and an IPv6 address that embeds an IPv4
    one (IPv4-mapped, IPv4-compatible, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) as that IPv4 address.

    Raises ``ValueError`` when ``address`` is not an IP address.
    """
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.scope_id is not None:  # the zone names a local interface, not another address
        ip = ipaddress.IPv6Address(int(ip))
    if any(ip in net for net in _LOW_32_EMBEDDINGS) or (ip in _COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return ip


def is_refused_address(address: str | _Address, *, allow_private: bool = False) -> bool:
    """Whether ``address``, normalised (:func:`normalise_address`), is a cloud metadata service or, unless
    ``allow_private``, not a globally routable unicast address."""
    ip = normalise_address(address)
    if ip in METADATA_ADDRESSES:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip in _LOCAL_NAT64:
        # an operator's NAT64 may map the metadata address here too: private, and checked as the /96 form
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        return embedded in METADATA_ADDRESSES or not allow_private
    return not allow_private and (ip.is_multicast or not ip.is_global)


def parse_ipv4_host(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a URL host names in any ``inet_aton`` form (``127.1``, ``0x7f000001``, ``0177.0.0.1``,
    ``2130706433``, a trailing dot), or ``None`` for a host name. Percent-escapes are decoded first.

    Raises ``ValueError`` for a host whose last label is a number but which is no valid IPv4 address (as WHATWG's
    URL parser does): a resolver could read it either way.
    """
    labels = unquote(host).split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # the root label: "1.2.3.4." is 1.2.3.4
    if not labels or not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMBER.fullmatch(label) for label in labels):
        raise ValueError("a numeric host that is no IPv4 address")
    numbers = [_number(label) for label in labels]
    *high, last = numbers
    if any(n > 0xFF for n in high) or last >= 1 << (8 * (5 - len(numbers))):
        raise ValueError("a numeric host that is no IPv4 address")
    value = last
    for i, n in enumerate(high):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def resolve_destination(url: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> Destination:
    """Check ``url`` and pin it to one resolved address; raise :class:`UnsafeDestination` when refused.

    ``allow_private`` lets loopback and private addresses through (never the metadata services). ``resolver``
    replaces DNS (tests); a resolution failure is refused too, as an unsafe destination with no address. An IP
    literal (in any form :func:`parse_ipv4_host` reads) is checked as written, never resolved.
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
        literal = _literal(host)
    except ValueError as exc:
        raise UnsafeDestination("the host is neither a name nor a valid IP address", host=host) from exc
    try:
        addresses = [str(literal)] if literal is not None else _resolve(resolver or _getaddrinfo, host, port)
    except OSError as exc:
        raise UnsafeDestination("the host name does not resolve", host=host) from exc
    if not addresses:
        raise UnsafeDestination("the host name does not resolve", host=host)
    for address in addresses:
        try:
            refused = is_refused_address(address, allow_private=allow_private)
        except ValueError as exc:
            raise UnsafeDestination("the resolver gave an invalid address", host=host) from exc
        if refused:
            raise UnsafeDestination(f"{host} resolves to a refused address {address}", host=host, address=address)
    address = addresses[0]
    return Destination(parsed.copy_with(host=address), host if literal is None else address, address)


def _literal(host: str) -> _Address | None:
    """The IP address ``host`` is written as (IPv6 with its zone, or IPv4 in any inet_aton form), else None."""
    try:
        return ipaddress.ip_address(unquote(host))
    except ValueError:
        return parse_ipv4_host(host)


def _resolve(resolver: Resolver, host: str, port: int) -> list[str]:
    return list(dict.fromkeys(resolver(host, port)))


def _number(label: str) -> int:
    if label[:2].lower() == "0x":
        return int(label[2:], 16)
    if len(label) > 1 and label[0] == "0":
        return int(label, 8)
    return int(label)


def _getaddrinfo(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
