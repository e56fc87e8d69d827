"""Which addresses a URL source may be fetched from: public ones only.

A fetch made on a user's behalf must not reach the server's own network
(loopback, private ranges, cloud metadata services). Each rule names what
it refuses, so a refused job can say why.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """The address is one a fetch must never reach."""


# Most specific first: the first matching rule is the one reported.
RULES: tuple[tuple[str, str], ...] = (
    ("169.254.169.254/32", "a cloud metadata address"),
    ("fd00:ec2::254/128", "a cloud metadata address"),
    ("127.0.0.0/8", "a loopback address"),
    ("::1/128", "a loopback address"),
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("::/128", "an unspecified address"),
    ("10.0.0.0/8", "a private address (10/8)"),
    ("172.16.0.0/12", "a private address (172.16/12)"),
    ("192.168.0.0/16", "a private address (192.168/16)"),
    ("100.64.0.0/10", "a carrier-grade NAT address (100.64/10)"),
    ("169.254.0.0/16", "a link-local address (169.254/16)"),
    ("fe80::/10", "a link-local address (fe80::/10)"),
    ("fc00::/7", "a unique-local (private) address (fc00::/7)"),
    ("224.0.0.0/4", "a multicast address"),
    ("ff00::/8", "a multicast address"),
    ("192.0.0.0/24", "an IETF protocol assignment address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("240.0.0.0/4", "a reserved address"),
    ("255.255.255.255/32", "the broadcast address"),
)
NETWORKS = tuple((ipaddress.ip_network(net), why) for net, why in RULES)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why `address` may not be fetched from, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            why = refusal(inner)
            return f"{why}, inside the IPv6 address {address}" if why else None
    for network, why in NETWORKS:
        if address.version == network.version and address in network:
            return why
    if not address.is_global:
        return "not a public address"
    return None


def check_address(
    address: IPAddress, port: int, *, loopback_ports: Collection[int] = ()
) -> None:
    """Raise AddressRefused unless `address` is public.

    `loopback_ports` lets tests fetch from their own local servers; it is
    empty outside tests (prod refuses to start with it set).
    """
    if address.is_loopback and port in loopback_ports:
        return
    why = refusal(address)
    if why is not None:
        raise AddressRefused(f"{address} is {why}; only public addresses are fetched")
