"""The SSRF guard normalises every form of an address before it checks it (issue 29).

Each refused block (metadata, loopback, private, link-local, reserved, shared, unspecified) is tried in every form
a resolver can answer with (plain, IPv4-mapped, IPv4-compatible, NAT64, 6to4, with an IPv6 zone) and every form a
URL can name it in (decimal, octal, hexadecimal, short dotted forms, a trailing dot, percent-escapes), with and
without ``allow_private``; hypothesis then fuzzes the resolver's answers and the numeric hosts.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_kit.webhooks.errors import UnsafeDestination
from integration_kit.webhooks.ssrf import (
    METADATA_ADDRESSES,
    Destination,
    is_refused_address,
    normalise_address,
    parse_ipv4_host,
    resolve_destination,
)

V4 = ipaddress.IPv4Address

#: block -> representative IPv4 addresses. Only the metadata block is refused with ``allow_private``.
BLOCKS: dict[str, tuple[str, ...]] = {
    "metadata": ("169.254.169.254", "100.100.100.200", "192.0.0.192"),
    "loopback": ("127.0.0.1", "127.255.0.9"),
    "private": ("10.1.2.3", "172.16.5.4", "192.168.1.1"),
    "link-local": ("169.254.1.1",),
    "reserved": ("240.0.0.1", "255.255.255.255"),
    "shared": ("100.64.0.1",),
    "unspecified": ("0.0.0.0",),
}
PUBLIC = ("93.184.216.34", "8.8.8.8")


def _mapped(ip: V4) -> str:
    return f"::ffff:{ip}"


def _mapped_hex(ip: V4) -> str:
    return f"0:0:0:0:0:ffff:{int(ip) >> 16:x}:{int(ip) & 0xFFFF:x}"


def _compatible(ip: V4) -> str:
    return f"::{ip}"


def _nat64(ip: V4) -> str:
    return f"64:ff9b::{ip}"


def _sixtofour(ip: V4) -> str:
    return f"2002:{int(ip) >> 16:x}:{int(ip) & 0xFFFF:x}::1"


def _mapped_with_zone(ip: V4) -> str:
    return f"::ffff:{ip}%eth0"


#: The forms a resolver may answer an IPv4 address in, each carrying the address the packets go to.
ANSWER_FORMS: dict[str, Callable[[V4], str]] = {
    "plain": str,
    "mapped": _mapped,
    "mapped-hex": _mapped_hex,
    "compatible": _compatible,
    "nat64": _nat64,
    "6to4": _sixtofour,
    "mapped-zone": _mapped_with_zone,
}


def _decimal(ip: V4) -> str:
    return str(int(ip))


def _hex(ip: V4) -> str:
    return f"0x{int(ip):x}"


def _octal_dotted(ip: V4) -> str:
    return ".".join(f"0{b:o}" for b in ip.packed)


def _hex_dotted(ip: V4) -> str:
    return ".".join(f"0x{b:x}" for b in ip.packed)


def _two_parts(ip: V4) -> str:
    return f"{ip.packed[0]}.{int(ip) & 0xFFFFFF}"


def _three_parts(ip: V4) -> str:
    a, b, c, d = ip.packed
    return f"{a}.{b}.{(c << 8) | d}"


def _trailing_dot(ip: V4) -> str:
    return f"{ip}."


def _percent(ip: V4) -> str:
    return "".join(f"%{ord(c):02X}" if c.isdigit() else c for c in str(ip))


#: The forms a URL may name an IPv4 address in; every one is read as the address, never resolved.
URL_FORMS: dict[str, Callable[[V4], str]] = {
    "decimal": _decimal,
    "hex": _hex,
    "octal-dotted": _octal_dotted,
    "hex-dotted": _hex_dotted,
    "two-parts": _two_parts,
    "three-parts": _three_parts,
    "trailing-dot": _trailing_dot,
    "percent": _percent,
}

CASES = [(block, a) for block, addresses in BLOCKS.items() for a in addresses]


def _answer(*addresses: str) -> Callable[[str, int], Sequence[str]]:
    return lambda host, port: list(addresses)


def _parses(url: str) -> bool:
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return True


def _no_dns(host: str, port: int) -> Sequence[str]:
    raise AssertionError(f"an IP literal was resolved: {host!r}")


@pytest.mark.parametrize("allow_private", [False, True], ids=["strict", "allow_private"])
@pytest.mark.parametrize("form", list(ANSWER_FORMS))
@pytest.mark.parametrize(("block", "address"), CASES, ids=[f"{b}-{a}" for b, a in CASES])
def test_every_answer_form_of_a_refused_block_is_refused(
    block: str, address: str, form: str, allow_private: bool
) -> None:
    ip = V4(address)
    if form == "compatible" and int(ip) <= 1:
        pytest.skip("::0.0.0.0 and ::0.0.0.1 are IPv6's own :: and ::1 (tested below)")
    answer = ANSWER_FORMS[form](ip)
    assert normalise_address(answer) == ip
    refused = block == "metadata" or not allow_private
    assert is_refused_address(answer, allow_private=allow_private) is refused
    resolve = _answer("93.184.216.34", answer)  # one refused answer among good ones is enough
    if refused:
        with pytest.raises(UnsafeDestination) as caught:
            resolve_destination("https://hooks.example.com/x", allow_private=allow_private, resolver=resolve)
        assert caught.value.address == answer
    else:
        resolve_destination("https://hooks.example.com/x", allow_private=allow_private, resolver=resolve)


@pytest.mark.parametrize("allow_private", [False, True], ids=["strict", "allow_private"])
@pytest.mark.parametrize("form", list(URL_FORMS))
@pytest.mark.parametrize(("block", "address"), CASES, ids=[f"{b}-{a}" for b, a in CASES])
def test_every_url_form_of_a_refused_block_is_read_as_the_address(
    block: str, address: str, form: str, allow_private: bool
) -> None:
    ip = V4(address)
    host = URL_FORMS[form](ip)
    assert parse_ipv4_host(host) == ip
    url = f"http://{host}:8080/hooks"
    if not _parses(url):  # httpx refuses a dotted quad with octal parts: refused, on the safe side
        with pytest.raises(UnsafeDestination, match="cannot be parsed"):
            resolve_destination(url, allow_private=allow_private, resolver=_no_dns)
    elif block == "metadata" or not allow_private:
        with pytest.raises(UnsafeDestination) as caught:
            resolve_destination(url, allow_private=allow_private, resolver=_no_dns)
        assert caught.value.address == address
    else:
        destination = resolve_destination(url, allow_private=allow_private, resolver=_no_dns)
        assert destination.address == address
        assert str(destination.url) == f"http://{address}:8080/hooks"
        assert destination.request(b"", {}).headers["host"] == f"{address}:8080"


@pytest.mark.parametrize("allow_private", [False, True], ids=["strict", "allow_private"])
@pytest.mark.parametrize("form", [*ANSWER_FORMS, *URL_FORMS])
@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_passes_in_every_form(address: str, form: str, allow_private: bool) -> None:
    ip = V4(address)
    if form in ANSWER_FORMS:
        answer = ANSWER_FORMS[form](ip)
        destination = resolve_destination("https://h.example/", allow_private=allow_private, resolver=_answer(answer))
        assert destination.address == answer
        assert destination.host == "h.example"
    elif _parses(url := f"https://{URL_FORMS[form](ip)}/"):
        assert resolve_destination(url, allow_private=allow_private).address == address


IPV6_BLOCKS = {
    "metadata": ("fd00:ec2::254", "fd00:ec2::254%eth0", "fd00:ec2::254%3"),
    "loopback": ("::1",),
    "unspecified": ("::",),
    "private": ("fd12:3456::1", "fc00::1"),
    "link-local": ("fe80::1", "fe80::1%eth0"),
    "reserved": ("2001:db8::1", "100::1", "64:ff9b:1::a00:1"),
    "multicast": ("ff02::1",),
}
IPV6_CASES = [(block, a) for block, addresses in IPV6_BLOCKS.items() for a in addresses]


@pytest.mark.parametrize("allow_private", [False, True], ids=["strict", "allow_private"])
@pytest.mark.parametrize(("block", "address"), IPV6_CASES, ids=[f"{b}-{a}" for b, a in IPV6_CASES])
def test_ipv6_blocks_with_and_without_a_zone(block: str, address: str, allow_private: bool) -> None:
    refused = block == "metadata" or not allow_private
    assert is_refused_address(address, allow_private=allow_private) is refused
    resolve = _answer(address)
    if refused:
        with pytest.raises(UnsafeDestination):
            resolve_destination("http://x.example/", allow_private=allow_private, resolver=resolve)
        with pytest.raises(UnsafeDestination):  # the same address as a URL literal, zone percent-escaped
            resolve_destination(f"http://[{address.replace('%', '%25')}]/", allow_private=allow_private)
    else:
        assert resolve_destination("http://x.example/", allow_private=True, resolver=resolve).address == address


def test_the_local_nat64_prefix_hides_no_metadata_address() -> None:
    for allow_private in (False, True):
        assert is_refused_address("64:ff9b:1::a9fe:a9fe", allow_private=allow_private)


@pytest.mark.parametrize(
    "host",
    [
        *("1.2.3.999", "256.1.1.1", "1.256.0.1", "1.16777216", "1.2.65536", "1.2.3.256", "1.2.16777216"),  # ranges
        *("09.1.1.1", "0x1g.1", "a.1", "1.2.3.4.5", "1.2.3.4.0", "0x100000000", "0x", "0x.1", "1_0.0.0.1", "+1.2"),
    ],
)
def test_a_numeric_host_that_is_no_address_is_refused_unresolved(host: str) -> None:
    with pytest.raises(ValueError, match=r"^a numeric host that is no IPv4 address$"):
        parse_ipv4_host(host)
    with pytest.raises(OSError):
        socket.inet_aton(host)  # the C library refuses it too
    with pytest.raises(UnsafeDestination):
        resolve_destination(f"http://{host}/", allow_private=True, resolver=_answer("93.184.216.34"))


@pytest.mark.parametrize(("host", "address"), [("2130706433.", "127.0.0.1"), ("0x7f000001.", "127.0.0.1")])
def test_one_number_with_the_root_label_is_an_address(host: str, address: str) -> None:
    assert parse_ipv4_host(host) == V4(address)


def _unresolvable(host: str, port: int) -> Sequence[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(
    ("resolver", "message"),
    [
        (_unresolvable, "the host name does not resolve"),
        (_answer(), "the host name does not resolve"),
        (_answer("not-an-address"), "the resolver gave an invalid address"),
        (_answer("fe80::1%"), "the resolver gave an invalid address"),  # an empty zone
        (_answer("10.0.0.1"), "hooks.example resolves to a refused address 10.0.0.1"),
    ],
    ids=["no-name", "no-address", "not-an-address", "empty-zone", "refused"],
)
def test_a_refused_answer_says_why_and_names_the_host(
    resolver: Callable[[str, int], Sequence[str]], message: str
) -> None:
    with pytest.raises(UnsafeDestination) as caught:
        resolve_destination("https://hooks.example/in", resolver=resolver)
    assert (caught.value.message, caught.value.host) == (message, "hooks.example")


@pytest.mark.parametrize("host", ["hooks.example.com", "1.example", "0x1.example", "example.123x", "localhost", "."])
def test_a_host_name_is_not_read_as_a_number(host: str) -> None:
    assert parse_ipv4_host(host) is None


# -- hypothesis: the resolver's answers and the numeric hosts, fuzzed ----------------------------------------------

ipv4s = st.integers(0, 2**32 - 1).map(V4)
ipv6s = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
zones = st.one_of(st.just(""), st.from_regex(r"%[a-z0-9]{1,8}", fullmatch=True))
answers = st.one_of(
    ipv4s.map(str),
    st.tuples(ipv6s, zones).map(lambda p: f"{p[0]}{p[1]}"),
    st.tuples(ipv4s, st.sampled_from(list(ANSWER_FORMS))).map(lambda p: ANSWER_FORMS[p[1]](p[0])),
    st.sampled_from([str(a) for a in METADATA_ADDRESSES]),
    st.text(max_size=20),
)


@given(st.lists(answers, min_size=1, max_size=5), st.booleans())
def test_any_resolver_answer_ends_in_a_checked_destination_or_a_refusal(found: list[str], allow_private: bool) -> None:
    try:
        destination = resolve_destination(
            "https://hooks.example.com/x", allow_private=allow_private, resolver=_answer(*found)
        )
    except UnsafeDestination:
        return
    assert isinstance(destination, Destination)
    assert destination.address == found[0]
    for answer in found:  # every answer was an address, and none of them is refused once normalised
        ip = normalise_address(answer)
        assert ip not in METADATA_ADDRESSES
        assert allow_private or (ip.is_global and not ip.is_multicast)


@given(ipv4s, st.sampled_from(list(ANSWER_FORMS)), st.booleans())
def test_an_embedded_address_is_judged_as_the_address_itself(ip: V4, form: str, allow_private: bool) -> None:
    if form == "compatible" and int(ip) <= 1:
        return
    answer = ANSWER_FORMS[form](ip)
    assert normalise_address(answer) == ip
    assert is_refused_address(answer, allow_private=allow_private) is is_refused_address(
        ip, allow_private=allow_private
    )
    if ip in METADATA_ADDRESSES:
        assert is_refused_address(answer, allow_private=True)


def _label(draw: st.DrawFn, value: int) -> str:
    base = draw(st.sampled_from(["dec", "oct", "hex", "HEX"]))
    if base == "oct":
        return f"0{value:o}"
    if base == "hex":
        return f"0x{value:x}"
    if base == "HEX":
        return f"0X{value:X}"
    return str(value)


@st.composite
def numeric_hosts(draw: st.DrawFn) -> tuple[str, V4]:
    """An IPv4 address written in one of inet_aton's forms (1 to 4 parts, each in any base)."""
    ip = draw(ipv4s)
    parts = draw(st.integers(1, 4))
    packed = ip.packed
    head = [_label(draw, b) for b in packed[: parts - 1]]
    tail = int.from_bytes(packed[parts - 1 :], "big")
    return ".".join([*head, _label(draw, tail)]), ip


@given(numeric_hosts())
def test_numeric_hosts_read_as_inet_aton_reads_them(case: tuple[str, V4]) -> None:
    host, ip = case
    assert parse_ipv4_host(host) == ip
    assert socket.inet_aton(host) == ip.packed  # the C library a resolver would use agrees
    refused = is_refused_address(ip)
    if not _parses(f"http://{host}/"):
        return
    try:
        resolve_destination(f"http://{host}/", resolver=_no_dns)
    except UnsafeDestination as exc:
        assert refused
        assert exc.address == str(ip)
    else:
        assert not refused


@given(st.lists(st.tuples(st.integers(0, 2**33), st.sampled_from(["dec", "oct", "hex"])), min_size=1, max_size=5))
def test_numeric_hosts_in_or_out_of_range_are_read_as_the_c_library_reads_them(labels: list[tuple[int, str]]) -> None:
    host = ".".join(f"0{v:o}" if b == "oct" else f"0x{v:x}" if b == "hex" else str(v) for v, b in labels)
    try:
        expected: V4 | None = V4(socket.inet_aton(host))
    except OSError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            parse_ipv4_host(host)
    else:
        assert parse_ipv4_host(host) == expected


# -- what a refusal says, and the destination's request -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message", "host"),
    [
        ("http://[::1/", "the URL cannot be parsed", ""),
        ("ftp://files.example/", "only http and https URLs with a host are allowed", "files.example"),
        ("https://user:pw@hooks.example/", "credentials in the URL are refused", "hooks.example"),
        ("http://1.16777216/", "the host is neither a name nor a valid IP address", "1.16777216"),
    ],
)
def test_a_refused_url_says_why_and_names_its_host(url: str, message: str, host: str) -> None:
    with pytest.raises(UnsafeDestination) as caught:
        resolve_destination(url, resolver=_no_dns)
    assert (caught.value.message, caught.value.host, caught.value.address) == (message, host, None)


def test_the_request_posts_the_body_to_the_checked_address_with_the_original_host() -> None:
    destination = resolve_destination("https://hooks.example.com/in", resolver=_answer("93.184.216.34"))
    request = destination.request(b'{"event": 1}', {"webhook-id": "msg_1"})
    assert (request.method, str(request.url), request.content) == ("POST", "https://93.184.216.34/in", b'{"event": 1}')
    assert (request.headers["host"], request.headers["webhook-id"]) == ("hooks.example.com", "msg_1")
    assert request.extensions["sni_hostname"] == "hooks.example.com"


@pytest.mark.parametrize(
    ("url", "host_header"),
    [("http://[::1]:8080/in", "[::1]:8080"), ("http://[::1]/in", "[::1]"), ("http://0x7f.1/in", "127.0.0.1")],
)
def test_an_ip_literal_is_checked_unresolved_and_named_in_its_canonical_form(url: str, host_header: str) -> None:
    destination = resolve_destination(url, allow_private=True, resolver=_no_dns)
    assert destination.request(b"", {}).headers["host"] == host_header


def test_the_default_resolver_answers_with_the_addresses_getaddrinfo_gives() -> None:
    first = socket.getaddrinfo("localhost", 8080, type=socket.SOCK_STREAM)[0][4][0]
    destination = resolve_destination("http://localhost:8080/in", allow_private=True)
    assert destination.address == first
    assert str(destination.url) == f"http://{first if ':' not in first else f'[{first}]'}:8080/in"
    assert destination.request(b"", {}).headers["host"] == "localhost:8080"
    with pytest.raises(UnsafeDestination, match="refused address"):
        resolve_destination("http://localhost:8080/in")


@pytest.mark.parametrize(
    ("address", "normal"),
    [("::1", "::1"), ("::", "::"), ("::0.0.0.2", "0.0.0.2"), ("2606:4700::1111", "2606:4700::1111")],
)
def test_ipv6_own_addresses_stay_ipv6_and_the_others_embedded_are_ipv4(address: str, normal: str) -> None:
    assert normalise_address(address) == ipaddress.ip_address(normal)


def test_a_public_ipv6_address_passes() -> None:
    destination = resolve_destination("https://hooks.example/", resolver=_answer("2606:4700::1111"))
    assert destination.address == "2606:4700::1111"
    assert not is_refused_address("2606:4700::1111")
