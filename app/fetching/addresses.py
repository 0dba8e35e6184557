"""Which IP addresses Dogear may connect to: public unicast only, unless an admin allows more.

URLs come from readers and feeds, so a fetch must never reach the server itself or its
network (SSRF). The check runs on the address actually dialled, so everything here works
on parsed `ipaddress` objects, never on host names.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# Spelled out rather than trusting `is_global` alone: its tables differ between Python
# releases (3.11 still calls 64:ff9b::/96, 2002::/16 and fec0::/10 global).
_BLOCKED_V4 = tuple(
    IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches localhost on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    )
)
_BLOCKED_V6 = tuple(
    IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback, IPv4-compatible
        "::ffff:0:0/96",  # IPv4-mapped (unwrapped and checked as IPv4 first)
        "::ffff:0:0:0/96",  # IPv4-translated
        "64:ff9b::/96",  # NAT64: would reach any IPv4 address through the gateway
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed by some networks)
        "ff00::/8",  # multicast
    )
)
_SIX_TO_FOUR = IPv6Network("2002::/16")

_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")


def parse_networks(
    value: str | Iterable[str | Network] | None, *, setting: str = "allow_private"
) -> tuple[Network, ...]:
    """Networks from a list of CIDR strings or one comma-separated string.

    A bare address counts as a single-host network. Raises ValueError naming the
    setting and the bad entry, so a typo in the config fails at startup, not silently.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        items: Iterable[object] = value.split(",")
    elif isinstance(value, Iterable):
        items = value
    else:
        raise ValueError(f"{setting}: expected a list of networks, not {value!r}")
    networks: list[Network] = []
    for item in items:
        if isinstance(item, IPv4Network | IPv6Network):
            networks.append(item)
            continue
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(
                f"{setting}: {text!r} is not an IP network; "
                "expected CIDR like 10.0.0.0/8 or fd00::/8"
            ) from None
    return tuple(networks)


def parse_ip_literal(host: str) -> Address | None:
    """The address a URL host denotes if it is an IP literal, else None (a name).

    Besides dotted quads and IPv6 this accepts the legacy IPv4 spellings that
    getaddrinfo/inet_aton still honour (`2130706433`, `0x7f000001`, `0177.0.0.1`,
    `127.1`), so they are checked as the address they are rather than passed to a
    resolver that might not understand them. A host that ends in a number but is not a
    valid address (`256.0.0.1`) raises ValueError, as browsers refuse it too.
    """
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # a trailing dot: "127.0.0.1."
    if not _is_number(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    numbers = [_parse_ipv4_part(part, host) for part in parts]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return IPv4Address(value)


def _is_number(part: str) -> bool:
    if part[:2].lower() == "0x":
        return set(part[2:]) <= _HEX
    return bool(part) and set(part) <= _DIGITS


def _parse_ipv4_part(part: str, host: str) -> int:
    try:
        if part[:2].lower() == "0x":
            if not set(part[2:]) <= _HEX:
                raise ValueError
            return int(part[2:] or "0", 16)
        if not part or not set(part) <= _DIGITS:
            raise ValueError
        if len(part) > 1 and part.startswith("0"):
            return int(part, 8)
        return int(part)
    except ValueError:
        raise ValueError(f"{host!r} is not a valid IPv4 address") from None


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped or 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def is_public(ip: Address) -> bool:
    """True for globally routable unicast addresses, the only ones fetched by default."""
    if isinstance(ip, IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return is_public(inner)
        blocked: tuple[Network, ...] = _BLOCKED_V6
    else:
        blocked = _BLOCKED_V4
    if any(ip in network for network in blocked):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def is_allowed(ip: Address, allow_private: Iterable[Network] = ()) -> bool:
    """May Dogear connect to `ip`? Public addresses, plus what the admin allowed.

    An IPv4-mapped address is matched against the allowed networks in its IPv4 form
    too, since the kernel delivers it to that IPv4 address.
    """
    forms: list[Address] = [ip]
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        forms.append(ip.ipv4_mapped)
    for network in allow_private:
        if any(form.version == network.version and form in network for form in forms):
            return True
    return is_public(ip)
